"""MIMIC-CXR: the reader (both modes, typed fields, rejects) and its demo fixture (native layout, RadFM csvs,
planted faults)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import shutil
from pathlib import Path

from PIL import Image

from pipelines.build import plan_jobs
from pipelines.paths import PathResolver
from pipelines.sources import BuildContext, get_source
from pipelines.sources.mimic import MimicFields, fixture, report_answer

SUBJECT_DIR = re.compile(r"^p1\d$")
DICOM_ID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{8}){4}$")


def test_mimic_report_sections():
    text = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)
 INDICATION:  Cough.
 FINDINGS:  The heart is normal in size.
   No pleural effusion.
 IMPRESSION:  No acute process.
"""
    assert report_answer(text) == "Findings: The heart is normal in size. No pleural effusion. Impression: No acute process."
    assert report_answer("IMPRESSION: Stable.") == "Impression: Stable."
    assert report_answer("ADDENDUM: see prior.") is None


def _ctx(raw: Path, mode: str) -> BuildContext:
    return BuildContext(raw, mode, raw / "radfm", PathResolver(raw))


def test_both_modes_give_typed_report_records(demo_raw):
    source = get_source("mimic")
    radfm = [r for r in source.records(_ctx(demo_raw / "mimic", "radfm")) if not hasattr(r, "reason")]
    native = [r for r in source.records(_ctx(demo_raw / "mimic", "native")) if not hasattr(r, "reason")]
    for record in radfm + native:
        assert isinstance(record.fields, MimicFields) and record.fields.report.startswith(("Findings:", "Impression:"))
        assert record.stream == "2d" and [i.load_as for i in record.images] == ["image2d"]
    assert {r.split for r in radfm} == {"train", "test"}
    assert {r.split for r in native} == {"train", "validate", "test"}
    assert all(r.fields.study_id and r.fields.view in {"PA", "AP", "LATERAL"} for r in native)


def test_duplicate_rows_are_rejected_not_doubled(demo_raw, tmp_path):
    raw = tmp_path / "mimic"
    shutil.copytree(demo_raw / "mimic", raw)
    csv_file = raw / "radfm" / "mimic_caption_test.csv"
    lines = csv_file.read_text().splitlines()
    csv_file.write_text("\n".join(lines + [lines[1]]) + "\n")
    jobs, rejects = plan_jobs(get_source("mimic"), _ctx(raw, "radfm"), None)
    assert len({j.key for j in jobs}) == len(jobs)
    assert [r.reason for r in rejects].count("duplicate") == 1


# --------------------------------------------------------------------------- the demo fixture


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def read_csv_gz(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(gzip.decompress(path.read_bytes()).decode("utf-8"))))


def planted(info: dict, dataset: str, kind: str) -> list[dict]:
    return [p for p in info["planted"] if p["dataset"] == dataset and p["kind"] == kind]


def strip_prefix(path: str, prefix: str) -> str:
    assert path.startswith(prefix), path
    return path[len(prefix) :]


