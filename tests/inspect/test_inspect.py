"""python -m pipelines.inspect: summary, decoded samples, montage, validation."""

from __future__ import annotations

import io

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
    assert "unreadable: 1" in capsys.readouterr().out
