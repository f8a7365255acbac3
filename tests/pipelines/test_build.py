"""The build job end to end on the demo raw tree: validation, stock webdataset reading,
separate streams, determinism, incremental reruns, kill-and-resume, rejects."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import webdataset as wds
from conftest import ROOT, build_shards

from pipelines.build import BuildError, BuildRequest, build, parser
from pipelines.worker import DELAY_ENV
from shards_spec.codec import webdataset_decoder
from shards_spec.layout import FIELDS, FIELDS_SLICES
from shards_spec.reader import iter_raw_samples
from shards_spec.validate import validate_paths


def tree_digest(root: Path, pattern: str = "**/*") -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.glob(pattern)) if p.is_file() and not p.name.endswith(".stats.json")}


def tars(root: Path) -> list[Path]:
    return sorted(root.rglob("*.tar"))


def test_demo_shards_validate(demo_shards):
    report = validate_paths([str(demo_shards)])
    assert report.violations == []
    assert report.shards >= 4 and report.samples > 50


def test_streams_are_separate(demo_shards):
    for tar in tars(demo_shards):
        stream = tar.parent.parent.name
        assert f"-{stream}-" in tar.name
        for raw in iter_raw_samples(tar):
            d = raw.decode()
            assert d["meta.json"]["stream"] == stream
            depth = d["vision.npy.zst"].shape[-1]
            assert (depth == 1) if stream == "2d" else (depth % 4 == 0 and depth >= 4)
    manifest = json.loads((demo_shards / "mimic" / "manifest.json").read_text())
    assert set(manifest["counts"]["stream"]) == {"2d"}
    manifest = json.loads((demo_shards / "rad3d" / "manifest.json").read_text())
    assert set(manifest["counts"]["stream"]) == {"3d"}
    assert {k.split("/")[-1] for k in manifest["counts"]["task"]} == {"report", "rationale", "vqa", "modality"}


def test_stock_webdataset_reads_shards(demo_shards):
    urls = [str(t) for t in tars(demo_shards / "mimic")]
    ds = wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode(webdataset_decoder)
    samples = list(ds)
    ours = [r for t in urls for r in iter_raw_samples(t)]
    assert [s["__key__"] for s in samples] == [r.key for r in ours]
    for s, r in zip(samples, ours):
        assert set(k for k in s if not k.startswith("__")) == set(FIELDS)
        mine = r.decode()
        assert np.array_equal(s["vision.npy.zst"], mine["vision.npy.zst"])
        assert np.array_equal(s["tokens.npy"]["input_ids"], mine["input_ids.npy"])  # spec 1.4: one token member
        assert s["meta.json"]["key"] == s["__key__"]


def test_tar_lists_members_as_key_field_ext(demo_shards):
    tar = tars(demo_shards / "rad3d")[0]
    names = subprocess.run(["tar", "-tvf", str(tar)], check=True, capture_output=True, text=True).stdout.splitlines()
    assert names and len(names) % len(FIELDS) == 0
    for line in names:
        perms, owner, size, date, time_, name = line.split(None, 5)
        key, field = name.split(".", 1)
        assert "." not in key and field in FIELDS_SLICES  # spec 1.4: 3D images stored slices-contiguous
        assert perms == "-r--r--r--" and owner == "0/0" and date == "2023-08-04"


def test_index_offsets_allow_random_access(demo_shards):
    tar = tars(demo_shards / "mimic")[0]
    index = json.loads(tar.with_name(tar.name.replace(".tar", ".index.json")).read_text())
    data = tar.read_bytes()
    assert index["sha256"] == hashlib.sha256(data).hexdigest()
    for entry in index["samples"]:
        off, size = entry["members"]["meta.json"]
        assert json.loads(data[off : off + size])["key"] == entry["key"]


def test_rejects_record_planted_faults_and_good_samples_land(demo_raw, demo_shards):
    planted = json.loads((demo_raw / "planted.json").read_text())
    rejects = {ds: [json.loads(line) for line in (demo_shards / ds / "rejects.jsonl").read_text().splitlines()]
               for ds in ("mimic", "rad3d")}
    expected_reason = {"corrupt_jpeg": "undecodable", "empty_file": "empty_file", "missing_file": "missing_file",
                       "bad_row": "bad_row", "nan_volume": "nan_image"}
    for fault in planted:
        if fault["dataset"] not in rejects or fault.get("mode"):  # other datasets: their own tests; other modes
            continue
        found = [r for r in rejects[fault["dataset"]] if r["reason"] == expected_reason[fault["kind"]]
                 and (fault["kind"] == "bad_row" or Path(fault["file"]).name in r["file"] + r["message"])]
        assert found, f"planted {fault} not in rejects"
        assert all(r["message"] for r in found)
    manifest = json.loads((demo_shards / "mimic" / "manifest.json").read_text())
    assert manifest["rejects"]["total"] == len(rejects["mimic"])
    radfm_rows = sum(1 for f in ("mimic_caption_train.csv", "mimic_caption_test.csv")
                     for _ in (demo_raw / "mimic" / "radfm" / f).read_text().splitlines()[1:])
    assert manifest["samples"] + len(rejects["mimic"]) == radfm_rows  # every row is a sample or a reject


def test_rebuild_is_byte_identical_and_rerun_is_a_noop(demo_raw, tmp_path, caplog):
    a, b = tmp_path / "a", tmp_path / "b"
    build_shards(demo_raw, a, "mimic", samples_per_shard_2d=10)
    build_shards(demo_raw, b, "mimic", samples_per_shard_2d=10)
    assert tree_digest(a) == tree_digest(b) and tars(a)
    mtimes = {p: p.stat().st_mtime_ns for p in (a / "mimic").rglob("*") if p.is_file()}
    caplog.clear()
    with caplog.at_level("INFO", logger="pipelines.build"):
        build_shards(demo_raw, a, "mimic", samples_per_shard_2d=10)
    assert "0 to build" in caplog.text
    changed = [p for p, m in mtimes.items() if p.suffix in (".tar",) or p.name.endswith((".index.json", ".stats.json"))
               if p.stat().st_mtime_ns != m]
    assert changed == []
    # a different seed changes the samples (prompts), hence the bytes
    build_shards(demo_raw, b, "mimic", samples_per_shard_2d=10, seed=1)
    assert tree_digest(a, "**/*.tar") != tree_digest(b, "**/*.tar")


def test_changed_parameters_rebuild_and_stale_shards_are_removed(demo_raw, tmp_path):
    out = tmp_path / "out"
    build_shards(demo_raw, out, "mimic", samples_per_shard_2d=5)
    many = len(tars(out))
    build_shards(demo_raw, out, "mimic", samples_per_shard_2d=50)
    assert len(tars(out)) < many
    assert validate_paths([str(out)]).violations == []


def test_killed_build_resumes_to_identical_output(demo_raw, tmp_path):
    out, ref = tmp_path / "killed", tmp_path / "ref"
    build_shards(demo_raw, ref, "mimic", samples_per_shard_2d=4)
    cmd = [sys.executable, "-m", "pipelines.build", "--dataset", "mimic", "--raw", str(demo_raw / "mimic"), "--out", str(out),
           "--executor", "serial", "--samples-per-shard-2d", "4", "--quiet"]
    env = {**os.environ, DELAY_ENV: "0.3"}  # each sample takes 0.3 s more, so the kill lands mid-build
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.rglob("*.stats.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(out.rglob("*.stats.json")))
    assert 2 <= done < len(tars(ref)), "the build should have been killed midway"
    # nothing half-written under a final name: every final tar has its marker
    for tar in tars(out):
        assert tar.with_name(tar.name.replace(".tar", ".stats.json")).exists()
    build_shards(demo_raw, out, "mimic", samples_per_shard_2d=4)
    assert not list(out.rglob(".*tmp-*"))
    assert tree_digest(out) == tree_digest(ref)


def test_native_mode_uses_official_split_and_report_sections(demo_raw, tmp_path):
    manifest = build_shards(demo_raw, tmp_path, "mimic", mode="native")
    assert set(manifest["counts"]["split"]) <= {"train", "validate", "test"} and len(manifest["counts"]["split"]) >= 2
    reasons = manifest["rejects"]["by_reason"]
    assert reasons.get("no_report_sections", 0) >= 1  # the demo study with neither section
    assert reasons.get("undecodable") == 1 and reasons.get("empty_file") == 1
    assert validate_paths([str(tmp_path)]).violations == []
    raw = next(iter_raw_samples(tars(tmp_path)[0])).decode()
    assert raw["meta.json"]["answer"].startswith(("Findings:", "Impression:"))
    split_rows = len(gzip.decompress((demo_raw / "mimic" / "mimic-cxr-2.0.0-split.csv.gz").read_bytes()).splitlines()) - 1
    assert manifest["samples"] + manifest["rejects"]["total"] == split_rows  # one image per row: a sample or a reject


def test_split_filter(demo_raw, tmp_path):
    manifest = build_shards(demo_raw, tmp_path, "rad3d", splits=("test",))
    assert set(manifest["counts"]["split"]) == {"test"}


@pytest.mark.slow
def test_ray_executor_matches_serial(demo_raw, tmp_path):
    serial, ray_out = tmp_path / "serial", tmp_path / "ray"
    build_shards(demo_raw, serial, "mimic", samples_per_shard_2d=8)
    env = {**os.environ, "RAY_ADDRESS": ""}
    env.pop("RAY_ADDRESS")
    subprocess.run([sys.executable, "-m", "pipelines.build", "--dataset", "mimic", "--raw", str(demo_raw / "mimic"),
                    "--out", str(ray_out), "--executor", "ray", "--workers", "2", "--samples-per-shard-2d", "8", "--quiet"],
                   cwd=ROOT, env=env, check=True, timeout=300)
    assert tree_digest(serial) == tree_digest(ray_out)


def _stop_ray_processes_of(temp_dir: str) -> None:
    """Stop the Ray processes of the head node started with ``--temp-dir temp_dir`` (each names its session
    directory on its command line), and no other (``ray stop`` would stop every Ray node on the machine)."""
    import psutil

    procs = [p for p in psutil.process_iter(["cmdline"]) if any(temp_dir in arg for arg in p.info["cmdline"] or [])]
    for p in procs:
        p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=30)
    for p in alive:
        p.kill()


@pytest.mark.slow
def test_ray_cluster_via_ray_address(demo_raw, tmp_path):
    """With RAY_ADDRESS set the build joins that cluster (here a head node started for the
    test) and ships the project's packages to it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray_bin = Path(sys.executable).with_name("ray")
    ray_tmp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Unix socket paths must stay short
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    subprocess.run([str(ray_bin), "start", "--head", "--num-cpus", "2", "--port", str(port), "--include-dashboard", "false",
                    "--disable-usage-stats", "--temp-dir", ray_tmp], env=env, check=True, capture_output=True, timeout=120)
    try:
        res = subprocess.run([sys.executable, "-m", "pipelines.build", "--dataset", "mimic", "--raw", str(demo_raw / "mimic"),
                              "--out", str(tmp_path / "out"), "--samples-per-shard-2d", "8", "--quiet"],
                             cwd=ROOT, env={**env, "RAY_ADDRESS": f"127.0.0.1:{port}"}, capture_output=True, text=True, timeout=300)
    finally:
        _stop_ray_processes_of(ray_tmp)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "Pushing file package" in res.stderr  # the packages travelled to the cluster
    assert validate_paths([str(tmp_path / "out")]).violations == []


