"""Stable hashes: the one place that turns values into keys, seeds and uniform numbers.

Everything here is a pure function of its arguments' ``str()`` forms, stable across processes, platforms and Python
versions (BLAKE2b, never ``hash()``), so a build and a training run can be repeated anywhere:

* :func:`sample_key` names a sample (SPEC §2);
* :func:`seed_from` seeds the build's per-sample choices (prompts, variants, image positions) and the trainer's
  shuffles and augmentations;
* :func:`unit_hash` draws the trainer's stateless step schedule and shard weights.

The parts are joined with a separator before hashing. The build joins with NUL (``BUILD_SEP``), the trainer with
U+001F (``TRAIN_SEP``); both are frozen, because shard bytes and batch order depend on them.
"""

from __future__ import annotations

import hashlib

BUILD_SEP = "\0"
TRAIN_SEP = "\x1f"


def _digest(parts: tuple[object, ...], sep: str, size: int) -> bytes:
    # surrogatepass: a lone surrogate (an input file name that is not UTF-8) hashes instead of raising; valid text
    # encodes exactly as plain UTF-8, so keys and seeds of ordinary text are unchanged
    return hashlib.blake2b(sep.join(map(str, parts)).encode("utf-8", "surrogatepass"), digest_size=size).digest()


def seed_from(*parts: object, sep: str = TRAIN_SEP) -> int:
    """A 64-bit seed from the parts (for ``random.Random`` / ``numpy.random.default_rng``)."""
    return int.from_bytes(_digest(parts, sep, 8), "little")


def unit_hash(*parts: object, sep: str = TRAIN_SEP) -> float:
    """A uniform number in [0, 1) from the parts."""
    return seed_from(*parts, sep=sep) / 2.0**64


def sample_key(dataset: str, source_id: str, task: str, variant: str) -> str:
    """SPEC §2: ``<dataset>_<20 hex>``, the first 80 bits of BLAKE2b over dataset, source id, task and variant
    joined by NUL. No dots (webdataset splits member names at the first dot)."""
    return f"{dataset}_{_digest((dataset, source_id, task, variant), BUILD_SEP, 10).hex()}"
