"""The binary index sidecar ``*.index.npy`` (spec 1.4, SPEC §4.2): the JSON index's per-sample positions as one
fixed-width record array, for readers that open many shards (the trainer reads it with one ``np.load`` and checks
every row at once instead of parsing JSON and converting one entry at a time).

One record per sample, in tar order, of :func:`index_dtype` (``key`` is ``S<k>``, ``k`` the shard's longest key):

=================  =========  ====================================================================================
``key``            ``S<k>``   the sample's key (ASCII, SPEC §2)
``offset``         ``<i8``    header offset of the sample's first member
``size``           ``<i8``    bytes from ``offset`` to the end of its last member's data
``members``        ``<i8``    ``[3, 2]``: ``(data offset, size)`` of ``meta.json``, ``tokens.npy`` and the image
``image``          ``u1``     which image member: its position in ``IMAGE_FIELDS`` (0 ``vision.npy.zst``, 1
                              ``vision.npy``, 2 ``slices.npy.zst``, 3 ``slices.npy``)
``n_tokens``       ``<i4``    as in the JSON index
``n_images``       ``<i4``
``depth``          ``<i4``
=================  =========  ====================================================================================

The JSON sidecar stays the full record (it also holds ``task`` and the shard's SHA-256) for the validator,
``pipelines.inspect`` and readers of object storage; the two must agree (``shards_spec.validate`` checks it).
Reading never unpickles (``allow_pickle=False``) and trusts no size: a file whose dtype, shape or keys are not
the above is one ``ValueError``, and every row's offsets are checked by the reader before use.
"""

from __future__ import annotations

import functools
import io
import re
from typing import Any

import numpy as np

from shards_spec.layout import FIELD_META, FIELD_TOKENS, FIELDS_BY_IMAGE, IMAGE_FIELDS, image_field

_FIXED = [("offset", "<i8"), ("size", "<i8"), ("members", "<i8", (3, 2)), ("image", "u1"),
          ("n_tokens", "<i4"), ("n_images", "<i4"), ("depth", "<i4")]
NAMES = ("key",) + tuple(f[0] for f in _FIXED)
#: Largest key width accepted (keys are ``<dataset>_<20 hex>``).
MAX_KEY = 256
#: Largest binary index read (a shard holds far fewer than a million samples).
MAX_BYTES = 1 << 28


def index_dtype(key_len: int) -> np.dtype:
    return np.dtype([("key", f"S{key_len}"), *_FIXED])


def encode_index(entries) -> bytes:
    """The ``.npy`` bytes of the binary index of ``entries`` (``IndexEntry`` records or their dicts, 1.4 member
    sets only: ``meta.json``, ``tokens.npy`` and one image member)."""
    rows = [e if isinstance(e, dict) else e.to_dict() for e in entries]
    keys = [r["key"].encode("ascii") for r in rows]
    arr = np.zeros(len(rows), dtype=index_dtype(max([len(k) for k in keys], default=1)))
    for i, (r, k) in enumerate(zip(rows, keys)):
        image = image_field(r["members"])
        fields = FIELDS_BY_IMAGE.get(image, ())
        if set(r["members"]) != set(fields):
            raise ValueError(f"{r['key']}: members {sorted(r['members'])} are not a spec 1.4 member set")
        arr[i] = (k, r["offset"], r["size"], [list(r["members"][f]) for f in fields], IMAGE_FIELDS.index(image),
                  r["n_tokens"], r["n_images"], r["depth"])
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    return buf.getvalue()


#: The header ``write_array`` writes for an :func:`index_dtype` ``[n]`` array (parsed without ``ast``).
_HEADER = re.compile(rb"\{'descr': (?P<descr>\[\('key', '\|S(?P<k>\d{1,3})'\), [^{}]*\]), 'fortran_order': False, "
                     rb"'shape': \((?P<n>\d{1,9}),\), \} *\n")


@functools.lru_cache(maxsize=64)
def _descr(key_len: int) -> bytes:
    return repr(np.lib.format.dtype_to_descr(index_dtype(key_len))).encode("ascii")


def _fast(data: bytes) -> np.ndarray | None:
    """The array of a version-1 ``.npy`` holding exactly an :func:`index_dtype` ``[n]`` array (a view of
    ``data``), else ``None``."""
    if len(data) < 10 or data[:8] != b"\x93NUMPY\x01\x00":
        return None
    start = 10 + (data[8] | (data[9] << 8))
    m = _HEADER.fullmatch(data, 10, start)
    if m is None:
        return None
    k, n = int(m["k"]), int(m["n"])
    if not 1 <= k <= MAX_KEY or m["descr"] != _descr(k):
        return None
    dt = index_dtype(k)
    if len(data) != start + n * dt.itemsize:
        return None
    return np.frombuffer(data, dtype=dt, count=n, offset=start)


def decode_index(data: bytes) -> np.ndarray:
    """The record array of a binary index (read-only); ``ValueError`` (one line) for anything that is not one."""
    if len(data) > MAX_BYTES:
        raise ValueError(f"binary index of {len(data)} bytes, limit {MAX_BYTES}")
    arr = _fast(data)
    if arr is not None:
        return arr
    try:
        arr = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)
    except Exception as exc:  # numpy raises ValueError/EOFError/OSError on garbage, truncation, pickles
        raise ValueError(f"not a binary index ({type(exc).__name__}: {exc})") from None
    dt = arr.dtype
    if arr.ndim != 1 or dt.names != NAMES:
        raise ValueError(f"not a binary index: shape {arr.shape}, fields {dt.names}")
    key = dt.fields["key"][0]
    if key.kind != "S" or not 1 <= key.itemsize <= MAX_KEY or dt != index_dtype(key.itemsize):
        raise ValueError(f"binary index of dtype {dt.descr}, expected {index_dtype(key.itemsize).descr}")
    return arr


def entries_of(arr: np.ndarray) -> list[dict[str, Any]]:
    """Index entries (the JSON sidecar's dicts, without ``task``) of a checked record array; ``ValueError`` for a
    key that is not ASCII."""
    out = []
    meta, tokens = FIELD_META, FIELD_TOKENS
    try:
        # two conversions to Python objects in all (a subarray field in a row would come back as an ndarray)
        rows = arr[["key", "offset", "size", "image", "n_tokens", "n_images", "depth"]].tolist()
        for (key, off, size, image, n_tok, n_img, depth), (m, t, v) in zip(rows, arr["members"].tolist()):
            out.append({"key": key.decode("ascii"), "offset": off, "size": size,
                        "members": {meta: m, tokens: t, IMAGE_FIELDS[image]: v},
                        "n_tokens": n_tok, "n_images": n_img, "depth": depth})
    except UnicodeDecodeError as exc:
        raise ValueError(f"binary index key is not ASCII ({exc})") from None
    except IndexError:
        raise ValueError(f"binary index names an image member beyond the {len(IMAGE_FIELDS)} known") from None
    return out


__all__ = ["MAX_BYTES", "NAMES", "decode_index", "encode_index", "entries_of", "index_dtype"]
