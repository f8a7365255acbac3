"""The streamed plan (pipelines.plan): spools read back what was written; the trie over numpy key halves is the trie
of the key strings; and on the demo sources the spooled plan is the in-memory plan (same jobs, duplicates, shard
membership, order and fingerprints) that the build made before the plan was streamed."""

from __future__ import annotations

import random
from bisect import bisect_left
from collections import defaultdict
from dataclasses import dataclass, replace

import pytest

from pipelines.build import BuildError, BuildRequest, build, check_record, make_context, read_dataset
from pipelines.incremental import input_identities, key_bits, partition, shard_fingerprint
from pipelines.plan import Plan, Spool, derive_plan, plan_shards
from pipelines.records import ImagePlacement, ImageRef, Job, Record, RecordFields, SampleSpec
from pipelines.sources import BuildContext, Source, Vocabulary, get_source
from shards_spec.hashing import sample_key
from shards_spec.layout import shard_path


# ------------------------------------------------------------------------------------------------- spool
def test_spool_reads_back_by_position_and_in_order(tmp_path):
    spool = Spool(tmp_path / "s.spool")
    items = [("key", i, {"text": "é\u2028" * i, "n": i}) for i in range(50)]
    for i, item in enumerate(items):
        assert spool.append(item) == i
        assert spool[i] == item  # readable right after the append (flushed on read)
    assert len(spool) == 50 and spool.nbytes == (tmp_path / "s.spool").stat().st_size
    assert list(spool) == items and spool[-1] == items[-1] and spool[3:7] == items[3:7]
    assert [spool[i] for i in (49, 0, 17)] == [items[49], items[0], items[17]]
    with pytest.raises(IndexError):
        spool[50]
    with pytest.raises(FileExistsError):  # a spool never overwrites a file
        Spool(tmp_path / "s.spool")
    spool.close()


# ------------------------------------------------------------------------------------------------- partition
def _trie_reference(keys: list[str], per_shard: int) -> list[tuple[int, list[str]]]:
    """The key trie of the module docstring, on Python integers (what partition computed before numpy)."""
    ordered = sorted(keys, key=key_bits)
    values = [key_bits(k) for k in ordered]
    leaves = []

    def visit(node, depth, low, high):
        if high == low:
            return
        if high - low <= per_shard or depth == 80:
            leaves.append((node, ordered[low:high]))
            return
        middle = bisect_left(values, (((values[low] >> (80 - depth)) << 1) | 1) << (79 - depth), low, high)
        visit(2 * node + 1, depth + 1, low, middle)
        visit(2 * node + 2, depth + 1, middle, high)

    visit(0, 0, 0, len(ordered))
    return sorted(leaves)


@pytest.mark.parametrize("per_shard", [1, 2, 3, 7, 64, 5000])
def test_partition_is_the_key_trie(per_shard):
    keys = [sample_key("d", str(i), "t", "v") for i in range(3000)]
    # keys that share their high 64 bits (or 72): the split then happens in the low 16 bits
    keys += [f"d_{'ab' * 8}{i:04x}" for i in range(0, 65536, 997)] + [f"d_{'ab' * 9}{i:02x}" for i in range(5)]
    random.Random(per_shard).shuffle(keys)
    assert partition(keys, per_shard) == _trie_reference(keys, per_shard)
    assert partition([], per_shard) == []


# ------------------------------------------------------------------------------------------------- the plan
def _reference_plan(source, ctx, records, vocab, splits):
    """The plan as the build made it in memory before it was streamed: a dict of jobs by key (first wins)."""
    jobs, duplicates = {}, []
    for record in records:
        for spec in source.samples(record, vocab, ctx):
            key = sample_key(record.dataset, record.source_id, spec.task, spec.variant)
            if key in jobs:
                duplicates.append((record.source_id, spec.task, key))
                continue
            jobs[key] = Job(key, record, spec)
    return sorted((j for j in jobs.values() if splits is None or j.record.split in splits), key=lambda j: j.key), duplicates


def _reference_shards(jobs, out, dataset, per_shard, environment, identities):
    groups = defaultdict(dict)
    for job in jobs:
        groups[(job.record.split, job.record.stream)][job.key] = job
    shards = []
    for (split, stream), group in sorted(groups.items()):
        for number, keys in partition(list(group), per_shard[stream]):
            chunk = tuple(group[k] for k in keys)
            shards.append((str(shard_path(out, dataset, stream, split, number)),
                           shard_fingerprint(environment, chunk, identities), chunk))
    return shards


@pytest.mark.parametrize("name,splits", [("mimic", None), ("rad3d", None), ("slake", None), ("vindr_cxr", {"test"}),
                                         ("pmc_inline", {"train", "validate"})])