def decodes(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            im.load()
        return True
    except Exception:
        return False


def test_mimic_layout(demo_tree):
    out, info = demo_tree
    root = out / "mimic"
    assert info["mimic"]["studies"] == fixture.DEFAULT_STUDIES
    images = sorted((root / "files").glob("p*/p*/s*/*.jpg"))
    assert len(images) == info["mimic"]["images"]
    assert 30 <= len(images) <= 72  # 1-3 images per study
    per_study: dict[Path, int] = {}
    for path in images:
        group, subject, study = path.parts[-4:-1]
        assert SUBJECT_DIR.match(group) and subject[:3] == group
        assert re.fullmatch(r"p1\d{7}", subject) and re.fullmatch(r"s5\d{7}", study)
        assert DICOM_ID.match(path.stem)
        assert (path.parent.parent / f"{study}.txt").is_file()
        per_study[path.parent] = per_study.get(path.parent, 0) + 1
    assert len(per_study) == fixture.DEFAULT_STUDIES
    assert set(per_study.values()) <= {1, 2, 3}
    for name in ("mimic-cxr-2.0.0-split.csv.gz", "mimic-cxr-2.0.0-metadata.csv.gz",
                 "radfm/mimic_caption_train.csv", "radfm/mimic_caption_test.csv"):
        assert (root / name).is_file()


def test_mimic_images_decode_except_planted_and_differ(demo_tree):
    out, info = demo_tree
    root = out / "mimic"
    bad = {p["file"]: p["kind"] for p in info["planted"]
           if p["dataset"] == "mimic" and p["kind"] in ("corrupt_jpeg", "empty_file")}
    assert sorted(bad.values()) == ["corrupt_jpeg", "empty_file"]
    hashes = set()
    for path in sorted((root / "files").rglob("*.jpg")):
        rel = str(path.relative_to(root))
        data = path.read_bytes()
        hashes.add(hashlib.sha256(data).hexdigest())
        if rel in bad:
            assert not decodes(path), rel
            if bad[rel] == "empty_file":
                assert data == b""
            else:
                assert data[:2] == b"\xff\xd8"  # a JPEG header, then truncated
            continue
        with Image.open(path) as im:
            im.load()
            assert im.format == "JPEG" and im.mode == "L"
            assert 1024 <= max(im.size) <= 1400
    assert len(hashes) == info["mimic"]["images"]  # no two images alike


def test_mimic_tables(demo_tree):
    out, info = demo_tree
    root = out / "mimic"
    split = read_csv_gz(root / "mimic-cxr-2.0.0-split.csv.gz")
    meta = read_csv_gz(root / "mimic-cxr-2.0.0-metadata.csv.gz")
    assert list(split[0]) == ["dicom_id", "study_id", "subject_id", "split"]
    assert list(meta[0])[:7] == ["dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription",
                                 "ViewPosition", "Rows", "Columns"]
    assert len(meta[0]) == 12
    on_disk = {p.stem: p for p in (root / "files").rglob("*.jpg")}
    assert {r["dicom_id"] for r in split} == set(on_disk)  # corrupt + empty listed too
    assert {r["split"] for r in split} == {"train", "validate", "test"}
    study_split = {}
    for r in split:
        path = on_disk[r["dicom_id"]]
        assert path.parent.name == "s" + r["study_id"] and path.parent.parent.name == "p" + r["subject_id"]
        assert study_split.setdefault(r["study_id"], r["split"]) == r["split"]
    n_train = sum(s == "train" for s in study_split.values())
    assert n_train >= 0.6 * len(study_split)
    bad = {Path(p["file"]).stem for p in info["planted"] if p["dataset"] == "mimic"}
    for r in meta:
        assert r["ViewPosition"] in {"PA", "AP", "LATERAL"}
        if r["dicom_id"] not in bad:
            with Image.open(on_disk[r["dicom_id"]]) as im:
                assert im.size == (int(r["Columns"]), int(r["Rows"]))
    # gzip written with mtime 0: bytes 4..8 of the header
    assert (root / "mimic-cxr-2.0.0-split.csv.gz").read_bytes()[4:8] == b"\0\0\0\0"


def test_mimic_reports_have_sections_except_variants(demo_tree):
    out, info = demo_tree
    root = out / "mimic"
    variants = info["mimic"]["report_variants"]
    assert len(variants["impression_only"]) == 2 and len(variants["no_sections"]) == 1
    reports = sorted((root / "files").rglob("*.txt"))
    assert len(reports) == fixture.DEFAULT_STUDIES
    for path in reports:
        rel = str(path.relative_to(root))
        text = path.read_text(encoding="utf-8")
        assert text.startswith(" " * 33 + "FINAL REPORT\n")
        assert all(len(line) <= 72 for line in text.splitlines()[1:])  # wrapped at 70
        if rel in variants["no_sections"]:
            assert "FINDINGS:" not in text and "IMPRESSION:" not in text and text.strip()
        elif rel in variants["impression_only"]:
            assert "FINDINGS:" not in text and "IMPRESSION:" in text
        else:
            assert "EXAMINATION:" in text and "FINDINGS:" in text and "IMPRESSION:" in text
            assert text.index("FINDINGS:") < text.index("IMPRESSION:")


def test_mimic_radfm_csvs(demo_tree):
    out, info = demo_tree
    root = out / "mimic"
    prefix = fixture.RADFM_PREFIX
    assert not Path(prefix).exists()
    split = {r["dicom_id"]: r["split"] for r in read_csv_gz(root / "mimic-cxr-2.0.0-split.csv.gz")}
    missing = {p["file"] for p in planted(info, "mimic", "missing_file")}
    (bad_row,) = planted(info, "mimic", "bad_row")
    assert bad_row["file"] == "radfm/mimic_caption_train.csv"
    no_sections = {Path(p).with_suffix("").name for p in info["mimic"]["report_variants"]["no_sections"]}
    seen = 0
    for name, allowed in (("train", {"train", "validate"}), ("test", {"test"})):
        rows = read_csv(root / f"radfm/mimic_caption_{name}.csv")
        assert rows and list(rows[0]) == ["image_path", "label"]
        assert len(rows) == info["mimic"]["rows"][f"radfm/mimic_caption_{name}.csv"]
        for i, row in enumerate(rows):
            if name == "train" and i == bad_row["row"]:
                assert row["image_path"] == ""
                continue
            rel = strip_prefix(row["image_path"], prefix)
            assert row["label"].startswith(("Findings: ", "Impression: "))
            assert "Impression: " in row["label"] and "\n" not in row["label"]
            assert Path(rel).parent.name not in no_sections
            if rel in missing:
                assert not (root / rel).exists()
                continue
            assert (root / rel).is_file(), rel
            assert split[Path(rel).stem] in allowed
            seen += 1
    assert seen >= 0.8 * info["mimic"]["images"]
    assert len(missing) == 1

