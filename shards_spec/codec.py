"""Encoding and decoding of sample members (spec version 1).

A sample is written (spec 1.4) as three tar members ``<key>.<field>``:

========================  =====================================================
``meta.json``             UTF-8 JSON, keys sorted
``tokens.npy``            structured ``[L]`` of :data:`TOKENS_DTYPE`: ``input_ids`` int32, ``labels`` int32 (-100
                          where ignored), ``loss_weight`` float32 (0 ignored, 1 normal, 3 keyword)
``vision.npy.zst``        zstd frame (content size + checksum) holding an ``.npy`` of uint8 ``[S, C, H, W, D]``
``vision.npy``            or (spec 1.3, ``zstd_level=0``) that ``.npy`` uncompressed
``slices.npy.zst``        or (spec 1.4, 3D stream) the image as uint8 ``[S, C, D, H, W]`` (slices contiguous)
``slices.npy``            or that ``.npy`` uncompressed
========================  =====================================================

Specs 1.0-1.3 wrote the token arrays as three members (``input_ids.npy``, ``labels.npy``, ``loss_weight.npy``);
:func:`decode_sample` reads both forms and always returns the three arrays under those field names.
Every reader gets the image as ``[S, C, H, W, D]`` (:func:`decode_image`): for a ``slices`` member, the transposed
view of the stored array (no copy).

The encodings were chosen by measurement (docs/benchmarks.md, "Image member encoding").
``encode_sample(zstd_level=0)`` writes the image as a plain ``vision.npy`` member: a reader
views it where it lies (``train.read`` on a memory map: no decompression, no copy), which
is what makes CPU-bound 2D loaders fastest (docs/benchmarks.md, "Readers and loaders against
the peers"); it carries no content checksum. Levels 1-22 and zstd's negative levels compress
into ``vision.npy.zst``. ``encode_vision(level=0)`` still writes a *stored* zstd frame (raw
blocks, checksummed), which spec 1.0-1.2 builds wrote at level 0; readers decode it unchanged.

Decoding is defensive: sizes are bounded before anything is allocated and nothing is
unpickled (``allow_pickle=False``). The common ``.npy`` headers (the ones ``npy_bytes``
writes: little-endian numeric dtype, C order) are parsed by a strict pattern and the data
is viewed in place (no copy); anything else goes through numpy's own bounded reader.
"""

from __future__ import annotations

import io
import json
import re
import threading
from typing import Any

import numpy as np
import zstandard

from shards_spec.jsonio import loads
from shards_spec.layout import (
    FIELD_INPUT_IDS,
    FIELD_LABELS,
    FIELD_LOSS_WEIGHT,
    FIELD_META,
    FIELD_SLICES,
    FIELD_SLICES_RAW,
    FIELD_TOKENS,
    FIELD_VISION,
    FIELD_VISION_RAW,
    IMAGE_FIELDS,
)

#: The ``tokens.npy`` member's dtype (spec 1.4): one record per token, little-endian, packed (12 bytes).
TOKENS_DTYPE = np.dtype([("input_ids", "<i4"), ("labels", "<i4"), ("loss_weight", "<f4")])