def test_the_command_line_is_a_typed_request(demo_raw, tmp_path):
    request = parser().parse_args(["--dataset", "rad3d", "--raw", "r", "--out", "o", "--radfm-csv", "csvs",
                                   "--path-map", "/a=b", "--split", "test", "--seed", "3", "--samples-per-shard-3d", "7",
                                   "--executor", "serial", "--quiet"])
    assert request == BuildRequest(dataset="rad3d", raw=Path("r"), out=Path("o"), radfm_dir=Path("csvs"),
                                   path_maps=(("/a", "b"),), splits=("test",), executor="serial", progress=False,
                                   config=request.config)
    assert (request.config.seed, request.config.shard.samples_per_shard_3d) == (3, 7)
    with pytest.raises(SystemExit):
        parser().parse_args(["--dataset", "rad3d", "--raw", "r", "--out", "o", "--path-map", "no-equals"])
    with pytest.raises(BuildError, match="mode 'native' not supported"):
        build(BuildRequest(dataset="medpix", raw=demo_raw / "medpix", out=tmp_path, mode="native"))
    with pytest.raises(BuildError, match="not a directory"):
        build(BuildRequest(dataset="mimic", raw=tmp_path / "nowhere", out=tmp_path))
    res = subprocess.run([sys.executable, "-m", "pipelines.build", "--dataset", "mimic", "--raw", str(tmp_path / "nowhere"),
                          "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 1 and res.stderr.strip().splitlines()[-1].startswith("error: raw root")
