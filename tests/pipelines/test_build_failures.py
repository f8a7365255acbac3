"""A bug of ours is never a data reject, and a build that hit one (or rejected too much) fails only after writing
everything (pipelines.build, pipelines.worker, pipelines.distributor)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import build_shards
from hostile_corpus import LABEL, MIMIC_PREFIX, image_pixels, jpeg, mimic_radfm

from pipelines import build as build_module
from pipelines.build import BuildFailed
from shards_spec.validate import validate_paths

SMALL = {"size_2d": 32, "samples_per_shard_2d": 3}


def _rejects(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "mimic" / "rejects.jsonl").read_text().splitlines()]


@pytest.fixture
def tree(tmp_path) -> tuple[Path, Path]:
    raw = tmp_path / "in"
    t = mimic_radfm(raw / "mimic", n_train=8, n_test=2)
    t.train.append([MIMIC_PREFIX + t.image(30, jpeg(image_pixels(30, colour=True))), LABEL + " Colour."])
    t.write()
    return raw, tmp_path / "out"


def test_a_bug_in_our_code_is_an_internal_error_and_fails_after_writing_everything(tree, monkeypatch):
    from pipelines.imaging import intensity

    raw, out = tree
    monkeypatch.setattr(intensity, "GREY_TOLERANCE", None)  # is_grey() now raises TypeError, in our code
    with pytest.raises(BuildFailed, match="1 internal error") as failed:
        build_shards(raw, out, "mimic", **SMALL)
    (bug,) = [r for r in _rejects(out) if r["reason"] == "internal_error"]
    assert bug["message"].startswith("TypeError: ") and "(at pipelines/imaging/intensity.py:" in bug["message"]
    assert bug["stage"] == "preprocess" and "in is_grey" in bug["message"]
    manifest = json.loads((out / "mimic" / "manifest.json").read_text())
    assert manifest == json.loads(json.dumps(failed.value.manifest)) and manifest["samples"] == 10  # every other sample written
    assert validate_paths([str(out)]).violations == []


def test_the_command_line_exits_1_on_a_failed_build(tree, monkeypatch, capsys):
    from pipelines.imaging import intensity

    raw, out = tree
    monkeypatch.setattr(intensity, "GREY_TOLERANCE", None)
    code = build_module.main(["--dataset", "mimic", "--raw", str(raw / "mimic"), "--out", str(out), "--executor", "serial",
                              "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err[-1].startswith("error: build failed: mimic: 1 internal error") and "rejects.jsonl" in err[-1]
    assert (out / "mimic" / "manifest.json").is_file()


def test_a_source_bug_while_planning_is_an_internal_error(tree, monkeypatch):
    from pipelines.sources.mimic import source

    raw, out = tree
    original = source.Mimic.samples

    def samples(self, record, vocab, ctx):  # a source that breaks on one record
        if record.source_id.endswith("/img3.jpg"):
            return original(self, record, None, ctx).no_such
        return original(self, record, vocab, ctx)

    monkeypatch.setattr(source.Mimic, "samples", samples)
    with pytest.raises(BuildFailed):
        build_shards(raw, out, "mimic", **SMALL)
    (bug,) = [r for r in _rejects(out) if r["reason"] == "internal_error"]
    assert bug["stage"] == "plan" and bug["message"].startswith("AttributeError")


def test_a_failing_shard_does_not_stop_the_others(tree, monkeypatch):
    from pipelines.writer import ShardWriter

    raw, out = tree
    original = ShardWriter.commit

    def commit(self, stats):
        if self.tar_path.name.endswith("-000000.tar") and "test" in self.tar_path.name:
            raise OSError(28, "No space left on device")
        return original(self, stats)

    monkeypatch.setattr(ShardWriter, "commit", commit)
    with pytest.raises(BuildFailed, match="2 internal error"):
        build_shards(raw, out, "mimic", **SMALL)
    rejects = [r for r in _rejects(out) if r["reason"] == "internal_error"]
    assert len(rejects) == 2 and all("No space left on device" in r["message"] for r in rejects)
    manifest = json.loads((out / "mimic" / "manifest.json").read_text())
    assert manifest["counts"]["split"] == {"train": 9} and not list((out / "mimic/2d/test").glob("*.tar"))


def test_too_many_rejects_fail_the_build_after_writing(tree):
    raw, out = tree
    for n in (0, 1, 2):  # 3 of 11 images unreadable: 27 % > 25 %
        next((raw / "mimic/files/p10").glob(f"p100000{n:02d}/*/*.jpg")).write_bytes(b"not an image")
    with pytest.raises(BuildFailed, match=r"3 of 11 inputs rejected \(27%, more than --max-reject-fraction 0.25\)"):
        build_shards(raw, out, "mimic", **SMALL)
    assert json.loads((out / "mimic" / "manifest.json").read_text())["samples"] == 8
    manifest = build_shards(raw, out, "mimic", max_reject_fraction=0.5, **SMALL)
    assert manifest["rejects"]["by_reason"] == {"undecodable": 3} and manifest["build"]["max_reject_fraction"] == 0.5