#: dtype of every array member.
DTYPES = {
    FIELD_INPUT_IDS: np.dtype(np.int32),
    FIELD_LABELS: np.dtype(np.int32),
    FIELD_LOSS_WEIGHT: np.dtype(np.float32),
    FIELD_VISION: np.dtype(np.uint8),
    FIELD_VISION_RAW: np.dtype(np.uint8),
    FIELD_SLICES: np.dtype(np.uint8),
    FIELD_SLICES_RAW: np.dtype(np.uint8),
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


# The exact header ``np.lib.format.write_array`` writes for a C-order array of a plain little-endian
# (or byte-sized) numeric dtype: ``{'descr': '<i4', 'fortran_order': False, 'shape': (191,), }`` + padding.
_NPY_MAGIC = b"\x93NUMPY"
_NPY_HEADER = re.compile(
    rb"\{'descr': '(?P<descr>[<|][biuf][1248])', 'fortran_order': False, 'shape': \((?P<shape>(?:\d+, ?)*\d*)\), \} *\n"
)
#: The header ``write_array`` writes for a ``TOKENS_DTYPE [L]`` array (spec 1.4 ``tokens.npy``).
_TOKENS_HEADER = re.compile(
    rb"\{'descr': \[\('input_ids', '<i4'\), \('labels', '<i4'\), \('loss_weight', '<f4'\)\], "
    rb"'fortran_order': False, 'shape': \((?P<n>\d+),\), \} *\n"
)
_MAX_NPY_HEADER = 4096


_HEADERS: dict[bytes, tuple[np.dtype, tuple[int, ...], int] | None] = {}


def _parse_header(header: bytes) -> tuple[np.dtype, tuple[int, ...], int] | None:
    """``(dtype, shape, item count)`` of a common header, ``None`` otherwise."""
    m = _NPY_HEADER.fullmatch(header)
    if m is None:
        t = _TOKENS_HEADER.fullmatch(header)
        return None if t is None else (TOKENS_DTYPE, (int(t["n"]),), int(t["n"]))
    shape = tuple(int(x) for x in m["shape"].split(b",") if x.strip())
    count = 1
    for n in shape:
        count *= n
    return np.dtype(m["descr"].decode("ascii")), shape, count


def _npy_prefix(mv: memoryview) -> int:
    """Length of the magic, version, header length and header of an ``.npy`` payload (0: not of a known
    version, or longer than the payload)."""
    if len(mv) < 10:
        return 0
    major = mv[6]
    if major == 1:
        start, hlen = 10, mv[8] | (mv[9] << 8)
    elif major in (2, 3) and len(mv) >= 12:
        start, hlen = 12, int.from_bytes(mv[8:12], "little")
    else:
        return 0
    return start + hlen if hlen <= _MAX_NPY_HEADER and start + hlen <= len(mv) else 0


def _fast_npy(data) -> np.ndarray | None:
    """The array of a common ``.npy`` payload as a view of ``data`` (no copy); ``None`` when the header
    is not of the common form (the caller then uses numpy's reader) or the payload length does not match.

    The whole prefix (magic, version, header) is memoised: headers repeat, so a lookup replaces the parse."""
    mv = memoryview(data)
    n = _npy_prefix(mv)
    if not n:
        return None
    prefix = bytes(mv[:n])
    parsed = _HEADERS.get(prefix, False)
    if parsed is False:
        parsed = _parse_header(prefix[10 if prefix[6] == 1 else 12:]) if prefix[:6] == _NPY_MAGIC else None
        if len(_HEADERS) >= 4096:
            _HEADERS.clear()
        _HEADERS[prefix] = parsed
    if parsed is None:
        return None
    dtype, shape, count = parsed
    if n + count * dtype.itemsize != len(mv):
        return None  # short (or padded) payload: numpy's reader decides and explains
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=n)
    return arr if len(shape) == 1 else arr.reshape(shape)


def load_npy(data, *, field: str = "array") -> np.ndarray:
    """The array of an ``.npy`` payload (``bytes``, ``bytearray`` or ``memoryview``); never unpickles.

    Common headers give a view of ``data`` (read-only when ``data`` is ``bytes``, writable when it is a
    ``bytearray``); anything else is read by ``np.lib.format.read_array`` into a new array."""
    arr = _fast_npy(data)
    if arr is not None:
        return arr
    try:
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/EOFError/OSError on garbage
        raise DecodeError(f"{field}: not a valid .npy payload ({exc})") from exc


#: Largest raw block of a zstd frame (ZSTD_BLOCKSIZE_MAX).
_ZSTD_BLOCK_MAX = 1 << 17
_ZSTD_MAGIC = 0xFD2FB528