def test_spooled_plan_is_the_in_memory_plan(name, splits, demo_raw, tmp_path):
    source = get_source(name)
    ctx = make_context(source, demo_raw / name)
    listed, vocab, _ = read_dataset(source, ctx)
    records, vocab2, _ = read_dataset(source, ctx, into=Spool(tmp_path / "records.spool"))
    assert isinstance(records, Spool) and list(records) == listed and vocab2 == vocab

    plan = derive_plan(source, ctx, records, vocab, splits, tmp_path)
    expected, duplicates = _reference_plan(source, ctx, listed, vocab, splits)
    assert expected and list(plan.jobs()) == expected and len(plan) == len(expected)
    assert sorted((r.source_id, r.task, r.message.rsplit("(", 1)[1][:-1]) for r in plan.rejects if r.reason == "duplicate") \
        == sorted(duplicates)

    per_shard = {"2d": 3, "3d": 2}
    identities = input_identities(demo_raw / name, (ref for j in expected for ref in j.record.images), "stat",
                                  stores=dict(ctx.stores))
    reference = _reference_shards(expected, tmp_path / "out", name, per_shard, "env", identities)
    shards = plan_shards(plan, tmp_path / "out", name, per_shard["2d"], per_shard["3d"], "env", demo_raw / name,
                         "stat", dict(ctx.stores))
    assert len(reference) > 1
    assert [(s.tar_path, s.fingerprint) for s in shards] == [(path, fp) for path, fp, _ in reference]
    assert [plan.materialise(s).jobs for s in shards] == [chunk for _, _, chunk in reference]
    plan.close()


@dataclass(frozen=True)
class _Fields(RecordFields):
    text: str


class _Repeats(Source):
    """Records whose samples collide: a sample's key hashes the record's source id and its text (the variant)."""

    name = "repeats"
    modes = ("native",)
    default_mode = "native"

    def __init__(self, rows):
        self.rows = rows

    def records(self, ctx):
        for i, (sid, split, text) in enumerate(self.rows):
            yield Record(dataset="repeats", source_id=sid, split=split, stream="2d",
                         images=(ImageRef(f"row{i}.png", "image2d"),), fields=_Fields(text))

    def samples(self, record, vocab, ctx):
        if record.fields.text == "none":
            return []
        if record.fields.text == "boom":
            raise ValueError("a bug in the source")
        spec = SampleSpec("caption", record.fields.text, "q", "a", (ImagePlacement("question", 0),), image_indices=(0,))
        return [spec, spec] if record.fields.text == "twice" else [spec]


def test_duplicates_keep_the_first_in_record_order(tmp_path):
    rows = [("a", "train", "x"), ("b", "test", "x"), ("a", "test", "x"), ("c", "train", "twice"), ("d", "test", "none"),
            ("e", "test", "boom")]
    source = _Repeats(rows)
    ctx = BuildContext(tmp_path, "native", tmp_path, None)  # no resolver: derive_plan does not check records
    records = list(source.records(ctx))
    (tmp_path / "all").mkdir(), (tmp_path / "test").mkdir()
    plan = derive_plan(source, ctx, records, Vocabulary(), None, tmp_path / "all")
    assert sorted((r.source_id, r.reason, r.file) for r in plan.rejects) == [
        ("a", "duplicate", "row2.png"), ("c", "duplicate", "row3.png"), ("d", "no_sample", "row4.png"),
        ("e", "internal_error", "row5.png")]
    jobs = list(plan.jobs())
    assert [j.key for j in jobs] == sorted(sample_key("repeats", s, "caption", v) for s, v in
                                           (("a", "x"), ("b", "x"), ("c", "twice")))
    assert {j.record.source_id: j.record.images[0].path for j in jobs}["a"] == "row0.png"  # the first row of key a/x
    only_test = derive_plan(source, ctx, records, Vocabulary(), {"test"}, tmp_path / "test")
    # the duplicate of a/x in the test split stays a duplicate: the train row came first
    assert [j.record.source_id for j in only_test.jobs()] == ["b"]
    plan.close(), only_test.close()


def test_a_record_of_another_dataset_is_an_internal_error(demo_raw):
    source = get_source("mimic")
    ctx = make_context(source, demo_raw / "mimic")
    record = read_dataset(source, ctx)[0][0]
    checked = check_record(replace(record, dataset="other"), ctx, "mimic")
    assert checked.reason == "internal_error" and "dataset 'other'" in checked.message
    assert check_record(record, ctx, "mimic") == record


def test_plan_dir_is_used_and_removed(demo_raw, tmp_path):
    plan_dir = tmp_path / "plans"
    plan_dir.mkdir()
    manifest = build(BuildRequest(dataset="rad3d", raw=demo_raw / "rad3d", out=tmp_path / "out", executor="serial",
                                  progress=False, plan_dir=plan_dir))
    assert manifest["samples"] > 0 and list(plan_dir.iterdir()) == []  # the spools are gone after the build
    with pytest.raises(BuildError, match="--plan-dir"):
        build(BuildRequest(dataset="rad3d", raw=demo_raw / "rad3d", out=tmp_path / "out", executor="serial",
                           progress=False, plan_dir=tmp_path / "missing"))


def test_plan_holds_no_job_objects(demo_raw, tmp_path):
    """What a Plan keeps in memory per sample: numpy arrays, never records or specs (they are in the spools)."""
    source = get_source("mimic")
    ctx = make_context(source, demo_raw / "mimic")
    records, vocab, _ = read_dataset(source, ctx, into=Spool(tmp_path / "records.spool"))
    plan = derive_plan(source, ctx, records, vocab, None, tmp_path)
    assert isinstance(plan, Plan) and len(plan) > 0
    held = {k: v for k, v in vars(plan).items() if k not in ("records", "specs", "rejects")}
    assert all(type(v).__module__ == "numpy" for v in held.values()), {k: type(v) for k, v in held.items()}
    plan.close()
