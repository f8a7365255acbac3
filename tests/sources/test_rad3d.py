"""Rad3D: the reader (four tasks, the dataset-wide vocabulary, typed fields) and its demo fixture (case tree,
volumes, RadFM files, planted faults)."""

from __future__ import annotations

import json
import re

import numpy as np
from PIL import Image
from test_mimic import planted, read_csv, strip_prefix

from pipelines.build import plan_jobs, read_dataset
from pipelines.paths import PathResolver
from pipelines.sources import BuildContext, get_source
from pipelines.sources.rad3d import ArticleFields, ModalityFields, Rad3DVocabulary, VqaFields, fixture


def _ctx(demo_raw):
    return BuildContext(demo_raw / "rad3d", "radfm", demo_raw / "rad3d" / "radfm", PathResolver(demo_raw / "rad3d"))


def test_rad3d_plan_on_demo(demo_raw):
    source = get_source("rad3d")
    ctx = _ctx(demo_raw)
    jobs, rejects = plan_jobs(source, ctx, None)
    tasks_seen = {j.spec.task for j in jobs}
    assert tasks_seen == {"report", "rationale", "vqa", "modality"}
    assert all(j.record.stream == "3d" for j in jobs)
    assert any(r.reason == "bad_row" for r in rejects)
    by_task = {t: {type(j.record.fields) for j in jobs if j.spec.task == t} for t in tasks_seen}
    assert by_task == {"report": {ArticleFields}, "rationale": {ArticleFields}, "vqa": {VqaFields},
                       "modality": {ModalityFields}}
    for j in jobs:
        if j.spec.task == "rationale" and j.spec.variant == "no":
            assert j.record.fields.title not in j.spec.question
        if j.spec.task == "report":
            assert j.spec.answer.startswith(("Finding:", "Impression:")) and "Impression:" in j.spec.answer


def test_vocabulary_is_the_whole_dataset_and_joins_the_lexicon(demo_raw):
    source = get_source("rad3d")
    records, vocab, _ = read_dataset(source, _ctx(demo_raw))
    assert isinstance(vocab, Rad3DVocabulary)
    titles = {r.fields.title for r in records if isinstance(r.fields, ArticleFields)}
    assert titles < set(vocab.titles)  # every article's title, and the negatives of articles_resave.json
    assert set(vocab.titles) == set(json.loads((demo_raw / "rad3d/radfm/articles_resave.json").read_text()))
    assert {"CT", "MRI", "Ultrasound"} <= set(vocab.modalities) and list(vocab.modalities) == sorted(vocab.modalities)
    terms = source.label_terms(vocab)  # diagnoses and modalities join the keyword lexicon
    assert "MRI" in terms and titles <= set(terms)
    # samples see the whole dataset only through the vocabulary: the same record gives the same samples
    record = next(r for r in records if isinstance(r.fields, ModalityFields))
    assert source.samples(record, vocab, _ctx(demo_raw)) == source.samples(record, vocab, _ctx(demo_raw))


# --------------------------------------------------------------------------- the demo fixture


def test_rad3d_case_tree(demo_tree):
    out, info = demo_tree
    root = out / "rad3d"
    case_dirs = sorted(p for p in (root / "cases").iterdir() if p.is_dir())
    assert len(case_dirs) == fixture.DEFAULT_CASES == info["rad3d"]["cases"]
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


def test_rad3d_volumes(demo_tree):
    import nibabel as nib

    out, info = demo_tree
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
        assert arr.ndim == 5 and arr.shape[1:4] == (3, fixture.NPY_SIZE, fixture.NPY_SIZE)
        assert np.array_equal(arr[:, 0], arr[:, 2], equal_nan=arr.dtype.kind == "f")
        has_nan = arr.dtype.kind == "f" and bool(np.isnan(arr).any())
        assert has_nan == (str(path.relative_to(root)) == nan["file"])


def test_rad3d_radfm_files(demo_tree):
    out, info = demo_tree
    root = out / "rad3d"
    prefix = fixture.RADFM_PREFIX
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



def test_native_mode_reads_the_case_layout(demo_raw):
    from literature_helpers import plan

    from pipelines.sources.rad3d import CaseImageFields

    records, read_rejects, jobs, rejects = plan(demo_raw, "rad3d", "native")
    root = demo_raw / "rad3d"
    numbers = 0
    for path in sorted((root / "cases").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        numbers += sum(k.isdigit() for k in doc)
    assert len(records) + len(read_rejects) == numbers  # every image number: a record or a reject
    (missing,) = rejects
    assert missing.reason == "missing_file" and missing.file.endswith("/9")
    for r in records:
        assert isinstance(r.fields, CaseImageFields) and r.modality in ("MRI", "CT") and r.split == "train"
        doc = json.loads((root / "cases" / f"{r.fields.case_id}.json").read_text(encoding="utf-8"))
        assert r.fields.caption == doc[f"{r.fields.image_no}详情"]
        assert [i.path for i in r.images] == sorted((f"cases/{r.fields.case_id}/{r.fields.image_no}/{d.name}" for d in
                                                     (root / "cases" / r.fields.case_id / str(r.fields.image_no)).iterdir()),
                                                    key=lambda p: int(p.rsplit("_", 1)[1]))
    assert {j.spec.task for j in jobs} == {"caption", "modality"}
