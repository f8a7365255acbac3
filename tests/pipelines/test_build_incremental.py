"""Incremental builds that see everything (pipelines.build + pipelines.incremental), through the real build: an
edited report, a replaced image, one added row, a code change, --split, and a kill between a tar and its marker."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, build_shards
from hostile_corpus import REPORT, image_pixels, jpeg, mimic_native, mimic_radfm

from pipelines.writer import KILL_ENV
from shards_spec.validate import validate_paths

SMALL = {"size_2d": 32, "size_3d": 32}


def markers(out: Path) -> dict[str, int]:
    """Completion marker -> its mtime: a rebuilt shard rewrites its marker."""
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in sorted(out.rglob("*.stats.json"))}


def digests(out: Path, pattern: str = "**/*.tar") -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob(pattern))
            if p.is_file()}


def rebuilt(before: dict[str, int], after: dict[str, int]) -> set[str]:
    return {name for name, mtime in after.items() if before.get(name) != mtime}


def _later(path: Path) -> None:
    """Give a rewritten file a modification time that surely differs from the old one."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


@pytest.fixture
def native(tmp_path) -> tuple[Path, Path]:
    raw = tmp_path / "in" / "mimic"
    tree = mimic_native(raw, n=24)
    tree.write()
    return tmp_path / "in", tmp_path / "out"


def _build(raw: Path, out: Path, **kw) -> dict:
    return build_shards(raw, out, "mimic", **{"mode": "native", "samples_per_shard_2d": 4, **SMALL, **kw})


def test_edited_report_rebuilds_one_shard(native):
    raw, out = native
    _build(raw, out)
    before, tars = markers(out), digests(out)
    assert len(before) >= 5
    report = raw / "mimic/files/p10/p10000007/s50000007.txt"
    report.write_text(REPORT.replace("No effusion.", "Small left effusion."))
    _later(report)
    manifest = _build(raw, out)
    after = markers(out)
    assert len(rebuilt(before, after)) == 1 and set(after) == set(before)
    changed = {k for k, v in digests(out).items() if tars.get(k) != v}
    assert len(changed) == 1 and manifest["samples"] == 24


def test_replaced_image_rebuilds_one_shard(native):
    raw, out = native
    _build(raw, out)
    before = markers(out)
    image = next((raw / "mimic/files/p10/p10000011/s50000011").glob("*.jpg"))
    image.write_bytes(jpeg(image_pixels(1234)))  # a repaired / replaced image, same path
    _later(image)
    _build(raw, out)
    assert len(rebuilt(before, markers(out))) == 1
    before = markers(out)
    _later(image)  # same bytes, a new mtime: the default identity (size + mtime) sees a change
    _build(raw, out)
    assert len(rebuilt(before, markers(out))) == 1


def test_content_identity_sees_bytes_not_times(native):
    raw, out = native
    _build(raw, out, input_identity="content")
    image = next((raw / "mimic/files/p10/p10000011/s50000011").glob("*.jpg"))
    before = markers(out)
    _later(image)
    _build(raw, out, input_identity="content")
    assert rebuilt(before, markers(out)) == set()
    data = bytearray(image.read_bytes())
    image.write_bytes(jpeg(image_pixels(99)))
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns))  # whatever the time, new bytes
    _build(raw, out, input_identity="content")
    assert len(rebuilt(before, markers(out))) == 1 and bytes(data) != image.read_bytes()


def test_one_row_added_to_a_thousand_rebuilds_at_most_two_shards(tmp_path):
    raw, out = tmp_path / "in", tmp_path / "out"
    tree = mimic_radfm(raw / "mimic", n_train=1000, n_test=0)
    tree.write()
    first = build_shards(raw, out, "mimic", samples_per_shard_2d=100, **SMALL)
    assert first["samples"] == 1000
    before, tars = markers(out), digests(out)
    assert len(before) >= 10
    tree.good(1000)
    tree.write()
    second = build_shards(raw, out, "mimic", samples_per_shard_2d=100, **SMALL)
    after = markers(out)
    assert second["samples"] == 1001
    assert 1 <= len(rebuilt(before, after)) <= 2
    kept = set(before) & set(after) - rebuilt(before, after)
    assert all(digests(out)[k.replace(".stats.json", ".tar")] == tars[k.replace(".stats.json", ".tar")] for k in kept)
    assert validate_paths([str(out)]).violations == []


