"""Spec 1.4's read-path format: the one ``tokens.npy`` member and the binary index sidecar ``*.index.npy``.

Round trips through the writer and the trainer's reader, older (1.3) shards still read, and hostile members and
sidecars (wrong dtypes, pickles, truncation, out-of-range or overlapping spans) are one-line rejects: a bad sample
with its reason, or a warning and the JSON sidecar, never a traceback."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest

from pipelines.writer import SampleSummary, ShardWriter
from shards_spec import codec, index_bin
from shards_spec.layout import FIELDS, index_bin_path, index_path
from train.read import BadSample, FileCache, IndexCache, read_sample
from train.sources import ShardRef


def _sample(n: int, seed: int) -> dict:
    ids = np.array([1, 100, *range(102, 134), 101, *range(3, 3 + n)], dtype=np.int32)
    labels = np.where(ids >= 100, -100, ids).astype(np.int32)
    weights = np.where(labels >= 0, 1.0, 0.0).astype(np.float32)
    weights[-1] = 3.0
    vision = np.random.default_rng(seed).integers(0, 256, (1, 1, 8, 8, 1), dtype=np.uint8)
    return {"ids": ids, "labels": labels, "weights": weights, "vision": vision}


def _shard(tmp_path, samples, level=0) -> ShardRef:
    tar = tmp_path / "t-train-2d-000000.tar"
    writer = ShardWriter(tar, 0)
    for i, s in enumerate(samples):
        key = f"t_{i:020x}"
        members = codec.encode_sample(input_ids=s["ids"], labels=s["labels"], loss_weight=s["weights"],
                                      meta={"key": key, "special_ids": {"base_vocab": 100}}, vision=s["vision"],
                                      zstd_level=level)
        writer.write(key, members, SampleSummary("report", len(s["ids"]), 1, 1))
    writer.commit({})
    return ShardRef(str(tar), "2d", "train", "t", len(samples), 1.0, 0)


def _read_all(shard, index=None):
    index = index or IndexCache()
    files = FileCache(2)
    out = []
    for entry in index.get(shard):
        try:
            out.append(read_sample(files, shard, entry, 0, index))
        except BadSample as exc:
            out.append(str(exc))
    files.close()
    return out


# ============================================================================================ tokens.npy
def test_tokens_member_round_trip_and_fast_header():
    s = _sample(50, 0)
    data = codec.encode_tokens(s["ids"], s["labels"], s["weights"])
    assert np.load(io.BytesIO(data), allow_pickle=False).dtype == codec.TOKENS_DTYPE  # any numpy user reads it
    fast = codec.tokens_array(data)
    assert fast.base is not None  # the strict header pattern matched: a view, not numpy's reader
    assert np.array_equal(fast, np.load(io.BytesIO(data), allow_pickle=False))
    decoded = codec.decode_sample({"tokens.npy": data})
    assert set(decoded) == {"input_ids.npy", "labels.npy", "loss_weight.npy"}
    assert np.array_equal(decoded["labels.npy"], s["labels"]) and decoded["loss_weight.npy"].dtype == np.float32
    assert decoded["input_ids.npy"].flags.c_contiguous and decoded["input_ids.npy"].flags.writeable
    members = codec.encode_sample(input_ids=s["ids"], labels=s["labels"], loss_weight=s["weights"], meta={},
                                  vision=s["vision"])
    assert sorted(members) == list(FIELDS)
    with pytest.raises(ValueError, match="one length"):
        codec.encode_tokens(s["ids"], s["labels"][:-1], s["weights"])


@pytest.mark.parametrize("payload", [
    codec.npy_bytes(np.arange(12, dtype=np.int32)),  # a plain int32 array
    codec.npy_bytes(np.zeros(4, dtype=[("input_ids", "<i8"), ("labels", "<i4"), ("loss_weight", "<f4")])),
    codec.npy_bytes(np.zeros((2, 3), dtype=codec.TOKENS_DTYPE)),
    codec.encode_tokens([1, 2], [1, 2], [1, 1])[:-3],  # truncated
    b"garbage",
], ids=["int32", "wrong-field-dtype", "2-d", "truncated", "garbage"])
def test_hostile_tokens_member_is_a_decode_error(payload):
    with pytest.raises(codec.DecodeError, match="tokens.npy"):
        codec.tokens_array(payload)


def test_pickled_tokens_member_is_never_unpickled():
    buf = io.BytesIO()
    np.save(buf, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(codec.DecodeError):
        codec.tokens_array(buf.getvalue())


# ============================================================================================ binary index
def test_writer_writes_a_binary_index_equal_to_the_json_one(tmp_path):
    samples = [_sample(n, n) for n in (5, 40, 12)]
    shard = _shard(tmp_path, samples)
    raw = index_bin_path(shard.path).read_bytes()
    assert index_bin.decode_index(raw).base is not None  # the fast header path
    entries = index_bin.entries_of(index_bin.decode_index(raw))
    json_entries = json.loads(index_path(shard.path).read_text())["samples"]
    assert entries == [{k: v for k, v in e.items() if k != "task"} for e in json_entries]
    read = _read_all(shard)
    for smp, s in zip(read, samples):
        assert np.array_equal(smp.input_ids, s["ids"]) and np.array_equal(smp.labels, s["labels"])
        assert np.array_equal(smp.loss_weight, s["weights"]) and np.array_equal(smp.vision, s["vision"])
        assert smp.input_ids.flags.writeable and smp.loss_weight.dtype == np.float32
    # the same shard read through its JSON sidecar only (as for a 1.3 shard) gives the same samples
    os.unlink(index_bin_path(shard.path))
    again = _read_all(shard)
    assert [x.key for x in again] == [x.key for x in read]
    assert all(np.array_equal(a.labels, b.labels) for a, b in zip(again, read))


def test_same_inputs_give_byte_identical_sidecars(tmp_path):
    samples = [_sample(n, n) for n in (5, 9)]
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    sa, sb = _shard(a, samples), _shard(b, samples)
    for path in (lambda s: s, index_path, index_bin_path):
        assert open(path(sa.path), "rb").read() == open(path(sb.path), "rb").read()


def _pickled():
    buf = io.BytesIO()
    np.save(buf, np.array([{"key": "x"}], dtype=object), allow_pickle=True)
    return buf.getvalue()


@pytest.mark.parametrize("mangle", [
    lambda raw: b"not an npy",
    lambda raw: raw[:-7],  # truncated
    lambda raw: _pickled(),
    lambda raw: codec.npy_bytes(np.arange(6, dtype=np.int64)),  # wrong dtype
    lambda raw: raw.replace(b"t_0000", b"t_\xff000", 1),  # a key that is not ASCII
], ids=["garbage", "truncated", "pickle", "dtype", "non-ascii"])
def test_unusable_binary_index_warns_and_the_json_index_is_read(tmp_path, capsys, mangle):
    samples = [_sample(n, n) for n in (5, 9, 3)]
    shard = _shard(tmp_path, samples)
    path = index_bin_path(shard.path)
    path.write_bytes(mangle(path.read_bytes()))
    os.utime(index_path(shard.path), ns=(0, 0))  # older than the mangled binary sidecar, which is tried first
    read = _read_all(shard)
    assert [np.array_equal(x.input_ids, s["ids"]) for x, s in zip(read, samples)] == [True] * 3
    err = capsys.readouterr().err
    assert "unusable binary index" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_hostile_binary_index_rows_are_bad_samples(tmp_path, capsys):
    samples = [_sample(n, n) for n in (5, 9, 3, 7, 4)]
    shard = _shard(tmp_path, samples)
    arr = index_bin.decode_index(index_bin_path(shard.path).read_bytes()).copy()
    arr["members"][0, 1, 0] = -5  # a negative offset
    arr["members"][1, 2, 1] = 1 << 40  # a huge image size
    arr["members"][2, 1] = arr["members"][2, 2]  # tokens.npy overlapping the image member
    arr["members"][3, :, 0] += 1 << 30  # past the end of the file
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=False)
    index_bin_path(shard.path).write_bytes(buf.getvalue())
    read = _read_all(shard)
    assert "implausible member span" in read[0] and "implausible member span" in read[1]
    assert "decode error" in read[2] and "tokens.npy" in read[2]
    assert "truncated shard" in read[3]
    assert np.array_equal(read[4].input_ids, samples[4]["ids"])
    assert "Traceback" not in capsys.readouterr().err


def test_json_index_edited_after_the_binary_one_wins(tmp_path):
    shard = _shard(tmp_path, [_sample(5, 0), _sample(6, 1)])
    data = json.loads(index_path(shard.path).read_text())
    del data["samples"][0]["members"]["tokens.npy"]
    index_path(shard.path).write_text(json.dumps(data))
    st = os.stat(index_bin_path(shard.path))
    os.utime(index_path(shard.path), ns=(st.st_atime_ns, st.st_mtime_ns + 10 ** 9))
    read = _read_all(shard)
    assert "lacks members ['tokens.npy']" in read[0] and read[1].key == data["samples"][1]["key"]


def test_validator_checks_the_binary_index(tmp_path):
    from shards_spec.validate import Report, check_index_bin

    shard = _shard(tmp_path, [_sample(5, 0), _sample(6, 1)])
    entries = json.loads(index_path(shard.path).read_text())["samples"]
    report = Report()
    check_index_bin(index_path(shard.path).with_name("t-train-2d-000000.tar"), entries, report)
    assert report.violations == []
    entries[1]["n_tokens"] += 1
    check_index_bin(index_path(shard.path).with_name("t-train-2d-000000.tar"), entries, report)
    assert any(": index-bin: " in v and "differs from the JSON index" in v for v in report.violations)
    index_bin_path(shard.path).write_bytes(b"junk")
    check_index_bin(index_path(shard.path).with_name("t-train-2d-000000.tar"), entries, report)
    assert any(": index-bin: not a binary index" in v for v in report.violations)


def test_old_writer_member_sets_get_no_binary_index(tmp_path):
    """A shard written with the 1.0-1.3 token members (as tests build old-format shards) has only a JSON index,
    and a stale binary sidecar of an earlier write is removed."""
    shard = _shard(tmp_path, [_sample(5, 0)])
    assert index_bin_path(shard.path).exists()
    s = _sample(5, 0)
    members = codec.encode_sample(input_ids=s["ids"], labels=s["labels"], loss_weight=s["weights"],
                                  meta={"key": "t_" + "0" * 20, "special_ids": {"base_vocab": 100}}, vision=s["vision"])
    arrays = codec.decode_sample({"tokens.npy": members.pop("tokens.npy")})
    members.update({f: codec.npy_bytes(a) for f, a in arrays.items()})
    writer = ShardWriter(shard.path, 0)
    writer.write("t_" + "0" * 20, members, SampleSummary("report", len(s["ids"]), 1, 1))
    writer.commit({})
    assert not index_bin_path(shard.path).exists()
    smp = _read_all(shard)[0]
    assert np.array_equal(smp.labels, s["labels"]) and np.array_equal(smp.loss_weight, s["weights"])
