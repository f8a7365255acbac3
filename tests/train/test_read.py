"""Correctness of the fast read path (``train.read``, ``shards_spec.codec``) and of the benchmark harness's
peer readers: in-place ``.npy`` parsing, stored zstd frames, every bad-sample check, the in-place collation, and
(when the peers are installed, as ``make bench`` does) that MosaicML Streaming and LitData give back exactly our
arrays. Speed is measured in ``bench/peers.py``, never here."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import zstandard

from shards_spec import codec
from shards_spec.layout import FIELDS, index_path
from shards_spec.reader import iter_raw_samples
from shards_spec.tario import TarSink
from train.collate import CollateConfig, Sample, collate, crop_box_for
from train.config import SourceConfig
from train.read import BadSample, FileCache, IndexCache, read_sample
from train.sources import ShardRef, resolve_sources

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
import bench.peers as peers  # noqa: E402  (the harness; importing it installs no stub)


# ============================================================================================ codec
@pytest.mark.parametrize("arr", [
    np.arange(191, dtype=np.int32), np.array([], dtype=np.int32), np.linspace(0, 3, 77, dtype=np.float32),
    np.random.default_rng(0).integers(0, 256, (2, 1, 8, 9, 3), dtype=np.uint8), np.zeros((1, 1, 1, 1, 1), np.uint8),
    np.arange(5, dtype=np.int64), np.array(3.5, dtype=np.float32),
])
def test_fast_npy_equals_numpy(arr):
    data = codec.npy_bytes(arr)
    fast = codec._fast_npy(data)
    assert fast is not None, "npy_bytes output must take the fast path"
    ref = np.load(io.BytesIO(data), allow_pickle=False)
    assert fast.dtype == ref.dtype and fast.shape == ref.shape and np.array_equal(fast, ref)
    assert np.array_equal(codec.load_npy(bytearray(data)), ref) and codec.load_npy(bytearray(data)).flags.writeable


def test_uncommon_npy_headers_go_through_numpy_and_pickles_are_refused():
    for arr in (np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)), np.arange(4, dtype=">i4")):
        data = _npy(arr)  # fortran order, big-endian: not the common header
        assert codec._fast_npy(data) is None
        assert np.array_equal(codec.load_npy(data), arr)
    obj = _npy(np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(codec.DecodeError):
        codec.load_npy(obj)
    good = codec.npy_bytes(np.arange(10, dtype=np.int32))
    assert codec._fast_npy(good[:-4]) is None  # short payload: numpy's reader explains
    with pytest.raises(codec.DecodeError):
        codec.load_npy(good[:-4])


def _npy(arr, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


@pytest.mark.parametrize("shape", [(1, 1, 512, 512, 1), (1, 1, 16, 16, 4), (1, 1, 1, 1, 1)])
def test_stored_frame_is_a_standard_zstd_frame(shape):
    vision = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    frame = codec.encode_vision(vision, level=0)
    raw = codec.npy_bytes(vision)
    params = zstandard.get_frame_parameters(frame)
    assert params.content_size == len(raw) and params.has_checksum
    assert zstandard.ZstdDecompressor().decompress(frame) == raw  # any zstd reader, not only ours
    assert np.array_equal(codec.decode_vision(frame), vision)
    assert len(frame) <= len(raw) + 13 + 3 * (len(raw) // (1 << 17) + 1) + 4
    flipped = bytearray(frame)
    flipped[len(frame) // 2] ^= 0x10
    with pytest.raises(codec.DecodeError, match="corrupt"):
        codec.decode_vision(bytes(flipped))


def test_compressed_levels_are_unchanged():
    vision = np.random.default_rng(2).integers(0, 8, (1, 1, 64, 64, 1), dtype=np.uint8)
    expected = zstandard.ZstdCompressor(level=3, write_content_size=True, write_checksum=True).compress(
        codec.npy_bytes(vision))
    assert codec.encode_vision(vision) == expected


# ============================================================================================ read_sample
def _write_shard(tmp_path: Path, samples: list[dict], level: int | str = 3, layout: str = "1.4") -> ShardRef:
    """``level="stored-1.2"``: the image as a spec 1.0-1.2 stored zstd frame (``vision.npy.zst`` at level 0).
    ``layout="1.3"`` (or a sample whose token arrays differ in length, which one ``tokens.npy`` cannot hold): the
    1.0-1.3 token members. Only a JSON index is written (the binary one is tested in ``test_read_format.py``)."""
    tar = tmp_path / "t-train-2d-000000.tar"
    entries = []
    with open(tar, "wb") as fh:
        sink = TarSink(fh, 0)
        for i, s in enumerate(samples):
            key = f"t_{i:020x}"
            lengths = {len(s["ids"]), len(s["labels"]), len(s["weights"])}
            image = codec.encode_sample(input_ids=[1], labels=[1], loss_weight=[1], meta={}, vision=s["vision"],
                                        zstd_level=3 if level == "stored-1.2" else level)
            members = {f: m for f, m in image.items() if f.startswith("vision.")}
            members["meta.json"] = codec.encode_meta({"key": key, "special_ids": {"base_vocab": 100}})
            if layout == "1.4" and len(lengths) == 1:
                members["tokens.npy"] = codec.encode_tokens(s["ids"], s["labels"], s["weights"])
            else:
                members.update({"input_ids.npy": codec.npy_bytes(np.asarray(s["ids"], np.int32)),
                                "labels.npy": codec.npy_bytes(np.asarray(s["labels"], np.int32)),
                                "loss_weight.npy": codec.npy_bytes(np.asarray(s["weights"], np.float32))})
            if level == "stored-1.2":
                members["vision.npy.zst"] = codec.encode_vision(s["vision"], level=0)
            recs = {f: sink.add(f"{key}.{f}", members[f]) for f in sorted(members)}
            entries.append({"key": key, "offset": min(r.header_offset for r in recs.values()), "size": 0,
                            "members": {f: [r.data_offset, r.size] for f, r in recs.items()},
                            "n_tokens": len(s["ids"]), "n_images": 1, "depth": 1})
        sink.close()
    index_path(tar).write_text(json.dumps({"samples": entries}))
    return ShardRef(str(tar), "2d", "train", "t", len(samples), 1.0, 0)


def _good(n=6) -> dict:
    ids = np.array([1, 100, *range(102, 102 + 32), 101, 7, 8][:max(n, 3)], dtype=np.int32)
    labels = np.where(ids >= 100, -100, ids).astype(np.int32)
    return {"ids": ids, "labels": labels, "weights": (labels >= 0).astype(np.float32),
            "vision": np.random.default_rng(n).integers(0, 256, (1, 1, 8, 8, 1), dtype=np.uint8)}


@pytest.mark.parametrize("layout", ["1.4", "1.3"])
@pytest.mark.parametrize("level", [0, 3])
def test_every_bad_sample_check(tmp_path, level, layout):
    cases = {
        "good": _good(36),
        "negative token id": {**_good(36), "ids": np.array([1, -4, 5], np.int32),
                              "labels": np.array([1, 2, 3], np.int32), "weights": np.ones(3, np.float32)},
        "image token": {**_good(36), "ids": np.array([1, 102 + 32, 5], np.int32),
                        "labels": np.array([1, 2, 3], np.int32), "weights": np.ones(3, np.float32)},
        "labels hold negative": {**_good(36), "labels": np.where(_good(36)["labels"] == 7, -5, _good(36)["labels"])},
        "labels below": {**_good(36), "labels": np.where(_good(36)["labels"] == 7, -101, _good(36)["labels"])},
        "not finite": {**_good(36), "weights": np.where(_good(36)["weights"] > 0, np.nan, 0).astype(np.float32)},
        "infinite": {**_good(36), "weights": np.where(_good(36)["weights"] > 0, np.inf, 0).astype(np.float32)},
        "huge but finite": {**_good(36), "weights": np.full(36, 3e38, np.float32)},
        "disagree": {**_good(36), "labels": _good(36)["labels"][:-1]},
    }
    shard = _write_shard(tmp_path, list(cases.values()), level, layout)
    index, files = IndexCache(), FileCache(2)
    entries = index.get(shard)
    for (name, case), entry in zip(cases.items(), entries):
        if name in ("good", "huge but finite"):
            smp = read_sample(files, shard, entry, 3, index)
            assert np.array_equal(smp.input_ids, case["ids"]) and np.array_equal(smp.vision, case["vision"])
            assert smp.epoch == 3 and smp.meta["key"] == entry["key"] and smp.input_ids.flags.writeable
            continue
        with pytest.raises(BadSample) as err:
            read_sample(files, shard, entry, 0, index)
        expect = {"labels below": "labels hold negative", "infinite": "not finite",
                  "disagree": "token arrays disagree"}.get(name, name)
        assert expect in str(err.value), (name, str(err.value))
    # malformed entries and spans past the end are bad samples too, not crashes
    bad_entries = [{"key": "x"}, {"key": "x", "members": {f: [0, 1] for f in FIELDS[:-1]}},
                   {"key": "x", "members": {f: ["a", 1] for f in FIELDS}},
                   {"key": "x", "members": {f: [10 ** 9, 10] for f in FIELDS}}]
    reasons = ["no members", "lacks members", "malformed", "truncated shard"]
    for entry, reason in zip(bad_entries, reasons):
        with pytest.raises(BadSample, match=reason):
            read_sample(files, shard, entry, 0, index)
    files.close()


def test_uncompressed_image_member_is_a_view_of_the_map_and_old_stored_frames_still_read(tmp_path):
    """Spec 1.3: ``--zstd-level 0`` writes ``vision.npy``; the reader returns it in place (read-only, no copy);
    a garbled one is a bad sample; a spec 1.2 stored zstd frame (``vision.npy.zst`` at level 0) still reads."""
    good = _good(36)
    members = codec.encode_sample(input_ids=good["ids"], labels=good["labels"], loss_weight=good["weights"],
                                  meta={}, vision=good["vision"], zstd_level=0)
    assert "vision.npy" in members and "vision.npy.zst" not in members
    assert members["vision.npy"] == codec.npy_bytes(good["vision"])
    assert codec.decode_sample(members)["vision.npy.zst"].flags.writeable  # library callers get an owned array
    with pytest.raises(codec.DecodeError):
        codec.decode_member("vision.npy", members["vision.npy"][:-1])

    shard = _write_shard(tmp_path, [good, good], 0)
    index, files = IndexCache(), FileCache(2)
    entries = index.get(shard)
    smp = read_sample(files, shard, entries[0], 0, index)
    assert np.array_equal(smp.vision, good["vision"]) and not smp.vision.flags.writeable
    assert not smp.vision.flags.owndata and smp.vision.base is not None  # a view, not a copy
    both = {**entries[1], "members": {**entries[1]["members"], "vision.npy.zst": entries[1]["members"]["vision.npy"]}}
    with pytest.raises(BadSample, match="both"):
        read_sample(files, shard, both, 0, index)
    off, size = entries[1]["members"]["vision.npy"]
    files.close()
    with open(shard.path, "r+b") as fh:  # a header that no longer matches the payload
        fh.seek(off + 10)
        fh.write(b"{'descr': '<f8'")
    with pytest.raises(BadSample, match="vision.npy"):
        read_sample(FileCache(2), shard, entries[1], 0, IndexCache())

    old = tmp_path / "old"
    old.mkdir()
    shard = _write_shard(old, [good], "stored-1.2", "1.3")
    entry = IndexCache().get(shard)[0]
    assert "vision.npy.zst" in entry["members"]
    smp = read_sample(FileCache(1), shard, entry, 0, IndexCache())
    assert np.array_equal(smp.vision, good["vision"])


def test_read_sample_equals_the_tar_walking_reader(demo_shards):
    shards = resolve_sources([SourceConfig(str(demo_shards), splits=["train", "validate", "test"])])
    index, files = IndexCache(), FileCache(3)
    checked = 0
    for shard in shards["2d"][:3] + shards["3d"][:2]:
        walked = {raw.key: raw.decode() for raw in iter_raw_samples(shard.path)}
        for entry in index.get(shard):
            smp = read_sample(files, shard, entry, 0, index)
            ref = walked[entry["key"]]
            assert np.array_equal(smp.input_ids, ref["input_ids.npy"]) and np.array_equal(smp.labels, ref["labels.npy"])
            assert np.array_equal(smp.loss_weight, ref["loss_weight.npy"]) and smp.meta == ref["meta.json"]
            assert np.array_equal(smp.vision, ref["vision.npy.zst"]) and smp.vision.dtype == np.uint8
            checked += 1
    files.close()
    assert checked >= 10


# ============================================================================================ collation
@pytest.mark.parametrize("mode", ["trilinear", "nearest"])
def test_in_place_collation_equals_a_plain_crop_and_resize(mode):
    rng = np.random.default_rng(4)
    samples = [Sample(f"k{i}", np.arange(5, dtype=np.int32), np.arange(5, dtype=np.int32), np.ones(5, np.float32),
                      rng.integers(0, 256, (1, 1, 64, 64, 1), dtype=np.uint8), epoch=2) for i in range(3)]
    cfg = CollateConfig(augment=True, image_size=48, resize_mode=mode)
    v = collate(samples, cfg)["vision_x"]
    assert v.shape == (3, 1, 3, 48, 48, 4) and v.stride()[2] == 0
    for i, smp in enumerate(samples):
        top, left, h, w = crop_box_for(cfg, 2, smp.key, 0, 64, 64)
        crop = torch.from_numpy(smp.vision[0, 0, top:top + h, left:left + w, 0].astype(np.float32))[None, None]
        kw = {"mode": "bilinear", "align_corners": False} if mode == "trilinear" else {"mode": "nearest"}
        ref = (F.interpolate(crop, size=(48, 48), **kw)[0, 0] / 255).clamp(0, 1)
        assert torch.allclose(v[i, 0, 0, :, :, 0], ref, atol=1e-6)
        assert torch.equal(v[i, 0, 2, :, :, 3], v[i, 0, 0, :, :, 0])
    bf16 = collate(samples, CollateConfig(augment=True, image_size=48, resize_mode=mode, vision_dtype="bfloat16"))
    assert torch.allclose(bf16["vision_x"].float(), v, atol=1e-2)


# ============================================================================================ peers (bench)
def _peer_samples(demo_shards) -> list[Sample]:
    shard = resolve_sources([SourceConfig(str(demo_shards / "mimic"), splits=["train"])])["2d"][0]
    index, files = IndexCache(), FileCache(1)
    out = [read_sample(files, shard, e, 0, index) for e in index.get(shard)]
    files.close()
    return out


@pytest.mark.slow
def test_peer_readers_return_our_arrays(demo_shards, tmp_path):
    """The benchmark's MDS and LitData datasets hold exactly our samples. Runs ``bench/peers.py --check`` in its
    own process (the harness stubs ``torchvision`` there, never in the test process); skipped unless `make bench`
    installed the peers. The benchmark also checks every sample of the first pass of every reader it times."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "peers.py"), "--check", str(demo_shards / "mimic"),
                           "--work", str(tmp_path)], capture_output=True, text=True, timeout=600)
    if proc.returncode == peers.CHECK_NO_PEERS:
        pytest.skip("MosaicML Streaming and LitData are not installed (make bench installs them)")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "same arrays" in proc.stdout


def test_peer_collate_equals_ours(demo_shards):
    samples = _peer_samples(demo_shards)[:4]
    cfg = CollateConfig(augment=True)
    ours = collate(samples, cfg, "2d")
    theirs = peers.peer_collate(cfg, 0, dense=False)([peers.as_fields(s) for s in samples])
    for f in ("input_ids", "attention_mask", "labels", "loss_weight"):
        assert torch.equal(ours[f], theirs[f]), f
    assert ours["vision_x"].shape == theirs["vision_x"].shape
    assert torch.allclose(ours["vision_x"], theirs["vision_x"], atol=1e-6)