def test_a_code_change_rebuilds_everything(native, monkeypatch):
    import pipelines.build

    raw, out = native
    _build(raw, out)
    before = markers(out)
    monkeypatch.setattr(pipelines.build, "code_version", lambda: "sha256:0123456789abcdef")
    _build(raw, out)
    assert rebuilt(before, markers(out)) == set(before)


def test_split_build_leaves_other_splits_untouched(native, caplog):
    raw, out = native
    full = _build(raw, out)
    test_files = digests(out, "mimic/2d/test/*")
    test_entries = [s for s in full["shards"] if s["split"] == "test"]
    assert test_files and test_entries
    with caplog.at_level("WARNING", logger="pipelines.build"):
        manifest = _build(raw, out, splits=("train",), seed=5)  # train rebuilt with other prompts
    assert digests(out, "mimic/2d/test/*") == test_files
    assert [s for s in manifest["shards"] if s["split"] == "test"] == test_entries
    assert manifest["counts"]["split"] == full["counts"]["split"] and manifest["samples"] == full["samples"]
    assert "other build parameters" in caplog.text
    assert validate_paths([str(out)]).violations == []
    # a --split build can not mix tokenizer or spec versions into one manifest
    stats = next((out / "mimic/2d/test").glob("*.stats.json"))
    from shards_spec.layout import SPEC_VERSION

    text = stats.read_text()
    assert f'"spec_version": "{SPEC_VERSION}"' in text
    stats.write_text(text.replace(f'"spec_version": "{SPEC_VERSION}"', '"spec_version": "1.1"'))
    from pipelines.build import BuildError

    with pytest.raises(BuildError, match="build every split"):
        _build(raw, out, splits=("train",))


def test_split_build_with_no_manifest_yet_lists_what_is_on_disk(native):
    raw, out = native
    _build(raw, out)
    (out / "mimic/manifest.json").unlink()
    manifest = _build(raw, out, splits=("validate",))
    assert {s["split"] for s in manifest["shards"]} >= {"train", "test"}


@pytest.mark.parametrize("point", ["tar:2", "index:1"])
def test_a_kill_between_a_tar_and_its_marker(tmp_path, point):
    raw, ref, out = tmp_path / "in", tmp_path / "ref", tmp_path / "out"
    mimic_native(raw / "mimic", n=24).write()
    args = ["--dataset", "mimic", "--mode", "native", "--raw", str(raw / "mimic"), "--executor", "serial", "--quiet",
            "--samples-per-shard-2d", "4"]
    subprocess.run([sys.executable, "-m", "pipelines.build", *args, "--out", str(ref)], cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    res = subprocess.run([sys.executable, "-m", "pipelines.build", *args, "--out", str(out)], cwd=ROOT,
                         env={**os.environ, KILL_ENV: point}, capture_output=True, timeout=300)
    assert res.returncode == -9, res.stderr.decode()[-2000:]
    # no file under a final name is partial: every one equals the complete build's file
    reference = digests(ref, "**/*")
    finals = {k: v for k, v in digests(out, "**/*").items() if not Path(k).name.startswith(".")}
    assert finals and all(reference[k] == v for k, v in finals.items() if not k.endswith(".stats.json"))
    unmarked = [t for t in out.rglob("*.tar") if not t.with_name(t.name.replace(".tar", ".stats.json")).exists()]
    assert len(unmarked) == 1  # the shard that was killed in its commit: complete, but not counted as done
    unfinished = len(list(ref.rglob("*.tar"))) - len(list(out.rglob("*.stats.json")))
    rerun = subprocess.run([sys.executable, "-m", "pipelines.build", *args, "--out", str(out)], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and f" {unfinished} to build" in rerun.stderr, rerun.stderr
    assert unmarked[0].with_name(unmarked[0].name.replace(".tar", ".stats.json")).exists()
    assert {k: v for k, v in digests(out, "**/*").items() if not k.endswith(".stats.json")} == \
        {k: v for k, v in reference.items() if not k.endswith(".stats.json")}
    assert json.loads((out / "mimic/manifest.json").read_text())["shards"] == \
        json.loads((ref / "mimic/manifest.json").read_text())["shards"]
