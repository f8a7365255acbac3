"""Guards every reader applies before decoding: the file exists and is not empty, its header sizes are bounded."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.config import ImageConfig
from pipelines.imaging.errors import DecompressionBomb, EmptyFile, MissingFile, PathLike, UnsupportedFormat


def existing_file(path: PathLike) -> Path:
    """``path`` as a Path after checking it is a non-empty regular file."""
    path = Path(path)
    if not path.exists():
        raise MissingFile(path, "no such file")
    if not path.is_file():
        raise UnsupportedFormat(path, "not a regular file")
    if path.stat().st_size == 0:
        raise EmptyFile(path, "zero-byte file")
    return path


def natural_key(name: str) -> list[int | str]:
    """Sort key that orders ``2.jpg`` before ``10.jpg`` (digit runs compare as integers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def check_size(path: PathLike, height: int, width: int, depth: int, cfg: ImageConfig) -> None:
    """Decompression-bomb guard on header dimensions, before any pixel is decoded."""
    if height * width > cfg.max_pixels:
        raise DecompressionBomb(path, f"{width}x{height} pixels exceed max_pixels={cfg.max_pixels}")
    if height * width * depth > cfg.max_voxels:
        raise DecompressionBomb(
            path, f"{width}x{height}x{depth} voxels exceed max_voxels={cfg.max_voxels}"
        )

