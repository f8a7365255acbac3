"""From the image paths a source reads to :class:`~pipelines.records.ImageRef` s: resolving and expanding.

A 2D source resolves its path (``ctx.resolver.resolve``) and makes one ``ImageRef(rel, "image2d")``. A 3D source
hands every path of a record to :func:`resolve_volumes`, which expands RadFM's ``.npy`` series and series folders
(:func:`image_refs_for`) and returns a reject when a path cannot be used. Only headers are read, never pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.paths import UnresolvedPath
from pipelines.records import ImageRef, Reject

if TYPE_CHECKING:
    from pipelines.sources.base import BuildContext


def npy_shape(path: Path) -> tuple[int, ...]:
    """Shape of a ``.npy`` file from its header, without reading the data."""
    import numpy as np

    with open(path, "rb") as fh:
        major, _ = np.lib.format.read_magic(fh)
        reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, _ = reader(fh)
    return tuple(shape)


def image_refs_for(raw: Path, rel: str) -> list[ImageRef]:
    """Expand one resolved path into image references.

    * ``.npy`` -> one ref per series along axis 0 when the array is ``[S, C, H, W, D]``;
    * ``.nii``/``.nii.gz``/DICOM/image file -> one volume;
    * a folder of slice files -> one volume; a folder of series folders -> one volume each
      (sorted by the number after ``_`` in ``CT_0``, ``MRI_1`` …, then by name).
    """
    path = raw / rel
    if rel.endswith(".npy"):
        shape = npy_shape(path)
        if len(shape) == 5:
            return [ImageRef(rel, "npy", s) for s in range(shape[0])]
        return [ImageRef(rel, "npy", 0)]
    if path.is_dir():
        subdirs = sorted((p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")), key=_series_order)
        if subdirs:
            return [ImageRef(f"{rel}/{d.name}", "volume") for d in subdirs]
    return [ImageRef(rel, "volume")]


def _series_order(p: Path) -> tuple[int, str]:
    tail = p.name.rsplit("_", 1)[-1]
    return (int(tail) if tail.isdigit() else 1 << 30, p.name)


def resolve_volumes(ctx: BuildContext, dataset: str, paths: Sequence[str], where: str) -> tuple[ImageRef, ...] | Reject:
    """The image references of one record's paths (RadFM cluster paths or relative ones), or one reject naming
    ``where`` (e.g. ``radiology_vqa_train.csv:line7``): a path that does not resolve (``missing_file``) or leaves the
    raw root (``outside_root``), a header
    that cannot be read (``undecodable``), no path at all (``bad_row``)."""
    refs: list[ImageRef] = []
    for path in paths:
        try:
            rel = ctx.resolver.resolve(path)
            refs.extend(image_refs_for(ctx.raw, rel))
        except UnresolvedPath as exc:  # missing_file, or outside_root
            return Reject(dataset, where, str(path), exc.reason, f"{where}: {exc}", "plan")
        except (OSError, ValueError) as exc:
            return Reject(dataset, where, str(path), "undecodable", f"{where}: cannot read header of {path}: {exc}", "plan")
    if not refs:
        return Reject(dataset, where, "", "bad_row", f"{where}: no image path", "plan")
    return tuple(refs)