def stored_zstd_frame(data: bytes) -> bytes:
    """``data`` as one zstd frame of raw (uncompressed) blocks, with content size and checksum.

    A standard frame (RFC 8878 §3.1.1): single-segment header with an 8-byte content size, raw blocks of at
    most 128 KiB, then the low 32 bits of XXH64(data). The checksum is taken from a frame zstd itself writes
    for the same content (it depends on the content only), so no second XXH64 implementation is needed."""
    checksum = zstandard.ZstdCompressor(level=1, write_content_size=True, write_checksum=True).compress(data)[-4:]
    n = len(data)
    parts = [_ZSTD_MAGIC.to_bytes(4, "little"), bytes([(3 << 6) | (1 << 5) | (1 << 2)]), n.to_bytes(8, "little")]
    if n == 0:
        parts.append((1).to_bytes(3, "little"))  # one empty last raw block
    for o in range(0, n, _ZSTD_BLOCK_MAX):
        chunk = data[o:o + _ZSTD_BLOCK_MAX]
        last = int(o + _ZSTD_BLOCK_MAX >= n)
        parts.append((last | (len(chunk) << 3)).to_bytes(3, "little"))
        parts.append(chunk)
    parts.append(checksum)
    return b"".join(parts)


def encode_vision(vision: np.ndarray, level: int = 3) -> bytes:
    """The ``vision.npy.zst`` member: zstd at ``level``; ``level=0`` stores the bytes (raw blocks, see the
    module docstring)."""
    if vision.dtype != np.uint8 or vision.ndim != 5:
        raise ValueError(f"vision must be uint8 [S,C,H,W,D], got {vision.dtype} {vision.shape}")
    if level == 0:
        return stored_zstd_frame(npy_bytes(vision))
    # Single-threaded, so the frame is a pure function of the bytes; the frame checksum (XXH64) lets the
    # reader detect corrupted pixel data instead of decoding it into a wrong image.
    return _compressor(level).compress(npy_bytes(vision))


_local = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    """One compression context per thread and level, reused from frame to frame (a fresh context costs an
    allocation and initialisation of its tables each time; the frames it writes are the same bytes)."""
    cache = getattr(_local, "compressors", None)
    if cache is None:
        cache = _local.compressors = {}
    c = cache.get(level)
    if c is None:
        c = cache[level] = zstandard.ZstdCompressor(level=level, write_content_size=True, write_checksum=True)
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    """One decompression context per thread (creating one per frame costs a fresh ~100 KiB allocation)."""
    d = getattr(_local, "zstd", None)
    if d is None:
        d = _local.zstd = zstandard.ZstdDecompressor()
    return d


def decode_vision(data, max_bytes: int = MAX_VISION_BYTES) -> np.ndarray:
    """The uint8 ``[S, C, H, W, D]`` array of a ``vision.npy.zst`` member (read-only: a view of the
    decompressed bytes)."""
    try:
        params = zstandard.get_frame_parameters(data)
    except zstandard.ZstdError as exc:
        raise DecodeError(f"{FIELD_VISION}: not a zstd frame ({exc})") from exc
    if params.content_size in (zstandard.CONTENTSIZE_UNKNOWN, zstandard.CONTENTSIZE_ERROR):
        raise DecodeError(f"{FIELD_VISION}: zstd frame without a content size")
    if params.content_size > max_bytes:
        raise DecodeError(f"{FIELD_VISION}: declares {params.content_size} bytes, limit {max_bytes}")
    try:
        raw = _decompressor().decompress(data, max_output_size=max_bytes)
    except zstandard.ZstdError as exc:
        raise DecodeError(f"{FIELD_VISION}: corrupt zstd frame ({exc})") from exc
    return _vision_array(raw, FIELD_VISION)


def _vision_array(data, field: str) -> np.ndarray:
    arr = load_npy(data, field=field)
    if arr.dtype != np.uint8 or arr.ndim != 5:
        raise DecodeError(f"{field}: expected uint8 [S,C,H,W,D], got {arr.dtype} {arr.shape}")
    return arr


