"""The stable hashes behind keys, build choices and the trainer's order (shards_spec.hashing): frozen values."""

from __future__ import annotations

import hashlib
import random
import struct

from shards_spec.hashing import BUILD_SEP, sample_key, seed_from, unit_hash


def test_values_are_frozen():
    # SPEC §2: the first 80 bits of BLAKE2b over dataset \0 source id \0 task \0 variant
    digest = hashlib.blake2b(b"mimic\0files/a.jpg\0report\0report", digest_size=10).hexdigest()
    assert sample_key("mimic", "files/a.jpg", "report", "report") == f"mimic_{digest}"
    # the trainer's seeds and uniform draws: BLAKE2b-64 little endian over the parts joined by U+001F
    h = hashlib.blake2b("schedule\x1f0\x1f12".encode(), digest_size=8).digest()
    assert seed_from("schedule", 0, 12) == struct.unpack("<Q", h)[0]
    assert unit_hash("schedule", 0, 12) == struct.unpack("<Q", h)[0] / 2.0**64
    # the build's per-record seeds join with NUL
    h = hashlib.blake2b("0\0rad3d\0case\0vqa".encode(), digest_size=8).digest()
    assert seed_from(0, "rad3d", "case", "vqa", sep=BUILD_SEP) == int.from_bytes(h, "little")
    assert seed_from(1, 2) != seed_from(1, 2, sep=BUILD_SEP)
    assert 0 <= min(unit_hash(i) for i in range(1000)) and max(unit_hash(i) for i in range(1000)) < 1
    assert random.Random(seed_from("a")).random() == random.Random(seed_from("a")).random()
