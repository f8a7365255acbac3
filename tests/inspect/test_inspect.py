"""python -m pipelines.inspect: summary, decoded samples, montage, validation."""

from __future__ import annotations

import io
import json

import pytest

from pipelines.inspect import inspect as inspect_path
from pipelines.inspect import main as inspect_main
from shards_spec import codec
from shards_spec.reader import iter_raw_samples
from shards_spec.tario import TarSink


def test_inspect_cli_summary_show_and_montage(demo_shards, tmp_path, capsys, monkeypatch):
    png = tmp_path / "sheet.png"
    rc = inspect_main([str(demo_shards), "--show", "2", "--montage", str(png), "--validate"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "samples per stream / task" in out and "2d  report" in out and "3d  vqa" in out
    assert "[IMG 0]" in out and "*" in out and "</s>" in out
    assert "validate: OK" in out
    from PIL import Image
    with Image.open(png) as im:
        assert im.size[0] > 300 and im.size[1] > 150
    # every dataset gets tiles of its own on the sheet
    import pipelines.inspect as module
    from pipelines.inspect import montage as real_montage
    drawn: list[str] = []
    monkeypatch.setattr(module, "montage", lambda images, out: (drawn.extend(label for label, _ in images),
                                                                real_montage(images, out)))
    inspect_path(demo_shards, montage_path=tmp_path / "again.png")
    datasets = {p.name for p in demo_shards.iterdir() if (p / "manifest.json").exists()}
    assert {label.split()[0] for label in drawn} == datasets



def test_inspect_reports_a_mistyped_sample_and_goes_on(demo_shards, tmp_path, capsys):
    src = sorted((demo_shards / "mimic").rglob("*.tar"))[0]
    samples = [(r.key, {f: m.data for f, m in r.members.items()}) for r in iter_raw_samples(src)]
    meta = codec.decode_member("meta.json", samples[0][1]["meta.json"])
    samples[0][1]["meta.json"] = codec.encode_meta({**meta, "image_spans": "none"})
    buf = io.BytesIO()
    sink = TarSink(buf, 0)
    for key, members in samples:
        for field in sorted(members):
            sink.add(f"{key}.{field}", members[field])
    sink.close()
    tar = tmp_path / src.name
    tar.write_bytes(buf.getvalue())
    summary = inspect_path(tar)
    assert summary.samples == len(samples) - 1
    assert len(summary.errors) == 1 and "image_spans: expected a list, got str" in summary.errors[0]
    assert inspect_main([str(tar)]) == 1
    assert "problems: 1" in capsys.readouterr().out


# ============================================================================ hostile inputs: one line, never a traceback
def _nifti(path):
    import nibabel as nib
    import numpy as np

    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), dtype=np.float32), np.eye(4)), str(path))
    return path


def _hostile(kind: str, tmp_path):
    """A path a newcomer might hand to the readers, and a phrase the one line about it must contain."""
    from conftest import ROOT

    if kind == "readme":
        return ROOT / "README.md", "text, not JSON"
    if kind == "nii.gz":
        return _nifti(tmp_path / "x.nii.gz"), "gzip-compressed data"
    if kind == "nii":
        return _nifti(tmp_path / "x.nii"), "NIfTI-1 volume"
    if kind == "binary":
        (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 4)
        return tmp_path / "blob.bin", "binary data"
    if kind == "empty-file":
        (tmp_path / "mimic-train-2d-000000.tar").write_bytes(b"")
        return tmp_path / "mimic-train-2d-000000.tar", "empty file"
    if kind == "not-json":
        (tmp_path / "manifest.json").write_text('{"shards": [')
        return tmp_path / "manifest.json", "JSON (Expecting value"
    if kind == "deep-json":  # Python's JSON parser gives up on deep nesting with a RecursionError
        (tmp_path / "manifest.json").write_text("[" * 200_000)
        return tmp_path / "manifest.json", "nested too deeply"
    if kind == "folder":
        (tmp_path / "nothing").mkdir()
        (tmp_path / "nothing" / "notes.txt").write_text("no shards here")
        return tmp_path / "nothing", "no shards"
    raise AssertionError(kind)


HOSTILE = ("readme", "nii.gz", "nii", "binary", "empty-file", "not-json", "deep-json", "folder")


@pytest.mark.parametrize("kind", HOSTILE)
def test_inspect_says_what_a_path_is_in_one_line_and_exits_1(kind, tmp_path, capsys):
    path, phrase = _hostile(kind, tmp_path)
    assert inspect_main([str(path)]) == 1
    out = capsys.readouterr()
    lines = (out.out + out.err).strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(str(path)) and phrase in lines[0], lines


@pytest.mark.parametrize("kind", HOSTILE)
def test_validate_says_what_a_path_is_in_one_line_and_exits_1(kind, tmp_path, capsys):
    from shards_spec.validate import main as validate_main

    path, phrase = _hostile(kind, tmp_path)
    if kind == "folder":
        phrase = "no manifest.json or shard"
    assert validate_main([str(path)]) == 1
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(str(path)) and phrase in lines[0], lines
    assert out.err.startswith("FAIL: 0 shards")


