"""Build a small raw-data tree for the demo: MIMIC-CXR and Rad3D (Radiopaedia).

``python -m pipelines.demo --out data/raw [--seed 0] [--mimic-studies N] [--rad3d-cases M]``

Both datasets are written in their *native* layouts (as a user who downloaded them
would have them), together with the RadFM split files that refer to them through
the original authors' absolute cluster paths, so a builder has to remap prefixes.

Content is real, only re-arranged:

* chest X-ray pixels come from pydicom-data's ``RG1_UNCI.dcm`` (a CR chest PA),
  randomly cropped / rotated / rescaled / jittered so that every image differs;
* volumes come from nilearn's MNI152 T1 template, nibabel's ``example4d.nii.gz``
  and ``anatomical.nii`` and pydicom's ``CT_small.dcm`` (sub-volumes, shifts, crops);
* report text comes from torchxrayvision's ``NLMCXR_reports.tgz`` (OpenI, Indiana
  University chest X-ray reports). The Rad3D case texts are short hand-written
  summaries of textbook findings.

torchxrayvision and nilearn are never imported: their data files are read by path.

The output is deterministic: the same seed and sizes give byte-identical files
(fixed JPEG quality, gzip with ``mtime=0``, no timestamps, sorted iteration).
Some faults are planted on purpose (corrupt / empty JPEGs, a missing file, malformed
rows, a volume holding NaN); ``build_demo`` returns them in ``planted``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.util
import io
import json
import math
import shutil
import sys
import tarfile
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

# --------------------------------------------------------------------------- constants

#: Prefix of the image paths in RadFM's MIMIC split files (does not exist locally).
MIMIC_RADFM_PREFIX = "/gpfs/home/cs/leijiayu/data/MIMIC-CXR/"
#: Prefix of the image paths in RadFM's Rad3D files (does not exist locally).
RAD3D_RADFM_PREFIX = "/mnt/petrelfs/share_data/radiopaedia/"

MIMIC_DIR = "mimic"
RAD3D_DIR = "rad3d"
#: Written at the root of the output; its presence allows a rebuild to replace the tree.
MARKER = "README.demo.txt"

JPEG_QUALITY_CHEST = 90
JPEG_QUALITY_SLICE = 90

DEFAULT_MIMIC_STUDIES = 24
DEFAULT_RAD3D_CASES = 6
MIN_MIMIC_STUDIES = 8
MIN_RAD3D_CASES = 3

#: Default long side of a chest JPEG (varied per image).
CHEST_LONG_SIDE = (1024, 1400)
#: In-plane size (square) and depth range of the RadFM-processed npy volumes.
NPY_SIZE = 128
NPY_DEPTH = (8, 24)

PLANT_KINDS = ("corrupt_jpeg", "empty_file", "missing_file", "bad_row", "nan_volume")


class DemoSourceError(RuntimeError):
    """A package that carries the demo's real content is missing."""


# --------------------------------------------------------------------------- small I/O helpers


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _write_text(path: Path, text: str) -> None:
    _write_bytes(path, text.encode("utf-8"))


def _csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> int:
    _write_bytes(path, _csv_bytes(header, rows))
    return len(rows)


