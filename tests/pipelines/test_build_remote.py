"""``--out s3://…``: the build on a real S3 server (moto, 127.0.0.1) gives the local build's bytes, publishes each
shard in the commit order (a reader never sees a half-written shard), reruns incrementally against the listing,
and survives 503 answers to its uploads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, build_shards

from train.config import SourceConfig
from train.sources import SourceError, resolve_source


def _objects(s3, bucket: str, prefix: str) -> dict[str, bytes]:
    client = s3.client()
    return {k[len(prefix) + 1:]: client.get_object(Bucket=bucket, Key=k)["Body"].read()
            for k in s3.keys(bucket, prefix + "/")}


def _local(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
            and not p.name.startswith(".")}


def assert_same_build(remote: dict[str, bytes], local: dict[str, bytes]) -> None:
    """Every file byte-identical, completion markers equal but for their build duration."""
    assert sorted(remote) == sorted(local)
    for name, data in local.items():
        if name.endswith(".stats.json"):
            a, b = json.loads(data), json.loads(remote[name])
            a.pop("duration_s"), b.pop("duration_s")
            assert a == b, name
        else:
            assert remote[name] == data, name


def test_remote_build_is_the_local_build(remote_demo, demo_shards, s3_server):
    assert_same_build(_objects(s3_server, "demo", "shards/mimic"), _local(demo_shards / "mimic"))


def test_rerun_against_the_listing_builds_nothing(demo_raw, remote_demo, s3_server):
    s3_server.reset_counters()
    build_shards(demo_raw, remote_demo, "mimic", samples_per_shard_2d=6, samples_per_shard_3d=4)
    requests = dict(s3_server.app.requests)
    assert requests["PUT"] == 2 and "DELETE" not in requests  # rejects.jsonl and the manifest, nothing else
    markers = sum(1 for k in s3_server.keys("demo", "shards/mimic/") if k.endswith(".stats.json"))
    assert requests["GET"] == 1 + markers  # one listing, one read per completion marker


def test_503s_on_uploads_are_retried_and_stale_shards_removed(demo_raw, demo_shards, s3_server):
    s3_server.create_bucket("flaky")
    s3_server.inject("503", count=3, method="PUT", contains=".tar")
    s3_server.inject("reset", count=1, method="PUT", contains=".index.json")
    build_shards(demo_raw, "s3://flaky/out", "mimic", samples_per_shard_2d=6, samples_per_shard_3d=4)
    assert s3_server.app.served["503"] >= 3
    assert_same_build(_objects(s3_server, "flaky", "out/mimic"), _local(demo_shards / "mimic"))
    # other shard sizes: the old shards are removed, the listing is exactly the new build
    build_shards(demo_raw, "s3://flaky/out", "mimic", samples_per_shard_2d=100, samples_per_shard_3d=100)
    tars = [k for k in s3_server.keys("flaky", "out/mimic/") if k.endswith(".tar")]
    manifest = json.loads(s3_server.client().get_object(Bucket="flaky", Key="out/mimic/manifest.json")["Body"].read())
    assert sorted(f"out/mimic/{s['path']}" for s in manifest["shards"]) == sorted(tars)


@pytest.mark.slow
def test_killed_between_tar_and_marker_then_rerun(demo_raw, demo_shards, s3_server):
    """SIGKILL right after a tar is uploaded: no marker, no manifest, so no reader takes the build; the rerun
    rebuilds that shard and publishes the local build's bytes."""
    s3_server.create_bucket("killed")
    cmd = [sys.executable, "-m", "pipelines.build", "--dataset", "mimic", "--raw", str(demo_raw / "mimic"),
           "--out", "s3://killed/out", "--executor", "serial", "--quiet", "--samples-per-shard-2d", "6",
           "--samples-per-shard-3d", "4"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RADFM_TEST_KILL_AT": "tar:2"}
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]
    keys = s3_server.keys("killed", "out/mimic/")
    tars = {k[: -len(".tar")] for k in keys if k.endswith(".tar")}
    markers = {k[: -len(".stats.json")] for k in keys if k.endswith(".stats.json")}
    assert len(tars) == 2 and len(markers) == 1 and "out/mimic/manifest.json" not in keys
    with pytest.raises(SourceError, match="no manifest.json"):
        resolve_source(SourceConfig("s3://killed/out"))
    env.pop("RADFM_TEST_KILL_AT")
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "1 already complete" in proc.stderr
    assert_same_build(_objects(s3_server, "killed", "out/mimic"), _local(demo_shards / "mimic"))
    assert [s.samples for s in resolve_source(SourceConfig("s3://killed/out"))]
