"""Member encodings: round trips, bounds, no pickles, checksummed pixels (shards_spec.codec)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from shards_spec import codec


def test_codec_round_trip_and_bounds():
    vision = np.random.default_rng(0).integers(0, 255, (2, 1, 8, 8, 4), dtype=np.uint8)
    members = codec.encode_sample(input_ids=np.arange(5), labels=np.arange(5), loss_weight=np.ones(5), meta={"b": 1, "a": [1]}, vision=vision)
    decoded = codec.decode_sample(members)
    assert np.array_equal(decoded["vision.npy.zst"], vision)
    assert decoded["input_ids.npy"].dtype == np.int32 and decoded["loss_weight.npy"].dtype == np.float32
    assert members["meta.json"] == b'{"a":[1],"b":1}'
    with pytest.raises(codec.DecodeError, match="declares"):
        codec.decode_vision(members["vision.npy.zst"], max_bytes=100)
    with pytest.raises(codec.DecodeError):
        codec.decode_member("input_ids.npy", b"garbage")
    pickled = io.BytesIO()
    np.save(pickled, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(codec.DecodeError):
        codec.decode_member("labels.npy", pickled.getvalue())
    with pytest.raises(codec.DecodeError):
        codec.decode_member("vision.npy.zst", codec.encode_vision(vision)[:-10])
    flipped = bytearray(members["vision.npy.zst"])
    flipped[len(flipped) // 2] ^= 0x01  # one bit of pixel data: caught by the frame checksum
    with pytest.raises(codec.DecodeError, match="checksum"):
        codec.decode_member("vision.npy.zst", bytes(flipped))

