"""The trainer and inspect on object storage: shards built straight to a real S3 server (moto, 127.0.0.1) are read
by index-driven ranged GETs (never a whole shard), give the same batches as the local shards, and survive a
dropped connection mid-read and a 503; a missing object is a clear bad sample, not a retry loop."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.inspect import inspect
from shards_spec import storage
from train.collate import CollateConfig
from train.config import SourceConfig
from train.read import BadSample, FileCache, IndexCache, read_sample
from train.sources import SourceError, resolve_source, resolve_sources
from train.stream import StreamConfig, StreamDataset


def _cfg(name: str) -> StreamConfig:
    return StreamConfig(name=name, batch_size=2, block_size=8, interleave=2, seed=3, collate=CollateConfig(image_size=64))


def _local_mimic(demo_shards):
    return resolve_source(SourceConfig(str(demo_shards / "mimic")))


def test_sources_resolve_every_remote_form(remote_demo, demo_shards):
    local = _local_mimic(demo_shards)
    for form in (remote_demo, f"{remote_demo}/mimic", f"{remote_demo}/mimic/manifest.json"):
        remote = resolve_source(SourceConfig(form))
        assert [(s.name, s.samples, s.stream) for s in remote] == [(s.name, s.samples, s.stream) for s in local]
        assert all(s.path.startswith("s3://demo/shards/mimic/") for s in remote)
    first = resolve_source(SourceConfig(f"{remote_demo}/mimic"))[0]
    pattern = resolve_source(SourceConfig(first.path.replace(".tar", "") + ".tar", splits=["train"]))
    assert [s.samples for s in pattern] == [first.samples]
    with pytest.raises(SourceError, match="no manifest.json"):
        resolve_source(SourceConfig("s3://demo/nothing-here"))


def test_remote_batches_equal_local_batches_with_ranged_reads_only(remote_demo, demo_shards, s3_server):
    local = resolve_sources([SourceConfig(str(demo_shards / "mimic"))])
    remote = resolve_sources([SourceConfig(f"{remote_demo}/mimic")])
    s3_server.reset_counters()
    for stream in ("2d",):
        a = StreamDataset(local[stream], _cfg(stream)).batches(0, 1)
        b = StreamDataset(remote[stream], _cfg(stream)).batches(0, 1)
        for _ in range(6):
            x, y = next(a), next(b)
            assert x["keys"] == y["keys"]
            for k, v in x.items():
                if hasattr(v, "shape"):
                    assert np.array_equal(np.asarray(v), np.asarray(y[k])), k
    # every tar byte came through a ranged GET; whole objects fetched are index sidecars only
    assert s3_server.app.requests["GET-range"] > 0
    assert all(p.endswith(".index.json") for p in s3_server.app.full_gets), s3_server.app.full_gets


def _first_sample(remote_demo):
    shard = resolve_source(SourceConfig(f"{remote_demo}/mimic"))[0]
    index = IndexCache()
    return shard, index, index.get(shard)[0]


@pytest.mark.parametrize("kind", ["drop", "503", "reset"])
def test_transient_faults_mid_read_are_retried(remote_demo, demo_shards, s3_server, kind):
    shard, index, entry = _first_sample(remote_demo)
    expected = read_sample(FileCache(), shard, entry, index=index)
    before = storage.RETRIES.get("read", 0)
    s3_server.reset_counters()
    s3_server.inject(kind, count=2, contains=shard.name)
    got = read_sample(FileCache(), shard, entry, index=index)
    assert s3_server.app.served[kind] == 2 and storage.RETRIES["read"] - before == 2
    assert got.key == expected.key and np.array_equal(got.vision, expected.vision)
    assert np.array_equal(got.input_ids, expected.input_ids)


def test_persistent_503_becomes_a_bad_sample_after_the_retries(remote_demo, s3_server, monkeypatch):
    shard, index, entry = _first_sample(remote_demo)
    monkeypatch.setenv("RADFM_STORAGE_RETRIES", "3")
    monkeypatch.setattr(storage, "_STORES", {})  # a fresh store reads the policy
    s3_server.inject("503", count=3, contains=shard.name)
    with pytest.raises(BadSample, match="failed after 3 attempts.*SlowDown|failed after 3 attempts"):
        read_sample(FileCache(), shard, entry, index=index)
    s3_server.clear_faults()


def test_missing_object_is_a_bad_sample_without_retries(remote_demo, s3_server):
    s3_server.create_bucket("gone")
    client = s3_server.client()
    shard, index, entry = _first_sample(remote_demo)
    for suffix in (".tar", ".index.json"):
        src = shard.path.removeprefix("s3://demo/").replace(".tar", suffix)
        client.copy_object(Bucket="gone", Key=src, CopySource={"Bucket": "demo", "Key": src})
    moved = type(shard)(**{**shard.__dict__, "path": shard.path.replace("s3://demo/", "s3://gone/")})
    moved_index = IndexCache()
    entry = moved_index.get(moved)[0]
    client.delete_object(Bucket="gone", Key=moved.path.removeprefix("s3://gone/"))
    before = storage.RETRIES.get("read", 0)
    with pytest.raises(BadSample, match="no such object"):
        read_sample(FileCache(), moved, entry, index=moved_index)
    assert storage.RETRIES.get("read", 0) == before


def test_span_cache_serves_repeats_and_stays_within_its_bound(remote_demo, s3_server, tmp_path, monkeypatch):
    shard, index, _ = _first_sample(remote_demo)
    entries = index.get(shard)
    spans = [entry["size"] for entry in entries]
    bound = sum(spans) // 2
    monkeypatch.setenv("RADFM_REMOTE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("RADFM_REMOTE_CACHE_BYTES", str(bound))
    monkeypatch.setattr(storage, "_CACHE", {})
    reads = [read_sample(FileCache(), shard, e, index=index).key for e in entries[:2]]
    s3_server.reset_counters()
    again = [read_sample(FileCache(), shard, e, index=index).key for e in entries[:2]]
    assert again == reads and s3_server.app.requests["GET-range"] == 0  # both from the cache
    for e in entries:  # more than the bound
        read_sample(FileCache(), shard, e, index=index)
    cache = storage.span_cache()
    assert cache is not None and 0 < cache.size() <= bound


def test_inspect_reads_remote_shards_through_the_index(remote_demo, demo_shards, s3_server):
    s3_server.reset_counters()
    remote = inspect(f"{remote_demo}/mimic")
    local = inspect(demo_shards / "mimic")
    assert not remote.errors and remote.render() == local.render()
    assert all(p.endswith(".index.json") for p in s3_server.app.full_gets)
