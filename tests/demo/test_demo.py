"""Tests of the demo raw-tree generator (pipelines/demo.py)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipelines import demo  # noqa: E402

SMALL = {"mimic_studies": 8, "rad3d_cases": 3}

SUBJECT_DIR = re.compile(r"^p1\d$")
DICOM_ID = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{8}){4}$")


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def default_tree(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("default")
    return out, demo.build_demo(out)


@pytest.fixture(scope="module")
def small_trees(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    trees = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        out = tmp_path_factory.mktemp(f"small_{name}")
        trees[name] = (out, demo.build_demo(out, seed=seed, **SMALL))
    return trees


# --------------------------------------------------------------------------- helpers


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


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


# --------------------------------------------------------------------------- MIMIC-CXR


def test_mimic_layout(default_tree):
    out, info = default_tree
    root = out / "mimic"
    assert info["mimic"]["studies"] == demo.DEFAULT_MIMIC_STUDIES
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
    assert len(per_study) == demo.DEFAULT_MIMIC_STUDIES
    assert set(per_study.values()) <= {1, 2, 3}
    for name in ("mimic-cxr-2.0.0-split.csv.gz", "mimic-cxr-2.0.0-metadata.csv.gz",
                 "radfm/mimic_caption_train.csv", "radfm/mimic_caption_test.csv"):
        assert (root / name).is_file()


def test_mimic_images_decode_except_planted_and_differ(default_tree):
    out, info = default_tree
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


def test_mimic_tables(default_tree):
    out, info = default_tree
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


def test_mimic_reports_have_sections_except_variants(default_tree):
    out, info = default_tree
    root = out / "mimic"
    variants = info["mimic"]["report_variants"]
    assert len(variants["impression_only"]) == 2 and len(variants["no_sections"]) == 1
    reports = sorted((root / "files").rglob("*.txt"))
    assert len(reports) == demo.DEFAULT_MIMIC_STUDIES
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


def test_mimic_radfm_csvs(default_tree):
    out, info = default_tree
    root = out / "mimic"
    prefix = demo.MIMIC_RADFM_PREFIX
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


# --------------------------------------------------------------------------- Rad3D


def test_rad3d_case_tree(default_tree):
    out, info = default_tree
    root = out / "rad3d"
    case_dirs = sorted(p for p in (root / "cases").iterdir() if p.is_dir())
    assert len(case_dirs) == demo.DEFAULT_RAD3D_CASES == info["rad3d"]["cases"]
    counts = []
    for case in case_dirs:
        doc = json.loads((root / "cases" / f"{case.name}.json").read_text(encoding="utf-8"))
        image_nos = sorted(p for p in case.iterdir())
        assert 1 <= len(image_nos) <= 2
        for image in image_nos:
            entry = doc[image.name]
            assert isinstance(entry, list) and entry[0]["modality"] in {"MRI", "CT"}
            assert doc[f"{image.name}详情"].strip()
            series = sorted(image.iterdir())
            assert 1 <= len(series) <= 2
            for s in series:
                assert re.fullmatch(r"(MRI|CT)_\d", s.name) and s.name.startswith(entry[0]["modality"])
                names = sorted(int(p.stem) for p in s.glob("*.jpg"))
                assert names == list(range(len(names)))  # 0..N-1, not zero-padded
                counts.append(len(names))
                with Image.open(s / "0.jpg") as im:
                    assert im.mode == "L" and 256 <= min(im.size) and max(im.size) <= 512
    assert 1 in counts
    assert all(12 <= n <= 80 for n in counts if n != 1)
    assert sum(counts) == info["rad3d"]["slices"]


def test_rad3d_volumes(default_tree):
    import nibabel as nib

    out, info = default_tree
    root = out / "rad3d"
    niftis = sorted((root / "volumes").glob("*.nii.gz"))
    assert len(niftis) == info["rad3d"]["volumes"] >= 1
    for path in niftis:
        img = nib.load(path)
        assert img.ndim == 3 and min(img.shape) >= 12
        assert not np.allclose(img.affine, np.eye(4))
    (nan,) = planted(info, "rad3d", "nan_volume")
    npys = sorted((root / "npy").glob("*.npy"))
    assert len(npys) == info["rad3d"]["npy"]
    for path in npys:
        arr = np.load(path)
        assert arr.ndim == 5 and arr.shape[1:4] == (3, demo.NPY_SIZE, demo.NPY_SIZE)
        assert np.array_equal(arr[:, 0], arr[:, 2], equal_nan=arr.dtype.kind == "f")
        has_nan = arr.dtype.kind == "f" and bool(np.isnan(arr).any())
        assert has_nan == (str(path.relative_to(root)) == nan["file"])


def test_rad3d_radfm_files(default_tree):
    out, info = default_tree
    root = out / "rad3d"
    prefix = demo.RAD3D_RADFM_PREFIX
    radfm = root / "radfm"
    modalities = json.loads((radfm / "modality_set.json").read_text())["modality"]
    assert {"CT", "MRI", "X-ray", "Ultrasound"} <= set(modalities)
    articles = json.loads((radfm / "articles_resave.json").read_text(encoding="utf-8"))
    assert len(articles) >= 8 and all(v.strip() for v in articles.values())

    nan_file = planted(info, "rad3d", "nan_volume")[0]["file"]
    referenced = []
    titles = set()
    for split in ("train", "test"):
        entries = json.loads((radfm / f"radiology_article_npy_{split}.json").read_text(encoding="utf-8"))
        assert entries
        for e in entries:
            assert set(e) == {"pre", "pat", "npy_path", "finding", "impression",
                              "radiographic_features", "articles", "title"}
            assert e["finding"].strip() and e["impression"].strip() and e["pre"].strip()
            assert isinstance(e["radiographic_features"], list) and e["articles"]
            titles.add(e["title"])
            paths = e["npy_path"] if isinstance(e["npy_path"], list) else [e["npy_path"]]
            referenced += paths
    assert titles <= set(articles)
    rels = [strip_prefix(p, prefix) for p in referenced]
    assert nan_file in rels
    assert any(r.startswith("volumes/") for r in rels) or info["rad3d"]["volumes"] == 0
    assert any(re.fullmatch(r"cases/\d+/\d+", r) for r in rels)
    for rel in rels:
        assert (root / rel).exists(), rel

    (bad,) = planted(info, "rad3d", "bad_row")
    for split in ("train", "test"):
        rows = read_csv(radfm / f"radiology_vqa_{split}.csv")
        assert list(rows[0]) == ["image_path", "question", "answer"]
        for i, row in enumerate(rows):
            assert (root / strip_prefix(row["image_path"], prefix)).exists()
            is_bad = split == "train" and i == bad["row"]
            assert (row["question"] == "") == is_bad
        rows = read_csv(radfm / f"radio_modality_{split}.csv")
        assert list(rows[0]) == ["image_path", "answer"]
        for row in rows:
            target = root / strip_prefix(row["image_path"], prefix)
            assert target.exists() and row["answer"] in modalities
            assert target.name.endswith(".nii.gz") or target.is_dir()


# --------------------------------------------------------------------------- planted faults, determinism, CLI


def test_planted_format(default_tree):
    out, info = default_tree
    kinds = sorted(p["kind"] for p in info["planted"])
    assert kinds == sorted(["corrupt_jpeg", "empty_file", "missing_file", "bad_row", "bad_row", "nan_volume"])
    for p in info["planted"]:
        assert {"dataset", "file", "kind"} <= set(p) and p["dataset"] in {"mimic", "rad3d"}
        path = out / p["dataset"] / p["file"]
        assert path.exists() == (p["kind"] != "missing_file")


def test_same_seed_identical_bytes(small_trees):
    (a, info_a), (b, info_b) = small_trees["a"], small_trees["b"]
    ha, hb = file_hashes(a), file_hashes(b)
    assert len(ha) > 50 and ha == hb
    info_a = {**info_a, "out": None, "mimic": {**info_a["mimic"], "root": None},
              "rad3d": {**info_a["rad3d"], "root": None}}
    info_b = {**info_b, "out": None, "mimic": {**info_b["mimic"], "root": None},
              "rad3d": {**info_b["rad3d"], "root": None}}
    assert info_a == info_b


def test_different_seed_differs(small_trees):
    ha, hc = file_hashes(small_trees["a"][0]), file_hashes(small_trees["c"][0])
    common = set(ha) & set(hc)
    assert set(ha) != set(hc)
    assert all(ha[k] != hc[k] for k in common if k.endswith((".jpg", ".npy", ".nii.gz")))


def test_small_tree_has_all_faults(small_trees):
    out, info = small_trees["a"]
    assert {p["kind"] for p in info["planted"]} == set(demo.PLANT_KINDS)
    assert info["mimic"]["studies"] == SMALL["mimic_studies"]
    assert info["rad3d"]["cases"] == SMALL["rad3d_cases"]


def test_cli_rebuilds_demo_tree_in_place(small_trees, capsys):
    out, _ = small_trees["a"]
    expected = file_hashes(out)
    rc = demo.main(["--out", str(out), "--seed", "0", "--mimic-studies", "8", "--rad3d-cases", "3"])
    assert rc == 0
    text = capsys.readouterr().out
    assert str(out.resolve()) in text and "mimic:" in text and "rad3d:" in text
    assert file_hashes(out) == expected


def test_refuses_to_overwrite_foreign_tree(tmp_path):
    (tmp_path / "mimic").mkdir()
    (tmp_path / "mimic" / "precious.txt").write_text("x")
    with pytest.raises(FileExistsError):
        demo.build_demo(tmp_path, **SMALL)
    assert (tmp_path / "mimic" / "precious.txt").exists()


def test_rejects_too_small_parameters(tmp_path):
    with pytest.raises(ValueError):
        demo.build_demo(tmp_path, mimic_studies=2)
    with pytest.raises(ValueError):
        demo.build_demo(tmp_path, rad3d_cases=1)


def test_chest_image_size_option():
    rng = np.random.default_rng(0)
    p = demo.draw_chest_params(rng, (1841, 1955), False, 3000)
    assert max(p.out_w, p.out_h) == 3000
    p = demo.draw_chest_params(rng, (1841, 1955), True, (2544, 3056))
    assert (p.out_w, p.out_h) == (2544, 3056)
    p = demo.draw_chest_params(rng, (1841, 1955), False, None)
    assert 1024 <= max(p.out_w, p.out_h) <= 1400
    small = demo.ChestParams(**{**p.__dict__, "out_w": 300, "out_h": 360})
    pixels = demo.render_chest(demo.load_chest_base(), small)
    assert pixels.shape == (360, 300) and pixels.dtype == np.uint8
    # lungs dark, mediastinum/diaphragm bright: a real chest radiograph, not noise
    assert 40 < pixels.mean() < 200 and pixels.std() > 30
