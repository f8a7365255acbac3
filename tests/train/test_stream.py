"""Fast tests of the trainer's streams (no DeepSpeed): dealing, block shuffle, exact resumption, collation rules,
augmentation, bad samples, sources and the tokenizer check. (The schedule, config and entry-point tests are in
test_schedule.py, test_config.py and test_run.py.)"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import brace, shard_tars

from shards_spec import codec
from shards_spec.layout import closest_depth, index_path
from train.collate import (
    CollateConfig,
    Sample,
    collate,
    crop_box_for,
    resize_image,
    target_geometry,
)
from train.config import SourceConfig
from train.sources import ShardRef, SourceError, check_tokenizers, resolve_source, resolve_sources, tokenizer_fingerprints
from train.stream import (
    LanePlan,
    StreamConfig,
    StreamDataset,
    StreamLoader,
    block_order,
    deal,
    epoch_shard_order,
    interleave,
    pad_to_batches,
    part_indices,
)


# ============================================================================================ dealing
@pytest.mark.parametrize("n_items,world,workers", [(3, 2, 2), (1, 2, 2), (4, 2, 2), (10, 2, 2), (7, 3, 2), (5, 1, 1)])
def test_deal_gives_every_slot_data_and_covers_everything(n_items, world, workers):
    slots = {(r, w): deal(n_items, world, workers, r, w) for r in range(world) for w in range(workers)}
    assert all(slots.values()), "a slot got nothing"
    assert slots == {(r, w): deal(n_items, world, workers, r, w) for r in range(world) for w in range(workers)}
    parts: dict[int, list[tuple[int, int]]] = {}
    for assigned in slots.values():
        for i, part, nparts in assigned:
            parts.setdefault(i, []).append((part, nparts))
    assert sorted(parts) == list(range(n_items))  # every item dealt
    for i, ps in parts.items():
        nparts = {n for _, n in ps}
        assert len(nparts) == 1
        assert sorted(p for p, _ in ps) == list(range(nparts.pop()))  # parts 0..n-1 exactly once
    if n_items >= world * workers:
        assert all(len(ps) == 1 for ps in parts.values())  # no sharing needed


def test_deal_round_robin_to_ranks_then_workers():
    # 8 shards, 2 ranks x 2 workers: rank = t % 2, worker = (t // 2) % 2
    assert [i for i, _, _ in deal(8, 2, 2, 0, 0)] == [0, 4]
    assert [i for i, _, _ in deal(8, 2, 2, 1, 0)] == [1, 5]
    assert [i for i, _, _ in deal(8, 2, 2, 0, 1)] == [2, 6]
    assert [i for i, _, _ in deal(8, 2, 2, 1, 1)] == [3, 7]


def test_part_indices_split_a_shared_shard():
    n, nparts = 6, 4
    got = [part_indices(n, p, nparts) for p in range(nparts)]
    assert sorted(sum(got, [])) == list(range(n))
    assert part_indices(1, 1, 2) == [0]  # a part beyond the samples still gets one


def _shard(i: int, weight: float = 1.0) -> ShardRef:
    return ShardRef(f"/x/s{i}.tar", "2d", "train", "x", 5, weight, 0)


def test_epoch_shard_order_weights_and_shuffle():
    shards = [_shard(i) for i in range(6)] + [_shard(10 + i, 2.0) for i in range(3)] + [_shard(20 + i, 0.5) for i in range(40)]
    e0 = epoch_shard_order(shards, 0, "2d", 0)
    assert e0 == epoch_shard_order(shards, 0, "2d", 0)
    assert e0 != epoch_shard_order(shards, 0, "2d", 1)
    c = Counter(e0)
    assert all(c[i] == 1 for i in range(6)) and all(c[6 + i] == 2 for i in range(3))
    halves = sum(1 for i in range(9, 49) if c[i])
    assert 10 <= halves <= 30 and all(c[i] <= 1 for i in range(9, 49))


def test_interleave_round_robin():
    out = interleave([["a0", "a1", "a2"], ["b0"], ["c0", "c1"]], 2)
    assert [x for _, x in out] == ["a0", "b0", "a1", "c0", "a2", "c1"]
    assert [x for _, x in interleave([[1, 2], [3, 4]], 1)] == [1, 2, 3, 4]


def test_block_order_permutes_within_blocks_and_groups_lengths():
    lengths = [int(x) for x in np.random.default_rng(0).integers(10, 500, 100)]
    order = block_order(lengths, 32, 4, False, ("s",))
    assert sorted(order) == list(range(100))
    for b0 in range(0, 100, 32):
        assert sorted(order[b0:b0 + 32]) == list(range(b0, min(b0 + 32, 100)))
    assert order == block_order(lengths, 32, 4, False, ("s",))
    assert order != block_order(lengths, 32, 4, False, ("t",))
    grouped = block_order(lengths, 32, 4, True, ("s",))
    assert sorted(grouped) == list(range(100))
    waste_grouped = sum(4 * max(lengths[p] for p in grouped[i:i + 4]) - sum(lengths[p] for p in grouped[i:i + 4])
                        for i in range(0, 96, 4))
    waste_plain = sum(4 * max(lengths[p] for p in order[i:i + 4]) - sum(lengths[p] for p in order[i:i + 4])
                      for i in range(0, 96, 4))
    assert waste_grouped < 0.5 * waste_plain


# ============================================================================================ streams on demo shards
#: the demo datasets the stream tests read (MIMIC's 2D and Rad3D's 3D shards: their sizes make the tests cross
#: epochs); the demo root holds every registered source's shards
STREAM_DATASETS = ("mimic", "rad3d")


def _demo(demo_shards: Path) -> dict[str, list[ShardRef]]:
    return resolve_sources([SourceConfig(str(demo_shards / name)) for name in STREAM_DATASETS])


def _cfg(name: str, bs: int, **kw) -> StreamConfig:
    return StreamConfig(name=name, batch_size=bs, block_size=kw.pop("block", 8), interleave=kw.pop("interleave", 2),
                        seed=kw.pop("seed", 3), lanes=kw.pop("lanes", 1), collate=CollateConfig(image_size=64, **kw))


def test_sources_resolve_all_forms(demo_shards):
    root = resolve_sources([SourceConfig(str(demo_shards))])  # every dataset below the root
    assert len(root["2d"]) >= 3 and len(root["3d"]) >= 3
    assert all(s.split == "train" for s in root["2d"] + root["3d"])
    assert {s.dataset for s in root["2d"] + root["3d"]} == {p.parent.name for p in demo_shards.glob("*/manifest.json")}
    mimic = resolve_source(SourceConfig(str(demo_shards / "mimic")))
    assert mimic and [s.path for s in mimic] == [s.path for s in root["2d"] if s.dataset == "mimic"]
    root = _demo(demo_shards)
    manifest = resolve_source(SourceConfig(str(demo_shards / "mimic" / "manifest.json"), splits=["test"]))
    assert manifest and all(s.split == "test" for s in manifest)
    first = Path(root["2d"][0].path)
    second = Path(root["2d"][1].path)
    urls = resolve_source(SourceConfig(brace([first, second]), weight=2.0))
    assert [Path(s.path).name for s in urls] == [first.name, second.name]
    assert urls[0].samples == root["2d"][0].samples and urls[0].weight == 2.0
    with pytest.raises(SourceError):
        resolve_source(SourceConfig(str(demo_shards / "nope")))


def _keys(batches) -> list[list[str]]:
    return [b["keys"] for b in batches]


def test_block_shuffle_seek_resume_equivalence(demo_shards):
    """A rank's stream restarted at any batch with the lanes' epoch markers emits exactly what the uninterrupted
    stream emitted next, across epoch boundaries; worker w of N emits batches w, w+N, ... of that stream."""
    shards = _demo(demo_shards)["2d"]
    cfg = _cfg("2d", 6, block=6, lanes=2)
    it = StreamDataset(shards, cfg, rank=1, world_size=2).batches(worker=0, num_workers=1)
    full = [next(it) for _ in range(14)]
    assert [b["index"] for b in full] == list(range(14))
    assert any(b["epoch"] >= 2 for b in full), "the test should cross epoch boundaries"
    for k in (0, 3, 7, 11):
        resumed = StreamDataset(shards, cfg, rank=1, world_size=2, start=k + 1, lane_epochs=full[k]["lanes"])
        assert _keys(b for _, b in zip(range(14 - k - 1), resumed.batches(0, 1))) == _keys(full[k + 1:])
    odd = StreamDataset(shards, cfg, rank=1, world_size=2).batches(worker=1, num_workers=2)
    assert _keys(b for _, b in zip(range(7), odd)) == _keys(full[1::2])
    # an epoch is the lane's dealt samples, padded with fewer than lane_batch repeats to whole lane batches
    plan = LanePlan(shards, cfg, 1)
    keys0 = plan.keys(0)
    assert len(keys0) % 3 == 0 and len(keys0) - len(set(keys0)) < 3
    assert plan.keys(0) == keys0 and plan.keys(1) != keys0


def test_pad_to_batches():
    assert pad_to_batches([5, 1, 4, 2, 3], 2, False) == [5, 1, 4, 2, 3, 5]
    assert pad_to_batches([5, 1, 4, 2, 3], 4, True) == [5, 1, 4, 2, 3, 1, 4, 2]  # nearest before the tail
    assert pad_to_batches([7], 4, True) == [7, 7, 7, 7]
    assert pad_to_batches([1, 2, 3, 4], 4, True) == [1, 2, 3, 4]


def test_batches_stay_aligned_with_length_groups_across_epochs(demo_shards):
    """Token efficiency: grouped batches never straddle epochs, so every batch is one length group."""
    shards = _demo(demo_shards)["2d"]
    cfg = _cfg("2d", 4, block=64)
    it = StreamDataset(shards, cfg).batches(0, 1)
    batches = [next(it) for _ in range(30)]
    assert len({b["epoch"] for b in batches}) >= 3
    eff = sum(int(b["attention_mask"].sum()) for b in batches) / sum(b["attention_mask"].numel() for b in batches)
    plain = StreamDataset(shards, StreamConfig("2d", 4, 64, 2, False, 3, CollateConfig(image_size=64))).batches(0, 1)
    plain_batches = [next(plain) for _ in range(30)]
    eff_plain = (sum(int(b["attention_mask"].sum()) for b in plain_batches)
                 / sum(b["attention_mask"].numel() for b in plain_batches))
    assert eff > 0.9 and eff > eff_plain


def test_lanes_partition_an_epoch(demo_shards):
    shards = _demo(demo_shards)["3d"]
    cfg = _cfg("3d", 4, lanes=4)
    all_keys = [k for lane in range(4) for k in LanePlan(shards, cfg, lane).keys(0)]
    expected = sum(s.samples for s in shards)
    assert len(all_keys) == expected and len(set(all_keys)) == expected  # disjoint and complete


def test_loader_state_resume_with_workers(demo_shards):
    """StreamLoader with 2 DataLoader workers: stop after n batches, resume from state_dict -> same batches."""
    shards = _demo(demo_shards)["2d"]
    cfg = _cfg("2d", 4, block=4)  # global batch 4 on 2 ranks: 2 per rank, one lane
    ref = StreamLoader(shards, cfg, 0, 2, num_workers=2)
    full = [ref.next()["keys"] for _ in range(11)]
    first = StreamLoader(shards, cfg, 0, 2, num_workers=2)
    head = [first.next()["keys"] for _ in range(5)]
    state = json.loads(json.dumps(first.state_dict()))  # survives serialisation
    first.close()
    second = StreamLoader(shards, cfg, 0, 2, num_workers=2, state=state)
    tail = [second.next()["keys"] for _ in range(6)]
    assert head + tail == full
    assert state["batches"] == 5 and state["global_batch"] == 4 and set(state["cursors"]) == {"0"}
    # the broadcast vision_x view survives the worker -> main process hand-over
    b = second.next()
    v = b["vision_x"]
    assert v.shape == (2, 1, 3, 64, 64, 4) and 0 in v.stride()
    assert torch.equal(v.contiguous()[:, :, 1], v.contiguous()[:, :, 0])


def test_stream_is_deterministic(demo_shards):
    shards = _demo(demo_shards)["2d"]
    a = StreamLoader(shards, _cfg("2d", 2), 0, 1, num_workers=0)
    b = StreamLoader(shards, _cfg("2d", 2), 0, 1, num_workers=0)
    assert [a.next()["keys"] for _ in range(5)] == [b.next()["keys"] for _ in range(5)]


# ============================================================================================ collation
def test_closest_depth_rule_and_ties():
    choices = tuple(range(4, 65, 4))
    assert closest_depth(1, choices) == 4
    assert closest_depth(6, choices) == 4  # tie 4/8 -> smaller
    assert closest_depth(7, choices) == 8
    assert closest_depth(10, choices) == 8  # tie 8/12 -> 8
    assert closest_depth(62, choices) == 60  # tie 60/64 -> 60
    assert closest_depth(100, choices) == 64


def test_target_geometry_rules():
    cfg = CollateConfig()
    assert target_geometry([1, 1, 1, 1], [1, 1, 1, 1], cfg) == (512, 4)  # 2D batch
    assert target_geometry([12], [1], cfg) == (256, 12)  # one 3D sample, depth > 4 -> 256^2
    assert target_geometry([4], [2], cfg) == (512, 4)  # depth 4 stays 512^2
    assert target_geometry([1], [1], cfg) == (512, 4)  # a 2D batch of one
    assert target_geometry([64, 12], [1, 1], cfg) == (512, 64)  # two samples: 512^2
    assert target_geometry([64], [7], cfg) == (256, 32)  # > 6 images: depth <= 32
    assert target_geometry([64], [6], cfg) == (256, 64)
    assert target_geometry([64], [1], CollateConfig(image_size=128)) == (128, 64)
    assert target_geometry([40], [7], CollateConfig(many_images_threshold=10)) == (256, 40)


def _sample(key: str, n_tok: int, vision: np.ndarray, epoch: int = 0) -> Sample:
    ids = np.arange(1, n_tok + 1, dtype=np.int32)
    labels = ids.copy()
    labels[:2] = -100
    w = np.ones(n_tok, np.float32)
    w[:2] = 0
    return Sample(key, ids, labels, w, vision, epoch)


def test_collate_padding_channels_and_images():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (1, 1, 32, 32, 1), dtype=np.uint8)
    a[0, 0, 0, 0, 0] = 255
    b = rng.integers(0, 256, (2, 3, 32, 32, 1), dtype=np.uint8)
    batch = collate([_sample("a", 3, a), _sample("b", 5, b)], CollateConfig(image_size=32), "2d")
    assert batch["input_ids"].shape == (2, 5) and batch["input_ids"].dtype == torch.long
    assert batch["input_ids"][0].tolist() == [1, 2, 3, 0, 0]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert batch["labels"][0].tolist() == [-100, -100, 3, -100, -100]
    assert batch["loss_weight"][0].tolist() == [0, 0, 1, 0, 0] and batch["loss_weight"].dtype == torch.float32
    v = batch["vision_x"]
    assert v.shape == (2, 2, 3, 32, 32, 4) and v.dtype == torch.float32
    # grey -> 3 identical channels, depth 1 -> 4 identical slices, uint8 -> [0, 1]
    assert torch.equal(v[0, 0, 0], v[0, 0, 1]) and torch.equal(v[0, 0, 0], v[0, 0, 2])
    assert torch.equal(v[0, 0, ..., 0], v[0, 0, ..., 3])
    assert v[0, 0, 0, 0, 0, 0].item() == 1.0 and 0.0 <= v.min() and v.max() <= 1.0
    expected = torch.from_numpy(a[0, 0, :, :, 0]).float() / 255
    assert torch.allclose(v[0, 0, 0, :, :, 0], expected)
    # padded image slot is all zeros; RGB kept per channel
    assert v[0, 1].abs().sum() == 0
    assert torch.allclose(v[1, 1, 2, :, :, 0], torch.from_numpy(b[1, 2, :, :, 0]).float() / 255)
    assert batch["keys"] == ["a", "b"] and batch["stream"] == "2d" and batch["n_real_tokens"] == 8
    dense = collate([_sample("a", 3, a), _sample("b", 5, b)], CollateConfig(image_size=32, dense_vision=True))
    assert dense["vision_x"].is_contiguous() and torch.equal(dense["vision_x"], v)
    grey = collate([_sample("a", 3, a)], CollateConfig(image_size=32))["vision_x"]
    assert grey.stride()[2] == 0 and grey.stride()[-1] == 0  # channels and slices are broadcast


def test_collate_3d_rules_on_real_shapes():
    vol = np.random.default_rng(1).integers(0, 256, (1, 1, 64, 64, 12), dtype=np.uint8)
    cfg = CollateConfig(image_size_default=64, image_size_single_3d=32)
    batch = collate([_sample("v", 4, vol)], cfg, "3d")
    assert batch["vision_x"].shape == (1, 1, 3, 32, 32, 12)
    many = np.zeros((7, 1, 64, 64, 64), np.uint8)
    assert collate([_sample("m", 4, many)], cfg, "3d")["vision_x"].shape == (1, 7, 3, 32, 32, 32)


@pytest.mark.parametrize("mode", ["trilinear", "nearest"])
def test_separable_resize_matches_f_interpolate(mode):
    img = torch.from_numpy(np.random.default_rng(2).integers(0, 256, (1, 40, 40, 12), dtype=np.uint8))
    ours = resize_image(img, 24, 8, mode)
    ref = F.interpolate(img[None].float(), size=(24, 24, 8), mode=mode,
                        **({"align_corners": False} if mode == "trilinear" else {}))[0] / 255
    if mode == "nearest":  # the same source voxels are picked (compare on the uint8 scale)
        assert torch.equal((ours * 255).round(), (ref * 255).round())
    else:
        assert torch.allclose(ours, ref.clamp(0, 1), atol=1e-5)


def test_augmentation_is_deterministic_and_in_range():
    cfg = CollateConfig(augment=True, seed=5)
    box = crop_box_for(cfg, 2, "mimic_abc", 0, 512, 512)
    assert box == crop_box_for(cfg, 2, "mimic_abc", 0, 512, 512)
    boxes = {crop_box_for(cfg, e, "mimic_abc", 0, 512, 512) for e in range(20)}
    assert len(boxes) > 15  # a new crop each epoch
    for e in range(200):
        top, left, h, w = crop_box_for(cfg, e, f"k{e}", 0, 512, 512)
        assert 0 <= top and top + h <= 512 and 0 <= left and left + w <= 512
        assert 0.8 * 512 * 512 * 0.97 <= h * w <= 512 * 512
        assert 3 / 4 * 0.97 <= w / h <= 4 / 3 * 1.03
    img = np.random.default_rng(3).integers(0, 256, (1, 1, 512, 512, 1), dtype=np.uint8)
    b1 = collate([_sample("mimic_abc", 4, img, epoch=2)], cfg, "2d")["vision_x"]
    b2 = collate([_sample("mimic_abc", 4, img, epoch=2)], cfg, "2d")["vision_x"]
    b3 = collate([_sample("mimic_abc", 4, img, epoch=3)], cfg, "2d")["vision_x"]
    plain = collate([_sample("mimic_abc", 4, img, epoch=2)], CollateConfig(), "2d")["vision_x"]
    assert torch.equal(b1, b2) and not torch.equal(b1, b3) and not torch.equal(b1, plain)
    assert b1.shape == plain.shape == (1, 1, 3, 512, 512, 4)


# ============================================================================================ bad samples
def _corrupt_copy(demo_shards: Path, tmp_path: Path) -> tuple[Path, str]:
    src, second = shard_tars(demo_shards / "mimic" / "2d" / "train", 2)
    dst_dir = tmp_path / "mimic" / "2d" / "train"
    dst_dir.mkdir(parents=True)
    for t in (src, second):
        for f in src.parent.glob(t.name.replace(".tar", ".*")):
            shutil.copy(f, dst_dir / f.name)
    tar = dst_dir / src.name
    entry = json.loads((dst_dir / src.name.replace(".tar", ".index.json")).read_text())["samples"][2]
    off, size = entry["members"]["vision.npy.zst"]
    with open(tar, "r+b") as fh:
        fh.seek(off)
        fh.write(b"\xff" * 64)
    return tar, entry["key"]


def test_corrupt_sample_is_replaced_counted_once_and_world_size_blind(demo_shards, tmp_path):
    """A bad sample's place is taken by the next good sample of its lane's epoch (which keeps its own place too);
    it is reported once, by the rank holding its position; batches, reports and resumption are the same on 1 or
    2 ranks (the substitution never moves a batch boundary)."""
    tar, bad_key = _corrupt_copy(demo_shards, tmp_path)
    shards = resolve_source(SourceConfig(brace(shard_tars(tar.parent, 2))))
    cfg = _cfg("2d", 4, block=6)
    it = StreamDataset(shards, cfg).batches(0, 1)
    batches = [next(it) for _ in range(8)]
    bad = [b for batch in batches for b in batch["bad"]]
    assert bad and all(b["key"] == bad_key and b["shard"] == str(tar) for b in bad)
    assert "decode error" in bad[0]["reason"]
    assert all(len(b["keys"]) == 4 and bad_key not in b["keys"] for b in batches)
    k = next(i for i, b in enumerate(batches) if b["bad"])
    order = LanePlan(shards, cfg, 0).keys(batches[k]["epoch"])
    first = (k - sum(1 for b in batches[:k] if b["epoch"] < batches[k]["epoch"])) * 4
    planned = order[first:first + 4]
    pos = planned.index(bad_key)
    after = order[first + pos + 1:] + order[:first + pos]
    substitute = next(key for key in after if key != bad_key)
    assert batches[k]["keys"] == planned[:pos] + [substitute] + planned[pos + 1:]
    two = [StreamDataset(shards, cfg, rank=r, world_size=2).batches(0, 1) for r in range(2)]
    halves = [[next(two[0]), next(two[1])] for _ in range(8)]
    assert [h[0]["keys"] + h[1]["keys"] for h in halves] == _keys(batches)
    assert [len(h[0]["bad"]) + len(h[1]["bad"]) for h in halves] == [len(b["bad"]) for b in batches]
    resumed = StreamDataset(shards, cfg, start=k, lane_epochs=batches[k - 1]["lanes"] if k else None).batches(0, 1)
    again = [next(resumed) for _ in range(8 - k)]
    assert _keys(again) == _keys(batches[k:]) and [len(b["bad"]) for b in again] == [len(b["bad"]) for b in batches[k:]]


def test_truncated_shard_and_missing_members(demo_shards, tmp_path):
    tar, _ = _corrupt_copy(demo_shards, tmp_path)
    other = shard_tars(tar.parent, 2)[1]
    entries = json.loads(other.with_name(other.name.replace(".tar", ".index.json")).read_text())["samples"]
    with open(other, "r+b") as fh:  # cut the tar inside its last sample
        fh.truncate(entries[-1]["offset"] + 700)
    idx = tar.with_name(tar.name.replace(".tar", ".index.json"))
    data = json.loads(idx.read_text())
    del data["samples"][0]["members"]["tokens.npy"]  # the JSON sidecar, edited after the binary one, wins
    idx.write_text(json.dumps(data))
    shards = resolve_source(SourceConfig(brace(shard_tars(tar.parent, 2))))
    it = StreamDataset(shards, _cfg("2d", 2, block=20)).batches(0, 1)
    reasons = []
    while len(reasons) < 3:
        reasons += [b["reason"] for b in next(it)["bad"]]
    assert any("truncated" in r for r in reasons)
    assert any("lacks members" in r for r in reasons)
    assert any("decode error" in r for r in reasons)


def test_missing_index_sidecar_falls_back_to_walking_the_tar(demo_shards, tmp_path):
    tar, _ = _corrupt_copy(demo_shards, tmp_path)
    other = shard_tars(tar.parent, 2)[1]
    n = len(json.loads(other.with_name(other.name.replace(".tar", ".index.json")).read_text())["samples"])
    other.with_name(other.name.replace(".tar", ".index.json")).unlink()
    shards = resolve_source(SourceConfig(str(other)))
    assert shards[0].samples == n
    it = StreamDataset(shards, _cfg("2d", 1)).batches(0, 1)
    keys = {next(it)["keys"][0] for _ in range(n)}
    assert len(keys) == n


def test_sources_must_share_the_models_tokenizer(demo_shards, tmp_path):
    """Shards built with another tokenizer (or for another vocabulary) are refused before training starts."""
    shards = resolve_sources([SourceConfig(path=str(demo_shards))])
    found = tokenizer_fingerprints(shards)
    assert set(found) == {p.parent.name for p in demo_shards.glob("*/manifest.json")} and len(set(found.values())) == 1
    assert check_tokenizers(shards, 32000).base_vocab == 32000
    with pytest.raises(SourceError, match="vocab_size is 32100"):
        check_tokenizers(shards, 32100)
    # a copy of one dataset whose samples claim another tokenizer
    other = tmp_path / "other"
    shutil.copytree(demo_shards / "mimic", other / "mimic")
    for tar in (other / "mimic").rglob("*.tar"):
        entry = json.loads(index_path(tar).read_text())["samples"][0]
        off, size = entry["members"]["meta.json"]
        data = bytearray(tar.read_bytes())
        meta = codec.decode_meta(bytes(data[off:off + size]))
        patched = codec.encode_meta({**meta, "tokenizer": meta["tokenizer"].replace("sha256:", "sha256:f")[:len(meta["tokenizer"])]})
        assert len(patched) == size
        data[off:off + size] = patched
        tar.write_bytes(bytes(data))
    mixed = resolve_sources([SourceConfig(path=str(other)), SourceConfig(path=str(demo_shards / "rad3d"))])
    with pytest.raises(SourceError, match="different tokenizers"):
        check_tokenizers(mixed, 32000)


# ============================================================================================ hostile shards
def _train_2d_keys(dataset: Path) -> tuple[list[str], list[Path]]:
    manifest = json.loads((dataset / "manifest.json").read_text())
    tars = [dataset / s["path"] for s in manifest["shards"] if s["split"] == "train" and s["stream"] == "2d"]
    return [e["key"] for t in tars for e in json.loads(index_path(t).read_text())["samples"]], tars


def test_mistyped_meta_and_index_entries_are_bad_samples_not_crashes(demo_shards, tmp_path):
    """Each kind of mistyped record is skipped, counted and named once per epoch; every other sample is read."""
    from shard_edit import edit_dataset, edit_index

    keys, _ = _train_2d_keys(demo_shards / "mimic")
    meta_list, meta_key, no_labels = keys[:3]
    deep = keys[-1]

    def mutate(key, members):
        if key == deep:  # Python's JSON parser gives up with a RecursionError
            members["meta.json"] = b"[" * 100_000
        elif key in (meta_list, meta_key):
            meta = codec.decode_meta(members["meta.json"])
            meta.update({"special_ids": [0, 1, 2]} if key == meta_list else {"key": "mimic_" + "f" * 20})
            members["meta.json"] = codec.encode_meta(meta)
        elif key == no_labels:
            members.pop("tokens.npy")
        return members

    dataset = edit_dataset(demo_shards / "mimic", tmp_path / "mimic", mutate)
    _, tars = _train_2d_keys(dataset)
    entries = json.loads(index_path(tars[0]).read_text())["samples"]
    assert deep not in {e["key"] for e in entries[3:6]}
    n_tokens_str, key_int, members_obj = (e["key"] for e in entries[3:6])

    def retype(entries):
        entries[3]["n_tokens"] = "many"
        entries[4]["key"] = 5
        entries[5]["members"]["tokens.npy"] = {"offset": 1}

    edit_index(tars[0], retype)
    shards = resolve_sources([SourceConfig(str(dataset))])["2d"]
    loader = StreamLoader(shards, _cfg("2d", 2, block=64), 0, 1, 0)
    good, bad, reports = [], {}, 0
    while True:
        batch = loader.next()
        if batch["epoch"] > 0:
            break
        good += batch["keys"]
        bad.update({b["key"]: b["reason"] for b in batch["bad"]})
        reports += len(batch["bad"])
    expected = {
        meta_list: "meta.json: special_ids list",
        meta_key: "does not match the index",
        no_labels: "index entry lacks members ['tokens.npy']",
        deep: "meta.json: invalid JSON (JSON nested too deeply to parse)",
        n_tokens_str: "index entry n_tokens: expected int, got str",
        5: "index entry key: expected str, got int",
        members_obj: "malformed member offsets",
    }
    # the loader's count also holds the bad samples of the next epoch's first batch (fetched to see the epoch end)
    assert set(bad) == set(expected) and reports == len(expected) and loader.bad == reports + len(batch["bad"])
    for key, reason in expected.items():
        assert reason in bad[key], (key, bad[key])
    assert set(good) == set(keys) - set(expected) - {key_int}


def test_bad_manifest_entries_are_skipped_and_counted(demo_shards, tmp_path, caplog):
    """A mistyped shard entry (and one with an unknown stream, a path outside the folder, or a missing shard) is
    left out with a warning and counted, whatever else the manifest lists is used; an entry of a split the source
    does not read is not counted. A manifest whose own keys are mistyped is one SourceError line."""
    import logging
    import shutil

    dataset = tmp_path / "mimic"
    shutil.copytree(demo_shards / "mimic", dataset)
    manifest = json.loads((dataset / "manifest.json").read_text())
    entries = manifest["shards"]
    train = [i for i, e in enumerate(entries) if e["split"] == "train"]
    other = next(i for i, e in enumerate(entries) if e["split"] != "train")
    assert len(train) >= 5, "the demo should give MIMIC at least five train shards"
    clean = resolve_source(SourceConfig(str(dataset)))
    entries[train[0]]["samples"] = "eight"  # mistyped field
    entries[train[1]]["sha256"] = None
    entries[train[2]]["stream"] = "4d"
    entries[train[3]]["path"] = "../" + entries[train[3]]["path"]
    entries[other]["samples"] = "many"  # not a train entry: not this source's to count
    (dataset / entries[train[4]]["path"]).unlink()
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    skipped: list[str] = []
    with caplog.at_level(logging.WARNING, logger="train.sources"):
        shards = resolve_sources([SourceConfig(str(dataset))], skipped)
    kept = [s for stream in shards.values() for s in stream]
    assert len(kept) == len(clean) - 5
    assert {s.name for s in kept} == {s.name for s in clean} - {Path(entries[i]["path"]).name for i in train[:5]}
    assert len(skipped) == 5, skipped
    for i, reason in zip(train[:5], ("samples: expected int, got str", "sha256: expected str, got null",
                                     "unknown stream '4d'", "is not a relative path", "is listed but missing")):
        assert any(f"shards[{i}]" in line and reason in line for line in skipped), (i, reason, skipped)
    assert sum("the entry is skipped" in r.getMessage() for r in caplog.records) == 5
    manifest["dataset"] = 5
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SourceError, match=r"not a valid manifest \(.*dataset.*expected str, got int") as err:
        resolve_source(SourceConfig(str(dataset)))
    assert "\n" not in str(err.value)


def test_colour_samples_stream_next_to_grey_ones(demo_shards, tmp_path):
    """Shards holding colour (C = 3) and grey (C = 1) 2D samples: batches mix them, colour keeps its three
    channels (each resized on its own), grey is broadcast to three equal channels."""
    from shard_edit import edit_dataset, to_colour

    from shards_spec.reader import iter_raw_samples

    keys, _ = _train_2d_keys(demo_shards / "mimic")
    coloured = set(keys[::2])
    dataset = edit_dataset(demo_shards / "mimic", tmp_path / "mimic",
                           lambda k, m: to_colour(k, m) if k in coloured else m)
    stored = {raw.key: raw.decode()["vision.npy.zst"] for tar in sorted(dataset.rglob("*-train-2d-*.tar"))
              for raw in iter_raw_samples(tar)}
    assert {k for k, v in stored.items() if v.shape[1] == 3} == coloured
    shards = resolve_sources([SourceConfig(str(dataset))])["2d"]
    it = StreamDataset(shards, _cfg("2d", 4, block=64)).batches(0, 1)
    mixed = seen = 0
    for _ in range(len(keys) // 4):
        batch = next(it)
        v = batch["vision_x"]
        assert v.shape[2] == 3
        kinds = {key in coloured for key in batch["keys"]}
        mixed += len(kinds) == 2
        for i, key in enumerate(batch["keys"]):
            for j, img in enumerate(stored[key]):
                expected = resize_image(img, 64, 4)  # [C, 64, 64, 1]
                got = v[i, j, :, :, :, 0]
                assert torch.allclose(got, expected[:, :, :, 0].expand(3, 64, 64), atol=1e-6), key
                assert torch.equal(got[0], got[1]) != (key in coloured)
                seen += 1
    assert mixed and seen >= len(keys) - 3