def _write_csv_gz(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> int:
    _write_bytes(path, gzip.compress(_csv_bytes(header, rows), compresslevel=9, mtime=0))
    return len(rows)


def _write_json(path: Path, obj: object) -> None:
    _write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def _jpeg_bytes(pixels: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _collapse(text: str) -> str:
    return " ".join(text.split())


def _hex_id(rng: np.random.Generator) -> str:
    """A MIMIC-style dicom_id: five dash-separated groups of 8 hex digits."""
    return "-".join(f"{int(v):08x}" for v in rng.integers(0, 2**32, size=5))


def _fault(dataset: str, file: str, kind: str, **extra: object) -> dict:
    """One planted fault: ``file`` is relative to the dataset root (``<out>/<dataset>``)."""
    assert kind in PLANT_KINDS, kind
    return {"dataset": dataset, "file": file, "kind": kind, **extra}


def _distinct_ints(rng: np.random.Generator, n: int, low: int, high: int) -> list[int]:
    out: list[int] = []
    seen: set[int] = set()
    while len(out) < n:
        v = int(rng.integers(low, high))
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


# --------------------------------------------------------------------------- sources of real content


def _package_dir(name: str) -> Path:
    """Directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise DemoSourceError(f"package {name!r} is not installed (needed for its data files)")
    return Path(next(iter(spec.submodule_search_locations)))


def _data_file(package: str, relative: str) -> Path:
    path = _package_dir(package) / relative
    if not path.is_file():
        raise DemoSourceError(f"{package} does not carry {relative}")
    return path


def _pydicom_test_file(name: str) -> Path:
    from pydicom.data import get_testdata_file

    try:
        found = get_testdata_file(name)
    except Exception as exc:  # pydicom may try (and fail) to download it
        raise DemoSourceError(f"pydicom test file {name} unavailable: {exc}") from exc
    if not found:
        raise DemoSourceError(f"pydicom test file {name} unavailable (install pydicom-data)")
    return Path(found)


#: Every data file the demo reads, as (package, path inside the package).
PACKAGE_SOURCES = (
    ("torchxrayvision", "data/NLMCXR_reports.tgz"),
    ("nilearn", "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"),
    ("nibabel", "tests/data/example4d.nii.gz"),
    ("nibabel", "tests/data/anatomical.nii"),
)
PYDICOM_SOURCES = ("RG1_UNCI.dcm", "CT_small.dcm")


def check_sources() -> None:
    """Raise ``DemoSourceError`` unless every source file is installed (reads nothing)."""
    for package, relative in PACKAGE_SOURCES:
        _data_file(package, relative)
    for name in PYDICOM_SOURCES:
        _pydicom_test_file(name)


def load_chest_base() -> Image.Image:
    """RG1_UNCI.dcm (CR chest PA, MONOCHROME1) as an 8-bit image with dark lungs."""
    import pydicom

    ds = pydicom.dcmread(_pydicom_test_file("RG1_UNCI.dcm"))
    raw = ds.pixel_array.astype(np.float32)
    lo, hi = np.percentile(raw, [2.0, 98.0])
    x = np.clip((raw - lo) / (hi - lo), 0.0, 1.0)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        x = 1.0 - x
    x = x**1.6  # darken the mid-tones: lung fields read as air
    return Image.fromarray(np.round(x * 255).astype(np.uint8), mode="L")


@dataclass(frozen=True)
class Volume:
    """A source volume: ``data`` is float32 in [0, 1], indexed [x, y, z] (RAS-ish)."""

    name: str
    data: np.ndarray
    affine: np.ndarray
    raw: np.ndarray  # the stored voxel values, for NIfTI export
    modality: str
    sequence: str


def _percentile_unit(a: np.ndarray, lo: float = 0.5, hi: float = 99.5) -> np.ndarray:
    p_lo, p_hi = np.percentile(a, [lo, hi])
    return np.clip((a - p_lo) / max(p_hi - p_lo, 1e-6), 0.0, 1.0).astype(np.float32)


def load_volumes() -> dict[str, Volume]:
    """The 3D sources, keyed by name."""
    import nibabel as nib
    import pydicom

    mni = nib.load(
        _data_file("nilearn", "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
    )
    t1_raw = np.asarray(mni.dataobj)
    t1 = _percentile_unit(t1_raw.astype(np.float32), 0.0, 99.9)
    # A T2-like contrast derived from the T1 template: invert inside the head (CSF bright).
    head = t1_raw > 25
    t2_raw = np.where(head, 255 - t1_raw.astype(np.int16), 0).astype(np.uint8)

    ex4d = nib.load(_data_file("nibabel", "tests/data/example4d.nii.gz"))
    epi_raw = np.asarray(ex4d.dataobj)[..., 0]
    anat = nib.load(_data_file("nibabel", "tests/data/anatomical.nii"))
    anat_raw = np.asarray(anat.dataobj).astype(np.int16)

    ct = pydicom.dcmread(_pydicom_test_file("CT_small.dcm"))
    hu = ct.pixel_array.astype(np.float32) * float(ct.RescaleSlope) + float(ct.RescaleIntercept)
    level, width = 300.0, 1500.0  # bone window
    ct_unit = np.clip((hu - (level - width / 2)) / width, 0.0, 1.0).astype(np.float32)
    # Stored as [x, y, 1] like the NIfTI sources (DICOM rows are y).
    ct_unit = ct_unit.T[:, ::-1, None]

    return {
        "mni_t1": Volume("mni_t1", t1, mni.affine, t1_raw, "MRI", "T1"),
        "mni_t2": Volume("mni_t2", _percentile_unit(t2_raw.astype(np.float32), 0.0, 99.9),
                         mni.affine, t2_raw, "MRI", "T2"),
        "epi": Volume("epi", _percentile_unit(epi_raw.astype(np.float32)), ex4d.affine,
                      epi_raw, "MRI", "EPI"),
        "anat": Volume("anat", _percentile_unit(anat_raw.astype(np.float32)), anat.affine,
                       anat_raw, "MRI", "T1"),
        "ct_small": Volume("ct_small", np.ascontiguousarray(ct_unit), np.eye(4),
                           np.ascontiguousarray(hu.T[:, ::-1, None]), "CT", "bone window"),
    }


@dataclass(frozen=True)
class OpenIReport:
    uid: str
    indication: str
    comparison: str
    findings: str
    impression: str
    mesh: tuple[str, ...]


def _parse_openi(xml_bytes: bytes) -> OpenIReport:
    root = ET.fromstring(xml_bytes)
    sections = {
        (el.get("Label") or "").upper(): _collapse(el.text or "")
        for el in root.iter("AbstractText")
    }
    uid_el = root.find("uId")
    return OpenIReport(
        uid=uid_el.get("id", "") if uid_el is not None else "",
        indication=sections.get("INDICATION", ""),
        comparison=sections.get("COMPARISON", ""),
        findings=sections.get("FINDINGS", ""),
        impression=sections.get("IMPRESSION", ""),
        mesh=tuple(_collapse(m.text or "") for m in root.iter("major")),
    )


def load_openi_reports(rng: np.random.Generator, n: int) -> list[OpenIReport]:
    """``n`` distinct OpenI reports having both FINDINGS and IMPRESSION, seeded choice.

    Members are only read (never extracted to disk).
    """
    path = _data_file("torchxrayvision", "data/NLMCXR_reports.tgz")
    with tarfile.open(path, "r:gz") as tf:
        payload: dict[str, bytes] = {}
        for member in tf.getmembers():
            if member.isfile() and member.name.endswith(".xml"):
                fh = tf.extractfile(member)
                if fh is not None:
                    payload[member.name] = fh.read()
    names = sorted(payload)
    picked: list[OpenIReport] = []
    for idx in rng.permutation(len(names)):
        report = _parse_openi(payload[names[int(idx)]])
        if len(report.findings) >= 40 and len(report.impression) >= 10:
            picked.append(report)
            if len(picked) == n:
                return picked
    raise DemoSourceError(f"only {len(picked)} OpenI reports with FINDINGS and IMPRESSION")


# --------------------------------------------------------------------------- chest image synthesis


@dataclass(frozen=True)
class ChestParams:
    """Everything random about one chest JPEG (drawn up front, rendering is pure)."""

    crop_w: int
    crop_h: int
    cx: float
    cy: float
    angle_deg: float
    out_w: int
    out_h: int
    gamma: float
    contrast: float
    brightness: float
    noise_sigma: float
    noise_seed: int


def draw_chest_params(
    rng: np.random.Generator,
    src_size: tuple[int, int],
    lateral: bool,
    image_size: int | tuple[int, int] | None,
) -> ChestParams:
    src_w, src_h = src_size
    area = rng.uniform(0.80, 1.0) * src_w * src_h
    aspect = rng.uniform(0.92, 1.15) if lateral else rng.uniform(0.82, 1.0)  # w / h
    crop_w = min(src_w, int(round(math.sqrt(area * aspect))))
    crop_h = min(src_h, int(round(math.sqrt(area / aspect))))
    cx = rng.uniform(crop_w / 2, src_w - crop_w / 2)
    cy = rng.uniform(crop_h / 2, src_h - crop_h / 2)
    angle = rng.uniform(-5.0, 5.0)
    if isinstance(image_size, tuple):
        out_w, out_h = int(image_size[0]), int(image_size[1])
    else:
        long_side = int(image_size) if image_size else int(rng.integers(*CHEST_LONG_SIDE, endpoint=True))
        scale = long_side / max(crop_w, crop_h)
        out_w, out_h = int(round(crop_w * scale)), int(round(crop_h * scale))
    return ChestParams(
        crop_w=crop_w,
        crop_h=crop_h,
        cx=float(cx),
        cy=float(cy),
        angle_deg=float(angle),
        out_w=out_w,
        out_h=out_h,
        gamma=float(rng.uniform(0.85, 1.2) * (1.1 if lateral else 1.0)),
        contrast=float(rng.uniform(0.88, 1.15)),
        brightness=float(rng.uniform(-12.0, 12.0)),
        noise_sigma=float(rng.uniform(0.8, 2.5)),
        noise_seed=int(rng.integers(0, 2**31)),
    )


def render_chest(base: Image.Image, p: ChestParams) -> np.ndarray:
    """Crop + rotate (one affine warp), resize, intensity jitter and mild noise."""
    theta = math.radians(p.angle_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    hw, hh = p.crop_w / 2, p.crop_h / 2
    # output (x, y) -> source: centre + R @ ((x, y) - half size)
    coeffs = (cos, -sin, p.cx - cos * hw + sin * hh, sin, cos, p.cy - sin * hw - cos * hh)
    img = base.transform(
        (p.crop_w, p.crop_h),
        Image.Transform.AFFINE,
        coeffs,
        resample=Image.Resampling.BILINEAR,
        fillcolor=0,
    )
    img = img.resize((p.out_w, p.out_h), Image.Resampling.LANCZOS)
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = 255.0 * np.power(x, p.gamma, dtype=np.float32)
    x = (x - 128.0) * p.contrast + 128.0 + p.brightness
    noise = np.random.default_rng(p.noise_seed).standard_normal(x.shape, dtype=np.float32)
    x += noise * p.noise_sigma
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- MIMIC-CXR

VIEW_MEANING = {"PA": "postero-anterior", "AP": "antero-posterior", "LATERAL": "lateral"}

ADDENDUM_TEXT = (
    "The study was reviewed again at the request of the clinical team. There is no change "
    "to the original interpretation. The result was discussed with Dr. ___ by telephone "
    "at 10:15 on ___, at the time of the review."
)


@dataclass
class MimicImage:
    dicom_id: str
    view: str
    params: ChestParams
    fault: str | None = None  # corrupt_jpeg / empty_file

    @property
    def rows(self) -> int:
        return self.params.out_h

    @property
    def columns(self) -> int:
        return self.params.out_w


@dataclass
class MimicStudy:
    subject_id: int
    study_id: int
    report: OpenIReport
    images: list[MimicImage] = field(default_factory=list)
    split: str = "train"
    sections: str = "full"  # full / impression_only / none
    study_date: int = 0
    study_time: str = ""

    @property
    def rel_dir(self) -> str:
        s = str(self.subject_id)
        return f"files/p{s[:2]}/p{s}/s{self.study_id}"

    @property
    def rel_report(self) -> str:
        return f"{self.rel_dir}.txt"

    def rel_image(self, dicom_id: str) -> str:
        return f"{self.rel_dir}/{dicom_id}.jpg"

    @property
    def procedure(self) -> str:
        views = [im.view for im in self.images]
        if "LATERAL" in views:
            return "CHEST (PA AND LAT)"
        return "CHEST (PORTABLE AP)" if views == ["AP"] else "CHEST (SINGLE VIEW)"

    @property
    def label(self) -> str:
        """RadFM's caption: ``Findings: ... Impression: ...`` ('' when neither exists)."""
        if self.sections == "none":
            return ""
        impression = f"Impression: {_collapse(self.report.impression)}"
        if self.sections == "impression_only":
            return impression
        return f"Findings: {_collapse(self.report.findings)} {impression}"


def _views_for(n_images: int, rng: np.random.Generator) -> list[str]:
    if n_images == 1:
        return ["AP"] if rng.random() < 0.5 else ["PA"]
    return ["PA", "LATERAL", "LATERAL"][:n_images]


def plan_mimic(
    rng: np.random.Generator,
    n_studies: int,
    reports: Sequence[OpenIReport],
    src_size: tuple[int, int],
    image_size: int | tuple[int, int] | None,
) -> list[MimicStudy]:
    """Ids, splits, views, image parameters and report variants of every study."""
    n_subjects = max(4, round(n_studies * 0.65))
    subjects = sorted(_distinct_ints(rng, n_subjects, 10_000_000, 20_000_000))
    study_ids = _distinct_ints(rng, n_studies, 50_000_000, 60_000_000)
    extra = rng.integers(0, n_subjects, n_studies - n_subjects)
    owners = list(range(n_subjects)) + [int(i) for i in extra]  # every subject has >= 1 study
    studies: list[MimicStudy] = []
    for k, owner in enumerate(sorted(owners)):
        study = MimicStudy(subject_id=subjects[owner], study_id=study_ids[k], report=reports[k])
        n_images = int(rng.choice([1, 2, 3], p=[0.45, 0.45, 0.10]))
        for view in _views_for(n_images, rng):
            params = draw_chest_params(rng, src_size, view == "LATERAL", image_size)
            study.images.append(MimicImage(_hex_id(rng), view, params))
        year, month, day = (int(rng.integers(lo, hi)) for lo, hi in ((2110, 2200), (1, 13), (1, 29)))
        study.study_date = year * 10000 + month * 100 + day  # MIMIC's shifted dates
        secs, millis = int(rng.integers(0, 86400)), int(rng.integers(0, 1000))
        study.study_time = f"{secs // 3600}{secs // 60 % 60:02d}{secs % 60:02d}.{millis:03d}"
        studies.append(study)
    studies.sort(key=lambda s: (s.subject_id, s.study_id))
    _assign_mimic_splits(rng, studies)
    _assign_mimic_variants(rng, studies)
    return studies


def _assign_mimic_splits(rng: np.random.Generator, studies: list[MimicStudy]) -> None:
    """~80/10/10 train/validate/test by study; all studies of a subject share a split."""
    by_subject: dict[int, list[MimicStudy]] = {}
    for study in studies:
        by_subject.setdefault(study.subject_id, []).append(study)
    subjects = sorted(by_subject)
    target = max(1, round(0.1 * len(studies)))
    order = [subjects[int(i)] for i in rng.permutation(len(subjects))]
    for split in ("test", "validate"):
        taken = 0
        while taken < target and len(order) > 1:
            subject = order.pop()
            for study in by_subject[subject]:
                study.split = split
            taken += len(by_subject[subject])


def _assign_mimic_variants(rng: np.random.Generator, studies: list[MimicStudy]) -> None:
    """2 impression-only reports, 1 report with neither section, 1 corrupt + 1 empty JPEG."""
    order = [int(i) for i in rng.permutation(len(studies))]
    for k, idx in enumerate(order[:3]):
        studies[idx].sections = "impression_only" if k < 2 else "none"
    # Faulty images live in ordinary train studies, so they show up in RadFM's train csv.
    candidates = [i for i in order[3:] if studies[i].split == "train"]
    images = [im for i in candidates for im in studies[i].images]
    if len(images) < 2:
        images = [im for i in order[3:] for im in studies[i].images]
    images[0].fault = "corrupt_jpeg"
    images[-1].fault = "empty_file"


def mimic_report_text(study: MimicStudy) -> str:
    """A report in MIMIC-CXR's free-text layout, with the OpenI sections as content."""

    def para(text: str) -> list[str]:
        return textwrap.wrap(text, width=70, initial_indent=" ", subsequent_indent=" ")

    def heading(name: str, text: str) -> list[str]:
        return para(f"{name}:  {_collapse(text)}") + [" "]  # two spaces, as in MIMIC

    r = study.report
    lines = ["                                 FINAL REPORT"]
    if study.sections == "none":
        lines += [" ADDENDUM:", " "] + para(_collapse(ADDENDUM_TEXT))
        return "\n".join(lines) + "\n"
    views = [im.view for im in study.images]
    technique = "Chest PA and lateral" if "LATERAL" in views else f"Single {views[0]} view of the chest"
    lines += heading("EXAMINATION", study.procedure)
    lines += heading("INDICATION", _collapse(r.indication) or "___")
    lines += heading("TECHNIQUE", technique)
    lines += heading("COMPARISON", _collapse(r.comparison) or "None.")
    if study.sections == "full":
        lines += [" FINDINGS: ", " "] + para(_collapse(r.findings)) + [" "]
    lines += [" IMPRESSION: ", " "] + para(_collapse(r.impression))
    return "\n".join(lines) + "\n"


def write_mimic_images(root: Path, studies: Sequence[MimicStudy], base: Image.Image) -> int:
    count = 0
    for study in studies:
        for image in study.images:
            path = root / study.rel_image(image.dicom_id)
            if image.fault == "empty_file":
                _write_bytes(path, b"")
            else:
                data = _jpeg_bytes(render_chest(base, image.params), JPEG_QUALITY_CHEST)
                if image.fault == "corrupt_jpeg":
                    data = data[: len(data) // 3]  # valid header, truncated scan
                _write_bytes(path, data)
            count += 1
    return count


def write_mimic_reports(root: Path, studies: Sequence[MimicStudy]) -> int:
    for study in studies:
        _write_text(root / study.rel_report, mimic_report_text(study))
    return len(studies)


def write_mimic_tables(root: Path, studies: Sequence[MimicStudy]) -> dict[str, int]:
    split_rows, meta_rows = [], []
    for study in studies:
        for image in sorted(study.images, key=lambda im: im.dicom_id):
            split_rows.append([image.dicom_id, study.study_id, study.subject_id, study.split])
            meta_rows.append(
                [
                    image.dicom_id,
                    study.subject_id,
                    study.study_id,
                    study.procedure,
                    image.view,
                    image.rows,
                    image.columns,
                    study.study_date,
                    study.study_time,
                    study.procedure,
                    VIEW_MEANING[image.view],
                    "Recumbent" if image.view == "AP" else "Erect",
                ]
            )
    split_name, meta_name = "mimic-cxr-2.0.0-split.csv.gz", "mimic-cxr-2.0.0-metadata.csv.gz"
    return {
        split_name: _write_csv_gz(root / split_name, ["dicom_id", "study_id", "subject_id", "split"], split_rows),
        meta_name: _write_csv_gz(
            root / meta_name,
            [
                "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription",
                "ViewPosition", "Rows", "Columns", "StudyDate", "StudyTime",
                "ProcedureCodeSequence_CodeMeaning", "ViewCodeSequence_CodeMeaning",
                "PatientOrientationCodeSequence_CodeMeaning",
            ],
            meta_rows,
        ),
    }


def write_mimic_radfm(
    root: Path, studies: Sequence[MimicStudy], rng: np.random.Generator, planted: list[dict]
) -> dict[str, int]:
    """RadFM's per-image caption csvs (train = train + validate studies)."""
    rows: dict[str, list[list[str]]] = {"train": [], "test": []}
    for study in studies:
        if not study.label:
            continue  # RadFM has no caption for a report without sections
        target = rows["test" if study.split == "test" else "train"]
        for image in study.images:
            target.append([MIMIC_RADFM_PREFIX + study.rel_image(image.dicom_id), study.label])

    train = rows["train"]
    # A row whose image is not part of the local download.
    host = next(s for s in studies if s.split != "test" and s.sections == "full")
    missing = host.rel_image(_hex_id(rng))
    train.insert(int(rng.integers(0, len(train) + 1)), [MIMIC_RADFM_PREFIX + missing, host.label])
    planted.append(_fault("mimic", missing, "missing_file"))
    # A malformed row: empty image_path.
    bad_at = int(rng.integers(0, len(train) + 1))
    train.insert(bad_at, ["", host.label])
    planted.append(_fault("mimic", "radfm/mimic_caption_train.csv", "bad_row", row=bad_at))

    header = ["image_path", "label"]
    return {
        f"radfm/mimic_caption_{name}.csv": _write_csv(root / f"radfm/mimic_caption_{name}.csv", header, rows[name])
        for name in ("train", "test")
    }


def build_mimic(
    root: Path,
    rng: np.random.Generator,
    n_studies: int,
    image_size: int | tuple[int, int] | None,
) -> tuple[dict, list[dict]]:
    reports = load_openi_reports(rng, n_studies)
    base = load_chest_base()
    studies = plan_mimic(rng, n_studies, reports, base.size, image_size)
    planted: list[dict] = []
    n_images = write_mimic_images(root, studies, base)
    n_reports = write_mimic_reports(root, studies)
    rows = write_mimic_tables(root, studies)
    for study in studies:
        for image in study.images:
            if image.fault:
                planted.append(_fault("mimic", study.rel_image(image.dicom_id), image.fault))
    rows.update(write_mimic_radfm(root, studies, rng, planted))
    splits = {name: sum(s.split == name for s in studies) for name in ("train", "validate", "test")}
    info = {
        "root": str(root),
        "subjects": len({s.subject_id for s in studies}),
        "studies": len(studies),
        "images": n_images,
        "reports": n_reports,
        "splits": splits,
        "rows": rows,
        "radfm_prefix": MIMIC_RADFM_PREFIX,
        "report_variants": {
            "impression_only": [s.rel_report for s in studies if s.sections == "impression_only"],
            "no_sections": [s.rel_report for s in studies if s.sections == "none"],
        },
        "openi_ids": [s.report.uid for s in studies],
    }
    return info, planted


# --------------------------------------------------------------------------- Rad3D texts

#: Hand-written, neutral summaries. ``cases`` marks titles that the demo's cases use.
TOPICS: dict[str, dict] = {
    "Glioblastoma": {
        "pre": ["Progressive headache and left-sided weakness for three weeks.", "New-onset generalised seizure."],
        "finding": "Large heterogeneous intra-axial mass in the right frontal lobe with a necrotic centre, "
        "thick irregular peripheral enhancement and extensive surrounding vasogenic oedema. Mass effect "
        "with effacement of the adjacent sulci and mild midline shift.",
        "impression": "Appearances are most consistent with a glioblastoma.",
        "features": [
            "Thick, irregular rim enhancement surrounding central necrosis.",
            "Extensive T2 hyperintense vasogenic oedema beyond the enhancing margin.",
            "Involvement of the corpus callosum is common (butterfly pattern).",
        ],
        "article": "Glioblastoma is the most common primary malignant brain tumour of adults. It usually "
        "presents as a heterogeneously enhancing intra-axial mass with central necrosis and surrounding "
        "oedema, and it frequently spreads along white matter tracts. Treatment combines maximal safe "
        "resection with chemoradiotherapy; prognosis remains poor.",
    },
    "Meningioma": {
        "pre": ["Headache and blurred vision for several months.", "Incidental finding on imaging for dizziness."],
        "finding": "Well-circumscribed extra-axial mass arising from the left frontal convexity with a broad "
        "dural base. The lesion is isointense to grey matter and shows avid homogeneous enhancement with a "
        "dural tail. Minimal oedema in the adjacent brain.",
        "impression": "Extra-axial dural-based mass, in keeping with a convexity meningioma.",
        "features": [
            "Broad dural base with a CSF cleft between tumour and brain.",
            "Intense homogeneous enhancement and a dural tail.",
            "Hyperostosis of the adjacent skull may be present.",
        ],
        "article": "Meningiomas are the most common extra-axial intracranial tumours and arise from "
        "arachnoid cap cells. Most are benign, slow-growing lesions found in middle-aged and older adults, "
        "more often in women. Small asymptomatic tumours can be followed with imaging.",
    },
    "Normal brain MRI": {
        "pre": ["Chronic headache, no focal neurology.", "Dizziness, imaging to exclude structural cause."],
        "finding": "Normal grey-white matter differentiation. Ventricles and sulci are of normal size for age. "
        "No intra- or extra-axial collection, mass or abnormal signal. Midline structures are central.",
        "impression": "Normal MRI of the brain.",
        "features": [
            "Symmetric ventricles and sulci appropriate for age.",
            "Preserved grey-white matter differentiation.",
            "No mass effect or abnormal signal.",
        ],
        "article": "A normal brain MRI shows symmetric cerebral hemispheres with preserved grey-white matter "
        "differentiation, ventricles and sulci appropriate for age, and no abnormal signal or enhancement. "
        "Knowing normal variants helps avoid over-calling findings.",
    },
    "Arachnoid cyst": {
        "pre": ["Incidental finding during work-up of headache.", "Mild headache, otherwise well."],
        "finding": "Well-defined extra-axial CSF-signal cyst in the left middle cranial fossa, following CSF on "
        "all sequences, with mild scalloping of the adjacent bone and displacement of the temporal lobe. "
        "No enhancement and no restricted diffusion.",
        "impression": "Left middle cranial fossa arachnoid cyst.",
        "features": [
            "Extra-axial lesion following CSF signal on all sequences.",
            "No restricted diffusion (unlike an epidermoid cyst).",
            "Remodelling of the adjacent bone in larger cysts.",
        ],
        "article": "Arachnoid cysts are benign intra-arachnoid collections of CSF, most often found in the "
        "middle cranial fossa. They are usually incidental and asymptomatic. On MRI they follow CSF on all "
        "sequences and do not restrict diffusion.",
    },
    "Multiple sclerosis": {
        "pre": ["Episode of blurred vision in the right eye two months ago.", "Numbness of both legs for ten days."],
        "finding": "Multiple ovoid T2 hyperintense lesions in the periventricular white matter, oriented "
        "perpendicular to the lateral ventricles, with further juxtacortical and infratentorial lesions. "
        "One lesion shows incomplete ring enhancement.",
        "impression": "White matter lesions in a distribution typical of demyelination, consistent with "
        "multiple sclerosis.",
        "features": [
            "Ovoid periventricular lesions perpendicular to the ventricles (Dawson fingers).",
            "Juxtacortical, infratentorial and spinal cord lesions.",
            "Incomplete (open) ring enhancement of active lesions.",
        ],
        "article": "Multiple sclerosis is a chronic inflammatory demyelinating disease of the central nervous "
        "system, typically affecting young adults. MRI shows white matter lesions disseminated in space and "
        "time, and it is central to diagnosis and follow-up.",
    },
    "Vestibular schwannoma": {
        "pre": ["Progressive left-sided hearing loss and tinnitus.", "Unilateral hearing loss for one year."],
        "finding": "Enhancing mass centred on the left internal acoustic meatus, extending into the "
        "cerebellopontine angle with an ice-cream cone configuration. Mild mass effect on the middle "
        "cerebellar peduncle.",
        "impression": "Left vestibular schwannoma.",
        "features": [
            "Intracanalicular component widening the internal acoustic meatus.",
            "Ice-cream cone shape with cerebellopontine angle extension.",
            "Cystic change in larger tumours.",
        ],
        "article": "Vestibular schwannomas are benign nerve sheath tumours of the vestibulocochlear nerve and "
        "the most common mass of the cerebellopontine angle. Bilateral tumours suggest neurofibromatosis "
        "type 2.",
    },
    "Vertebral haemangioma": {
        "pre": ["Back pain after lifting, no neurological deficit.", "Incidental finding on CT of the chest."],
        "finding": "Axial CT image in bone window shows a vertebral body with coarse thickened vertical "
        "trabeculae (polka-dot appearance) and no cortical destruction or soft tissue component.",
        "impression": "Typical vertebral haemangioma.",
        "features": [
            "Polka-dot appearance on axial CT.",
            "Corduroy pattern of thickened trabeculae on sagittal images.",
            "Fat content gives high T1 and T2 signal on MRI.",
        ],
        "article": "Vertebral haemangiomas are common benign vascular lesions of the spine, most often found "
        "incidentally in the thoracic vertebral bodies. Aggressive forms with extraosseous extension are rare.",
    },
    "Pulmonary embolism": {
        "article": "Pulmonary embolism is the obstruction of the pulmonary arteries, usually by thrombus from "
        "the deep veins of the legs. CT pulmonary angiography shows filling defects within the contrast-"
        "opacified arteries and signs of right heart strain in larger emboli.",
    },
    "Pituitary macroadenoma": {
        "article": "Pituitary macroadenomas are pituitary adenomas larger than 10 mm. They may compress the "
        "optic chiasm and cause visual field defects, and show a snowman configuration when extending "
        "through the diaphragma sellae.",
    },
    "Ischaemic stroke": {
        "article": "Ischaemic stroke results from interruption of arterial blood supply to the brain. Diffusion-"
        "weighted MRI shows restricted diffusion within minutes, while CT may be normal early on.",
    },
    "Subdural haematoma": {
        "article": "A subdural haematoma is a collection of blood between the dura and the arachnoid, typically "
        "crescentic and able to cross sutures. Acute collections are hyperdense on CT and chronic ones "
        "become hypodense.",
    },
}

CASE_TOPICS_3D = [t for t in TOPICS if "finding" in TOPICS[t] and t != "Vertebral haemangioma"]
CASE_TOPIC_2D = "Vertebral haemangioma"

#: How each source volume's contrast is named in the texts.
SOURCE_SEQUENCE = {
    "mni_t1": "T1-weighted",
    "mni_t2": "T2-weighted",
    "epi": "T2*-weighted EPI",
    "anat": "T1-weighted",
    "ct_small": "bone window",
}

MODALITY_SET = ["CT", "MRI", "X-ray", "Ultrasound", "Fluoroscopy", "Mammography", "Nuclear medicine",
                "Angiography"]


# --------------------------------------------------------------------------- Rad3D planning


@dataclass
class SeriesPlan:
    case_id: int
    image_no: int
    name: str  # e.g. MRI_0
    source: str
    x0: int
    x1: int
    y0: int
    y1: int
    z: list[int]
    angle_deg: float
    out_w: int
    out_h: int
    gamma: float
    contrast: float
    brightness: float
    export_nifti: bool = False

    @property
    def rel_dir(self) -> str:
        return f"cases/{self.case_id}/{self.image_no}/{self.name}"

    @property
    def rel_nifti(self) -> str:
        return f"volumes/{self.case_id}_{self.image_no}_{self.name}.nii.gz"


@dataclass
class CasePlan:
    case_id: int
    topic: str
    age: int
    sex: str
    presentation: str
    split: str = "train"
    images: dict[int, list[SeriesPlan]] = field(default_factory=dict)

    @property
    def is_2d(self) -> bool:
        return self.topic == CASE_TOPIC_2D

    def rel_npy(self, image_no: int) -> str:
        return f"npy/{self.case_id}_{image_no - 1}.npy"


def _plan_series(
    rng: np.random.Generator, case_id: int, image_no: int, name: str, vol: Volume
) -> SeriesPlan:
    nx, ny, nz = vol.data.shape
    frac = math.sqrt(rng.uniform(0.80, 1.0))
    cw, ch = max(8, int(nx * frac)), max(8, int(ny * frac))
    x0, y0 = int(rng.integers(0, nx - cw + 1)), int(rng.integers(0, ny - ch + 1))
    if nz == 1:
        z = [0]
    else:
        lo, hi = (int(nz * 0.12), int(nz * 0.90)) if nz > 80 else (0, nz)
        count = int(rng.integers(12, min(80, hi - lo) + 1))
        span = int(rng.integers(count, hi - lo + 1))
        start = lo + int(rng.integers(0, hi - lo - span + 1))
        z = sorted({int(round(v)) for v in np.linspace(start, start + span - 1, count)})
    short = int(rng.integers(256, 449))  # short side 256-448 px, long side at most 512
    aspect = ch / cw
    if aspect >= 1:
        out_w, out_h = short, min(512, int(round(short * aspect)))
    else:
        out_w, out_h = min(512, int(round(short / aspect))), short
    return SeriesPlan(
        case_id=case_id,
        image_no=image_no,
        name=name,
        source=vol.name,
        x0=x0,
        x1=x0 + cw,
        y0=y0,
        y1=y0 + ch,
        z=z,
        angle_deg=float(rng.uniform(-5, 5)),
        out_w=out_w,
        out_h=out_h,
        gamma=float(rng.uniform(0.85, 1.15)),
        contrast=float(rng.uniform(0.9, 1.1)),
        brightness=float(rng.uniform(-0.04, 0.04)),
    )


def plan_rad3d(rng: np.random.Generator, n_cases: int, volumes: dict[str, Volume]) -> list[CasePlan]:
    case_ids = sorted(_distinct_ints(rng, n_cases, 10_000, 99_999))
    special = int(rng.integers(0, n_cases))  # the case whose only series is a single 2D image
    topics = [CASE_TOPICS_3D[int(i)] for i in rng.permutation(len(CASE_TOPICS_3D))]
    cases: list[CasePlan] = []
    k3d = 0
    for idx, case_id in enumerate(case_ids):
        if idx == special:
            topic = CASE_TOPIC_2D
        else:
            topic = topics[k3d % len(topics)]
            k3d += 1
        case = CasePlan(
            case_id=case_id,
            topic=topic,
            age=int(rng.integers(18, 81)),
            sex="female" if rng.random() < 0.5 else "male",
            presentation=str(rng.choice(TOPICS[topic]["pre"])),
        )
        if case.is_2d:
            case.images[1] = [_plan_series(rng, case_id, 1, "CT_0", volumes["ct_small"])]
        else:
            for image_no in range(1, int(rng.integers(1, 3)) + 1):
                first = "mni_t1" if image_no == 1 else str(rng.choice(["mni_t2", "epi", "anat", "mni_t1"]))
                sources = [first]
                if rng.random() < 0.5:
                    sources.append(str(rng.choice([s for s in ("mni_t2", "epi", "anat") if s != first])))
                case.images[image_no] = [
                    _plan_series(rng, case_id, image_no, f"MRI_{k}", volumes[src])
                    for k, src in enumerate(sources)
                ]
        cases.append(case)
    # NIfTI copies of some series (every other 3D case, first series).
    for k, case in enumerate(c for c in cases if not c.is_2d):
        if k % 2 == 0:
            case.images[1][0].export_nifti = True
    # ~80/20 split by case, at least one test case that is not the 2D one.
    n_test = max(1, round(0.2 * n_cases))
    pool = [c for c in cases if not c.is_2d]
    for i in rng.permutation(len(pool))[:n_test]:
        pool[int(i)].split = "test"
    return cases


# --------------------------------------------------------------------------- Rad3D rendering


def _orient_axial(slab: np.ndarray) -> np.ndarray:
    """[x, y] voxel plane -> radiological display (anterior up, patient right on the left)."""
    return np.flipud(slab.T)[:, ::-1]


def render_series(plan: SeriesPlan, vol: Volume) -> list[np.ndarray]:
    """The series' slices as uint8 images, in slice order."""
    out = []
    for z in plan.z:
        x = _orient_axial(vol.data[plan.x0 : plan.x1, plan.y0 : plan.y1, z])
        x = np.clip(np.power(x, plan.gamma) * plan.contrast + plan.brightness, 0.0, 1.0)
        img = Image.fromarray(np.rint(x * 255).astype(np.uint8), mode="L")
        img = img.rotate(plan.angle_deg, resample=Image.Resampling.BILINEAR, fillcolor=0)
        img = img.resize((plan.out_w, plan.out_h), Image.Resampling.BILINEAR)
        out.append(np.asarray(img))
    return out


def nifti_bytes(plan: SeriesPlan, vol: Volume) -> bytes:
    """The series' native sub-volume with the source affine shifted to the crop origin."""
    import nibabel as nib

    z0, z1 = plan.z[0], plan.z[-1] + 1
    sub = np.ascontiguousarray(vol.raw[plan.x0 : plan.x1, plan.y0 : plan.y1, z0:z1])
    shift = np.eye(4)
    shift[:3, 3] = [plan.x0, plan.y0, z0]
    img = nib.Nifti1Image(sub, vol.affine @ shift)
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    return gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)


def npy_array(series_slices: Sequence[list[np.ndarray]], depth: int) -> np.ndarray:
    """RadFM's processed layout [S, 3, H, W, Z] (uint8), grey plane repeated 3x."""
    stacks = []
    for slices in series_slices:
        picks = np.linspace(0, len(slices) - 1, depth).round().astype(int) if len(slices) > 1 else [0] * depth
        planes = [
            np.asarray(Image.fromarray(slices[int(i)]).resize((NPY_SIZE, NPY_SIZE), Image.Resampling.BILINEAR))
            for i in picks
        ]
        grey = np.stack(planes, axis=-1)  # H, W, Z
        stacks.append(np.repeat(grey[None], 3, axis=0))
    return np.stack(stacks, axis=0)


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


@dataclass
class Rad3DOutputs:
    slices: int = 0
    series: int = 0
    volumes: int = 0
    npy: int = 0
    nan_npy: str = ""


def write_rad3d_images(
    root: Path, cases: Sequence[CasePlan], volumes: dict[str, Volume], rng: np.random.Generator, nan_case: CasePlan
) -> Rad3DOutputs:
    out = Rad3DOutputs()
    for case in cases:
        for image_no, series_list in sorted(case.images.items()):
            rendered = []
            for plan in series_list:
                vol = volumes[plan.source]
                slices = render_series(plan, vol)
                for i, pixels in enumerate(slices):
                    _write_bytes(root / plan.rel_dir / f"{i}.jpg", _jpeg_bytes(pixels, JPEG_QUALITY_SLICE))
                out.slices += len(slices)
                out.series += 1
                rendered.append(slices)
                if plan.export_nifti:
                    _write_bytes(root / plan.rel_nifti, nifti_bytes(plan, vol))
                    out.volumes += 1
            depth = 1 if case.is_2d else int(rng.integers(NPY_DEPTH[0], NPY_DEPTH[1] + 1))
            arr = npy_array(rendered, depth)
            if case is nan_case and image_no == 1:
                arr = arr.astype(np.float32)
                zc = arr.shape[-1] // 2
                arr[:, :, 40:72, 40:72, zc] = np.nan
                out.nan_npy = case.rel_npy(image_no)
            _write_bytes(root / case.rel_npy(image_no), _npy_bytes(arr))
            out.npy += 1
    return out


def case_json(case: CasePlan) -> dict:
    """A case in RadFM's crawl format ("1": [{"modality": ...}], "1详情": caption, ...)."""
    doc: dict[str, object] = {}
    for image_no, series_list in sorted(case.images.items()):
        doc[str(image_no)] = [{"modality": series_list[0].name.split("_")[0]}]
        doc[f"{image_no}详情"] = image_caption(case, image_no)
    doc["title"] = case.topic  # RadFM counts image numbers as (len(keys) - 1) // 2
    return doc


def image_caption(case: CasePlan, image_no: int) -> str:
    seqs = list(dict.fromkeys(SOURCE_SEQUENCE[s.source] for s in case.images[image_no]))
    if case.is_2d:
        return "Axial CT, " + seqs[0] + ". " + TOPICS[case.topic]["finding"]
    return "Axial " + " and ".join(seqs) + " images. " + TOPICS[case.topic]["finding"]


# --------------------------------------------------------------------------- Rad3D RadFM files


def _radfm(rel: str) -> str:
    return RAD3D_RADFM_PREFIX + rel


def _sample_reference(case: CasePlan, image_no: int, style: int) -> str | list[str]:
    """The ``npy_path`` of one sample, in one of RadFM's path styles."""
    series = case.images[image_no]
    if style == 1:
        return _radfm(f"cases/{case.case_id}/{image_no}")  # image folder holding series folders
    if style == 2:
        return [_radfm(s.rel_nifti if s.export_nifti else s.rel_dir) for s in series]
    return _radfm(case.rel_npy(image_no))


def _choose_nan_case(cases: Sequence[CasePlan]) -> CasePlan:
    """The 3D case whose first sample's npy holds NaN (its article entry points at the npy)."""
    return next(c for c in cases if not c.is_2d)


def _samples(cases: Sequence[CasePlan]) -> list[tuple[CasePlan, int]]:
    return [(c, n) for c in cases for n in sorted(c.images)]


def _style(k: int, case: CasePlan, image_no: int, nan_case: CasePlan) -> int:
    if case is nan_case and image_no == 1:
        return 0
    return {0: 0, 1: 1, 2: 2, 3: 0}[k % 4]


def article_entries(cases: Sequence[CasePlan], nan_case: CasePlan) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {"train": [], "test": []}
    for k, (case, image_no) in enumerate(_samples(cases)):
        topic = TOPICS[case.topic]
        out[case.split].append(
            {
                "pre": case.presentation,
                "pat": f"{case.age} years old, {case.sex}",
                "npy_path": _sample_reference(case, image_no, _style(k, case, image_no, nan_case)),
                "finding": image_caption(case, image_no),
                "impression": topic["impression"],
                "radiographic_features": list(topic["features"]),
                "articles": [topic["article"]],
                "title": case.topic,
            }
        )
    return out


def vqa_rows(cases: Sequence[CasePlan], rng: np.random.Generator) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {"train": [], "test": []}
    for case in cases:
        path = _radfm(case.rel_npy(1))
        first = case.images[1][0]
        modality = first.name.split("_")[0]
        qa = [
            ("What is the most likely diagnosis?", case.topic),
            ("Which imaging modality is shown?", modality),
        ]
        if modality == "MRI":
            qa.append(("Which sequence is shown?", SOURCE_SEQUENCE[first.source]))
        else:
            qa.append(("In which plane is the image acquired?", "Axial"))
        n = int(rng.integers(2, 4))
        out[case.split].extend([path, q, a] for q, a in qa[:n])
    return out


def modality_rows(cases: Sequence[CasePlan]) -> dict[str, list[list[str]]]:
    out: dict[str, list[list[str]]] = {"train": [], "test": []}
    for case in cases:
        for _, series_list in sorted(case.images.items()):
            for s in series_list:
                modality = s.name.split("_")[0]
                out[case.split].append([_radfm(s.rel_dir), modality])
                if s.export_nifti:
                    out[case.split].append([_radfm(s.rel_nifti), modality])
    return out


def write_rad3d_radfm(
    root: Path, cases: Sequence[CasePlan], rng: np.random.Generator, nan_case: CasePlan, planted: list[dict]
) -> dict[str, int]:
    rows: dict[str, int] = {}
    for split, entries in article_entries(cases, nan_case).items():
        name = f"radfm/radiology_article_npy_{split}.json"
        _write_json(root / name, entries)
        rows[name] = len(entries)

    vqa = vqa_rows(cases, rng)
    bad_at = int(rng.integers(0, len(vqa["train"]) + 1))
    vqa["train"].insert(bad_at, [vqa["train"][max(bad_at - 1, 0)][0], "", "Axial"])
    planted.append(_fault("rad3d", "radfm/radiology_vqa_train.csv", "bad_row", row=bad_at))
    for split, table in vqa.items():
        name = f"radfm/radiology_vqa_{split}.csv"
        rows[name] = _write_csv(root / name, ["image_path", "question", "answer"], table)

    for split, table in modality_rows(cases).items():
        name = f"radfm/radio_modality_{split}.csv"
        rows[name] = _write_csv(root / name, ["image_path", "answer"], table)

    _write_json(root / "radfm/modality_set.json", {"modality": MODALITY_SET})
    _write_json(root / "radfm/articles_resave.json", {t: TOPICS[t]["article"] for t in sorted(TOPICS)})
    rows["radfm/articles_resave.json"] = len(TOPICS)
    return rows


def build_rad3d(root: Path, rng: np.random.Generator, n_cases: int) -> tuple[dict, list[dict]]:
    volumes = load_volumes()
    cases = plan_rad3d(rng, n_cases, volumes)
    nan_case = _choose_nan_case(cases)
    planted: list[dict] = []
    outputs = write_rad3d_images(root, cases, volumes, rng, nan_case)
    for case in cases:
        _write_json(root / "cases" / f"{case.case_id}.json", case_json(case))
    planted.append(_fault("rad3d", outputs.nan_npy, "nan_volume"))
    rows = write_rad3d_radfm(root, cases, rng, nan_case, planted)
    info = {
        "root": str(root),
        "cases": len(cases),
        "image_numbers": sum(len(c.images) for c in cases),
        "series": outputs.series,
        "slices": outputs.slices,
        "volumes": outputs.volumes,
        "npy": outputs.npy,
        "splits": {s: sum(c.split == s for c in cases) for s in ("train", "test")},
        "rows": rows,
        "radfm_prefix": RAD3D_RADFM_PREFIX,
        "titles": {str(c.case_id): c.topic for c in cases},
    }
    return info, planted


# --------------------------------------------------------------------------- entry points


def _prepare_out(out: Path) -> None:
    """Create ``out``; replace a previous demo tree, refuse to touch anything else."""
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER
    for name in (MIMIC_DIR, RAD3D_DIR):
        target = out / name
        if target.exists():
            if not marker.is_file():
                raise FileExistsError(f"{target} exists and is not a demo tree (no {MARKER}); not overwriting")
            shutil.rmtree(target)
    _write_text(
        marker,
        "Demo raw tree written by `python -m pipelines.demo`.\n"
        f"{MIMIC_DIR}/  MIMIC-CXR-JPG native layout + RadFM split csvs (radfm/), prefix {MIMIC_RADFM_PREFIX}\n"
        f"{RAD3D_DIR}/  Radiopaedia (Rad3D) native layout + RadFM files (radfm/), prefix {RAD3D_RADFM_PREFIX}\n",
    )


def build_demo(
    out: Path,
    seed: int = 0,
    mimic_studies: int = DEFAULT_MIMIC_STUDIES,
    rad3d_cases: int = DEFAULT_RAD3D_CASES,
    image_size: int | tuple[int, int] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Write the demo tree under ``out`` and return counts, paths and planted faults.

    ``image_size``: None for varied ~1024-1400 px chest JPEGs, an int for the long side
    (e.g. 3000), or ``(width, height)`` for an exact size (e.g. ``(2544, 3056)``).

    Returns ``{"out", "seed", "mimic": {...}, "rad3d": {...}, "planted": [...]}``. Each
    dataset dict holds its ``root``, ``radfm_prefix``, counts (studies/images/...,
    cases/series/slices/volumes/npy) and ``rows``: data rows (or entries) per written
    table, keyed by path relative to the dataset root. ``mimic["report_variants"]``
    lists the impression-only and section-less reports. Each planted fault is
    ``{"dataset", "file" (relative to <out>/<dataset>), "kind"}`` plus ``"row"`` (0-based
    data row) for ``bad_row``.
    """
    if mimic_studies < MIN_MIMIC_STUDIES:
        raise ValueError(f"mimic_studies must be >= {MIN_MIMIC_STUDIES} (planted faults need room)")
    if rad3d_cases < MIN_RAD3D_CASES:
        raise ValueError(f"rad3d_cases must be >= {MIN_RAD3D_CASES}")
    check_sources()  # before touching ``out``
    out = Path(out)
    _prepare_out(out)
    say = log or (lambda _msg: None)

    say(f"mimic: {mimic_studies} studies ...")
    mimic, planted_m = build_mimic(
        out / MIMIC_DIR, np.random.default_rng([seed, 1]), mimic_studies, image_size
    )
    say(f"rad3d: {rad3d_cases} cases ...")
    rad3d, planted_r = build_rad3d(out / RAD3D_DIR, np.random.default_rng([seed, 2]), rad3d_cases)
    return {"out": str(out), "seed": seed, "mimic": mimic, "rad3d": rad3d, "planted": planted_m + planted_r}


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/raw"), help="output root (default data/raw)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mimic-studies", type=int, default=DEFAULT_MIMIC_STUDIES)
    parser.add_argument("--rad3d-cases", type=int, default=DEFAULT_RAD3D_CASES)
    parser.add_argument("--image-size", type=int, default=None,
                        help="long side of the chest JPEGs (default: varied 1024-1400)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    try:
        info = build_demo(args.out, args.seed, args.mimic_studies, args.rad3d_cases, args.image_size, log=print)
    except (DemoSourceError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    m, r = info["mimic"], info["rad3d"]
    size_mb = _tree_bytes(args.out) / 1e6
    print(f"demo raw tree: {args.out.resolve()} ({size_mb:.1f} MB, {seconds:.1f} s)")
    print(
        f"  mimic: {m['subjects']} subjects, {m['studies']} studies, {m['images']} images, "
        f"{m['reports']} reports, radfm rows {sum(v for k, v in m['rows'].items() if k.startswith('radfm/'))}"
    )
    print(
        f"  rad3d: {r['cases']} cases, {r['series']} series ({r['slices']} slices), "
        f"{r['volumes']} NIfTI, {r['npy']} npy, radfm rows "
        f"{sum(v for k, v in r['rows'].items() if k.endswith(('.csv', '_train.json', '_test.json')))}"
    )
    kinds = ", ".join(sorted({p["kind"] for p in info["planted"]}))
    print(f"  planted faults: {len(info['planted'])} ({kinds})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
