"""A real multi-node Ray build: a head and two worker nodes on this machine (``ray.cluster_utils.Cluster``, each
node its own raylet and object store), the build joining it through ``RAY_ADDRESS`` with its output on the local S3
server. The shards equal the local serial build byte for byte, also when a worker node is killed mid-build (Ray
retries its shard tasks on the nodes left). Only the nodes started here are stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import ROOT
from test_build_remote import _local, _objects, assert_same_build


def _build(demo_raw, out: str, env: dict, **popen) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pipelines.build", "--dataset", "mimic", "--raw", str(demo_raw / "mimic"), "--out", out,
           "--executor", "ray", "--workers", "2", "--samples-per-shard-2d", "6", "--samples-per-shard-3d", "4", "--quiet"]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


@pytest.mark.slow
def test_multi_node_build_to_s3_survives_a_killed_node(demo_raw, demo_shards, s3_server):
    from ray.cluster_utils import Cluster

    s3_server.create_bucket("cluster")
    local = _local(demo_shards / "mimic")
    # the nodes inherit this environment (the S3 endpoint and credentials); the head runs no shard task
    cluster = Cluster()
    try:
        cluster.add_node(num_cpus=0, include_dashboard=False)  # the first node is the head
        nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_ADDRESS": cluster.address}

        proc = _build(demo_raw, "s3://cluster/whole", env)
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        assert "Pushing file package" in err  # the project's packages travelled to the cluster
        assert_same_build(_objects(s3_server, "cluster", "whole/mimic"), local)

        # slow samples, so that the node dies while shard tasks run on it
        proc = _build(demo_raw, "s3://cluster/killed", {**env, "RADFM_TEST_SAMPLE_DELAY_S": "0.4"})
        deadline = time.monotonic() + 300
        while not any(k.endswith(".stats.json") for k in s3_server.keys("cluster", "killed/")):
            assert proc.poll() is None and time.monotonic() < deadline, "no shard finished"
            time.sleep(0.2)
        cluster.remove_node(nodes[0], allow_graceful=False)
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        assert_same_build(_objects(s3_server, "cluster", "killed/mimic"), local)
    finally:
        cluster.shutdown()