def decode_vision_raw(data) -> np.ndarray:
    """The uint8 ``[S, C, H, W, D]`` array of a ``vision.npy`` member: a view of ``data`` (no copy; read-only
    when ``data`` is ``bytes`` or a read-only map). Nothing to verify beyond the header and the length."""
    return _vision_array(data, FIELD_VISION_RAW)


def encode_tokens(input_ids, labels, loss_weight) -> bytes:
    """The ``tokens.npy`` member (spec 1.4): the three ``[L]`` arrays as one ``TOKENS_DTYPE`` record array."""
    ids = np.asarray(input_ids, dtype=np.int32)
    if ids.ndim != 1 or np.shape(labels) != ids.shape or np.shape(loss_weight) != ids.shape:
        raise ValueError(f"token arrays must be [L] of one length, got {ids.shape}, {np.shape(labels)}, "
                         f"{np.shape(loss_weight)}")
    rec = np.empty(ids.shape[0], dtype=TOKENS_DTYPE)
    rec["input_ids"], rec["labels"], rec["loss_weight"] = ids, labels, loss_weight
    return npy_bytes(rec)


def tokens_array(data) -> np.ndarray:
    """The ``TOKENS_DTYPE [L]`` array of a ``tokens.npy`` member: a view of ``data`` when its header is the
    one :func:`encode_tokens` writes, else numpy's bounded reader (never unpickles); ``DecodeError`` for any
    other dtype or shape."""
    arr = load_npy(data, field=FIELD_TOKENS)
    if arr.dtype != TOKENS_DTYPE or arr.ndim != 1:
        raise DecodeError(f"{FIELD_TOKENS}: expected {TOKENS_DTYPE.descr} [L], got {arr.dtype} {arr.shape}")
    return arr


def split_tokens(rec: np.ndarray) -> dict[str, np.ndarray]:
    """``{input_ids.npy, labels.npy, loss_weight.npy}`` of a ``tokens.npy`` array: contiguous, writable copies."""
    return {FIELD_INPUT_IDS: np.ascontiguousarray(rec["input_ids"]), FIELD_LABELS: np.ascontiguousarray(rec["labels"]),
            FIELD_LOSS_WEIGHT: np.ascontiguousarray(rec["loss_weight"])}
def decode_slices(data, max_bytes: int = MAX_VISION_BYTES) -> np.ndarray:
    """The ``[S, C, H, W, D]`` view of a ``slices.npy.zst`` member's ``[S, C, D, H, W]`` array (no copy)."""
    try:
        return decode_vision(data, max_bytes).transpose(0, 1, 3, 4, 2)
    except DecodeError as exc:
        raise DecodeError(str(exc).replace(FIELD_VISION, FIELD_SLICES, 1)) from None


def decode_slices_raw(data) -> np.ndarray:
    """The ``[S, C, H, W, D]`` view of a ``slices.npy`` member's ``[S, C, D, H, W]`` array (no copy)."""
    return _vision_array(data, FIELD_SLICES_RAW).transpose(0, 1, 3, 4, 2)


_IMAGE_DECODERS = {FIELD_VISION: decode_vision, FIELD_VISION_RAW: decode_vision_raw,
                   FIELD_SLICES: decode_slices, FIELD_SLICES_RAW: decode_slices_raw}


def decode_image(field: str, data) -> np.ndarray:
    """The uint8 ``[S, C, H, W, D]`` image of any image member (``IMAGE_FIELDS``): a read-only view where the
    member allows (see each decoder)."""
    return _IMAGE_DECODERS[field](data)


