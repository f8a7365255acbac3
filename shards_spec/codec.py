"""Encoding and decoding of sample members (spec version 1).

A sample is written as five tar members ``<key>.<field>``:

========================  =====================================================
``input_ids.npy``         int32 ``[L]``
``labels.npy``            int32 ``[L]`` (-100 where ignored)
``loss_weight.npy``       float32 ``[L]`` (0 ignored, 1 normal, 3 keyword)
``meta.json``             UTF-8 JSON, keys sorted
``vision.npy.zst``        zstd frame (content size + checksum) holding an ``.npy`` of uint8 ``[S, C, H, W, D]``
========================  =====================================================

The encodings were chosen by measurement (docs/benchmarks.md, "Image member encoding").
Decoding is defensive: sizes are bounded before anything is allocated and nothing is
unpickled (``allow_pickle=False``).
"""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import zstandard

from shards_spec.layout import (
    FIELD_INPUT_IDS,
    FIELD_LABELS,
    FIELD_LOSS_WEIGHT,
    FIELD_META,
    FIELD_VISION,
)

#: dtype of every array member.
DTYPES = {
    FIELD_INPUT_IDS: np.dtype(np.int32),
    FIELD_LABELS: np.dtype(np.int32),
    FIELD_LOSS_WEIGHT: np.dtype(np.float32),
    FIELD_VISION: np.dtype(np.uint8),
}

#: Upper bound on a decoded image member (64 images of 3x512x512x64 would be 3 GiB;
#: the builder never writes more than ImageConfig.max_images images).
MAX_VISION_BYTES = 1 << 31
MAX_META_BYTES = 1 << 22


class DecodeError(ValueError):
    """A member could not be decoded (corrupt, oversized, wrong dtype or shape)."""


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def load_npy(data: bytes, *, field: str = "array") -> np.ndarray:
    try:
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/EOFError/OSError on garbage
        raise DecodeError(f"{field}: not a valid .npy payload ({exc})") from exc


def encode_vision(vision: np.ndarray, level: int = 3) -> bytes:
    if vision.dtype != np.uint8 or vision.ndim != 5:
        raise ValueError(f"vision must be uint8 [S,C,H,W,D], got {vision.dtype} {vision.shape}")
    # Single-threaded, so the frame is a pure function of the bytes; the frame checksum (XXH64) lets the
    # reader detect corrupted pixel data instead of decoding it into a wrong image.
    return zstandard.ZstdCompressor(level=level, write_content_size=True, write_checksum=True).compress(npy_bytes(vision))


def decode_vision(data: bytes, max_bytes: int = MAX_VISION_BYTES) -> np.ndarray:
    try:
        params = zstandard.get_frame_parameters(data)
    except zstandard.ZstdError as exc:
        raise DecodeError(f"{FIELD_VISION}: not a zstd frame ({exc})") from exc
    if params.content_size in (zstandard.CONTENTSIZE_UNKNOWN, zstandard.CONTENTSIZE_ERROR):
        raise DecodeError(f"{FIELD_VISION}: zstd frame without a content size")
    if params.content_size > max_bytes:
        raise DecodeError(f"{FIELD_VISION}: declares {params.content_size} bytes, limit {max_bytes}")
    try:
        raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=max_bytes)
    except zstandard.ZstdError as exc:
        raise DecodeError(f"{FIELD_VISION}: corrupt zstd frame ({exc})") from exc
    arr = load_npy(raw, field=FIELD_VISION)
    if arr.dtype != np.uint8 or arr.ndim != 5:
        raise DecodeError(f"{FIELD_VISION}: expected uint8 [S,C,H,W,D], got {arr.dtype} {arr.shape}")
    return arr


def encode_meta(meta: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, keys sorted; a lone surrogate (a file name that is not UTF-8) is written as its
    ``\\udcXX`` escape, so the bytes are always valid UTF-8."""
    text = json.dumps(meta, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "backslashreplace")


def decode_meta(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_META_BYTES:
        raise DecodeError(f"{FIELD_META}: {len(data)} bytes, limit {MAX_META_BYTES}")
    try:
        meta = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DecodeError(f"{FIELD_META}: invalid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise DecodeError(f"{FIELD_META}: top level must be an object")
    return meta


def encode_sample(
    *,
    input_ids: np.ndarray,
    labels: np.ndarray,
    loss_weight: np.ndarray,
    meta: dict[str, Any],
    vision: np.ndarray,
    zstd_level: int = 3,
) -> dict[str, bytes]:
    """Member field -> payload bytes, for one sample."""
    return {
        FIELD_INPUT_IDS: npy_bytes(np.asarray(input_ids, dtype=np.int32)),
        FIELD_LABELS: npy_bytes(np.asarray(labels, dtype=np.int32)),
        FIELD_LOSS_WEIGHT: npy_bytes(np.asarray(loss_weight, dtype=np.float32)),
        FIELD_META: encode_meta(meta),
        FIELD_VISION: encode_vision(vision, zstd_level),
    }


def decode_member(field: str, data: bytes) -> Any:
    """Decode one member by its field name (``input_ids.npy``, ``meta.json`` …)."""
    if field == FIELD_VISION:
        return decode_vision(data)
    if field == FIELD_META:
        return decode_meta(data)
    if field in DTYPES:
        arr = load_npy(data, field=field)
        if arr.dtype != DTYPES[field] or arr.ndim != 1:
            raise DecodeError(f"{field}: expected {DTYPES[field]} [L], got {arr.dtype} {arr.shape}")
        return arr
    raise DecodeError(f"unknown member field {field!r}")


def decode_sample(members: dict[str, bytes]) -> dict[str, Any]:
    """Decode all members of a sample given as field -> bytes (e.g. a webdataset sample)."""
    return {field: decode_member(field, data) for field, data in members.items() if not field.startswith("__")}


def webdataset_decoder(key: str, data: bytes) -> Any:
    """A handler for ``webdataset.WebDataset(...).decode(webdataset_decoder)``.

    webdataset passes the member's extension part (``vision.npy.zst``) as ``key``.
    """
    field = key.lstrip(".").lower()
    return decode_member(field, data)