def test_clis_on_a_nifti_run_as_users_run_them(tmp_path):
    """The real entry points (``python -m ...``) on a NIfTI volume: exit 1, one line each, no traceback."""
    import subprocess
    import sys

    from conftest import ROOT

    path = _nifti(tmp_path / "x.nii.gz")
    for module in ("pipelines.inspect", "shards_spec.validate"):
        res = subprocess.run([sys.executable, "-m", module, str(path)], cwd=ROOT, capture_output=True, text=True)
        assert res.returncode == 1, res.stdout + res.stderr
        assert "Traceback" not in res.stderr and len(res.stdout.strip().splitlines()) == 1, res.stdout + res.stderr


def _mimic_copy(demo_shards, tmp_path, mutate):
    from shard_edit import edit_dataset

    return edit_dataset(demo_shards / "mimic", tmp_path / "mimic", mutate)


def test_inspect_goes_on_past_a_sample_missing_a_member(demo_shards, tmp_path, capsys):
    dropped = []

    def drop(key, members):
        if not dropped:
            dropped.append(key)
            members.pop("tokens.npy")
        return members

    dataset = _mimic_copy(demo_shards, tmp_path, drop)
    total = sum(e["samples"] for e in json.loads((dataset / "manifest.json").read_text())["shards"])
    summary = inspect_path(dataset)
    assert summary.samples == total - 1
    assert len(summary.errors) == 1 and dropped[0] in summary.errors[0] and "missing members ['tokens.npy']" in summary.errors[0]
    assert inspect_main([str(dataset / "manifest.json")]) == 1
    assert "problems: 1" in capsys.readouterr().out
    from shards_spec.validate import validate_paths

    found = validate_paths([str(dataset)]).violations
    assert found and any(dropped[0] in v and "tokens.npy" in v for v in found), found


def test_inspect_and_validate_read_the_good_entries_of_a_bad_manifest(demo_shards, tmp_path, capsys):
    """A manifest with a mistyped entry, an entry naming a missing shard and one leaving the folder: one line
    each, and every other listed shard is read."""
    from shards_spec.validate import validate_paths

    dataset = _mimic_copy(demo_shards, tmp_path, lambda k, m: m)
    manifest = json.loads((dataset / "manifest.json").read_text())
    good = manifest["shards"][2:]
    manifest["shards"][0]["samples"] = "ten"
    manifest["shards"][1]["path"] = "../../outside.tar"
    manifest["shards"].append({**good[0], "path": "2d/train/mimic-train-2d-999999.tar"})
    (dataset / "manifest.json").write_text(json.dumps(manifest))
    summary = inspect_path(dataset / "manifest.json")
    assert summary.shards == len(good) and summary.samples == sum(s["samples"] for s in good)
    assert len(summary.errors) == 3, summary.errors
    assert any("shards[0].samples: expected int, got str" in e for e in summary.errors)
    assert any("leaves the manifest's folder" in e for e in summary.errors)
    assert any("mimic-train-2d-999999.tar does not exist" in e for e in summary.errors)
    found = validate_paths([str(dataset / "manifest.json")]).violations
    assert any("shards[0].samples: expected int, got str" in v for v in found), found
    assert any("outside.tar" in v for v in found) and any("999999" in v for v in found), found


def test_inspect_reads_a_truncated_shard_up_to_the_cut(demo_shards, tmp_path):
    src = max((demo_shards / "mimic").rglob("*.tar"), key=lambda p: p.stat().st_size)
    full = inspect_path(src)
    cut = tmp_path / src.name
    cut.write_bytes(src.read_bytes()[: src.stat().st_size * 2 // 3])
    summary = inspect_path(cut)
    assert 0 < summary.samples < full.samples
    assert len(summary.errors) == 1 and "the rest of this shard is not read" in summary.errors[0]


def test_inspect_counts_and_draws_colour_next_to_grey(demo_shards, tmp_path, capsys):
    """Colour samples (C = 3) beside grey ones: counted apart, and drawn in colour on the montage."""
    import numpy as np
    from PIL import Image
    from shard_edit import to_colour

    coloured = []

    def every_other(key, members):
        coloured.append(key)
        return to_colour(key, members) if len(coloured) % 2 else members

    dataset = _mimic_copy(demo_shards, tmp_path, every_other)
    png = tmp_path / "sheet.png"
    assert inspect_main([str(dataset), "--montage", str(png), "--validate"]) == 0
    out = capsys.readouterr().out
    n_colour = (len(coloured) + 1) // 2
    assert "2d  [1, 3, 512, 512, 1]" in out and "2d  [1, 1, 512, 512, 1]" in out
    assert f"colour {n_colour:8d}" in out and "validate: OK" in out
    sheet = np.asarray(Image.open(png).convert("RGB")).astype(int)
    assert (np.abs(sheet[..., 0] - sheet[..., 1]) > 30).mean() > 0.05  # colour tiles are not grey