def encode_image(vision: np.ndarray, zstd_level: int = 3, slices: bool = False) -> dict[str, bytes]:
    """The image member of a sample from uint8 ``[S, C, H, W, D]``: ``vision.npy.zst`` at ``zstd_level``
    (``vision.npy`` when 0), or with ``slices`` (spec 1.4, the 3D stream) ``slices.npy.zst`` / ``slices.npy``
    holding ``[S, C, D, H, W]`` (a copy only when ``vision`` is not already a view of that layout,
    ``pipelines.imaging.stack_sample``'s 3D output)."""
    if vision.dtype != np.uint8 or vision.ndim != 5:
        raise ValueError(f"vision must be uint8 [S,C,H,W,D], got {vision.dtype} {vision.shape}")
    if slices:
        stored = np.ascontiguousarray(vision.transpose(0, 1, 4, 2, 3))
        if zstd_level == 0:
            return {FIELD_SLICES_RAW: npy_bytes(stored)}
        return {FIELD_SLICES: encode_vision(stored, zstd_level)}
    if zstd_level == 0:
        return {FIELD_VISION_RAW: npy_bytes(vision)}
    return {FIELD_VISION: encode_vision(vision, zstd_level)}


def encode_meta(meta: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON, keys sorted; a lone surrogate (a file name that is not UTF-8) is written as its
    ``\\udcXX`` escape, so the bytes are always valid UTF-8."""
    text = json.dumps(meta, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "backslashreplace")


def decode_meta(data) -> dict[str, Any]:
    if len(data) > MAX_META_BYTES:
        raise DecodeError(f"{FIELD_META}: {len(data)} bytes, limit {MAX_META_BYTES}")
    try:
        meta = loads(bytes(data).decode("utf-8"))
    except ValueError as exc:  # not UTF-8, not JSON, nested too deeply
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
    slices: bool = False,
) -> dict[str, bytes]:
    """Member field -> payload bytes, for one sample (spec 1.4: ``meta.json``, ``tokens.npy`` and the image).
    ``zstd_level=0``: the image as an uncompressed ``vision.npy`` member (spec 1.3), else ``vision.npy.zst`` at
    that level; ``slices`` (spec 1.4, 3D samples): ``slices.npy(.zst)`` holding ``[S, C, D, H, W]``
    (:func:`encode_image`)."""
    image = encode_image(vision, zstd_level, slices)
    return {FIELD_META: encode_meta(meta), FIELD_TOKENS: encode_tokens(input_ids, labels, loss_weight), **image}


def decode_member(field: str, data) -> Any:
    """Decode one member by its field name (``input_ids.npy``, ``meta.json`` …). Arrays come back writable and
    owning their memory (the trainer's hot path, ``train.read``, uses the zero-copy functions instead)."""
    if field in IMAGE_FIELDS:
        arr = decode_image(field, data)
        return arr if arr.flags.writeable else arr.copy()
    if field == FIELD_META:
        return decode_meta(data)
    if field == FIELD_TOKENS:
        return tokens_array(data).copy()
    if field in DTYPES:
        arr = load_npy(data, field=field)
        if arr.dtype != DTYPES[field] or arr.ndim != 1:
            raise DecodeError(f"{field}: expected {DTYPES[field]} [L], got {arr.dtype} {arr.shape}")
        return arr if arr.flags.writeable else arr.copy()
    raise DecodeError(f"unknown member field {field!r}")


def decode_sample(members: dict[str, bytes]) -> dict[str, Any]:
    """Decode all members of a sample given as field -> bytes (e.g. a webdataset sample). The image comes back
    as ``[S, C, H, W, D]`` under ``vision.npy.zst`` (``FIELD_VISION``) whichever member held it, and the token arrays under
    ``input_ids.npy``, ``labels.npy``, ``loss_weight.npy`` whether they were one ``tokens.npy`` (1.4) or three
    members (1.0-1.3)."""
    out: dict[str, Any] = {}
    for field, data in members.items():
        if field.startswith("__"):
            continue
        if field == FIELD_TOKENS:
            out.update(split_tokens(tokens_array(data)))
        else:
            out[FIELD_VISION if field in IMAGE_FIELDS else field] = decode_member(field, data)
    return out


def webdataset_decoder(key: str, data: bytes) -> Any:
    """A handler for ``webdataset.WebDataset(...).decode(webdataset_decoder)``.

    webdataset passes the member's extension part (``vision.npy.zst``, ``vision.npy``) as ``key``.
    """
    field = key.lstrip(".").lower()
    return decode_member(field, data)
