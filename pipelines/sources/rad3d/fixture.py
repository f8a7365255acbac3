"""The Rad3D (Radiopaedia) demo fixture: cases in the crawl layout (a case JSON, one folder of JPEG slices per
series), NIfTI copies of some series, RadFM's processed ``.npy`` files, and RadFM's article / VQA / modality
files referring to all of them in RadFM's path styles. Volumes are cut from real MRI and CT volumes; the case texts
(``topics.json``) are short hand-written summaries of textbook findings.

Planted faults: an ``.npy`` holding NaN (the article entry points at it), a VQA row with an empty question, an
image number in a case JSON whose folder is missing (native mode).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.demo.content import VOLUME_FILES, Volume, load_volumes
from pipelines.demo.faults import fault
from pipelines.demo.fixture import DemoOptions, Fixture
from pipelines.demo.synth import SliceCrop, distinct_ints, draw_slice_crop, nifti_bytes, render_slices
from pipelines.demo.writers import jpeg_bytes, npy_bytes, write_bytes, write_csv, write_json

#: Prefix of the image paths in RadFM's Rad3D files (does not exist locally).
RADFM_PREFIX = "/mnt/petrelfs/share_data/radiopaedia/"
JPEG_QUALITY = 90
DEFAULT_CASES = 6
MIN_CASES = 3
#: In-plane size (square) and depth range of the RadFM-processed npy volumes.
NPY_SIZE = 128
NPY_DEPTH = (8, 24)

#: Hand-written, neutral summaries by title (diagnosis): presentations, finding, impression, radiographic features
#: and an article for the titles the cases use; an article only for the others (negatives).
TOPICS: dict[str, dict] = json.loads(resources.files(__package__).joinpath("topics.json").read_text("utf-8"))

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


# --------------------------------------------------------------------------- planning


@dataclass
class SeriesPlan:
    case_id: int
    image_no: int
    name: str  # e.g. MRI_0
    source: str
    crop: SliceCrop
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
    return SeriesPlan(case_id=case_id, image_no=image_no, name=name, source=vol.name, crop=draw_slice_crop(rng, vol))


def plan_rad3d(rng: np.random.Generator, n_cases: int, volumes: dict[str, Volume]) -> list[CasePlan]:
    case_ids = sorted(distinct_ints(rng, n_cases, 10_000, 99_999))
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


# --------------------------------------------------------------------------- rendering


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
                slices = render_slices(plan.crop, vol)
                for i, pixels in enumerate(slices):
                    write_bytes(root / plan.rel_dir / f"{i}.jpg", jpeg_bytes(pixels, JPEG_QUALITY))
                out.slices += len(slices)
                out.series += 1
                rendered.append(slices)
                if plan.export_nifti:
                    write_bytes(root / plan.rel_nifti, nifti_bytes(plan.crop, vol))
                    out.volumes += 1
            depth = 1 if case.is_2d else int(rng.integers(NPY_DEPTH[0], NPY_DEPTH[1] + 1))
            arr = npy_array(rendered, depth)
            if case is nan_case and image_no == 1:
                arr = arr.astype(np.float32)
                zc = arr.shape[-1] // 2
                arr[:, :, 40:72, 40:72, zc] = np.nan
                out.nan_npy = case.rel_npy(image_no)
            write_bytes(root / case.rel_npy(image_no), npy_bytes(arr))
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


# --------------------------------------------------------------------------- RadFM files


def _radfm(rel: str) -> str:
    return RADFM_PREFIX + rel


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
        write_json(root / name, entries)
        rows[name] = len(entries)

    vqa = vqa_rows(cases, rng)
    bad_at = int(rng.integers(0, len(vqa["train"]) + 1))
    vqa["train"].insert(bad_at, [vqa["train"][max(bad_at - 1, 0)][0], "", "Axial"])
    planted.append(fault("rad3d", "radfm/radiology_vqa_train.csv", "bad_row", row=bad_at))
    for split, table in vqa.items():
        name = f"radfm/radiology_vqa_{split}.csv"
        rows[name] = write_csv(root / name, ["image_path", "question", "answer"], table)

    for split, table in modality_rows(cases).items():
        name = f"radfm/radio_modality_{split}.csv"
        rows[name] = write_csv(root / name, ["image_path", "answer"], table)

    write_json(root / "radfm/modality_set.json", {"modality": MODALITY_SET})
    write_json(root / "radfm/articles_resave.json", {t: TOPICS[t]["article"] for t in sorted(TOPICS)})
    rows["radfm/articles_resave.json"] = len(TOPICS)
    return rows


class Rad3DFixture(Fixture):
    name = "rad3d"
    rng_stream = 2
    size_unit = "cases"
    default_size = DEFAULT_CASES
    min_size = MIN_CASES
    description = f"Radiopaedia (Rad3D) native layout + RadFM files (radfm/), prefix {RADFM_PREFIX}"
    requires = VOLUME_FILES
    shard_args = ("--samples-per-shard-3d", "6")

    def write(self, root: Path, rng: np.random.Generator, size: int, options: DemoOptions) -> tuple[dict, list[dict]]:
        volumes = load_volumes()
        cases = plan_rad3d(rng, size, volumes)
        nan_case = _choose_nan_case(cases)
        planted: list[dict] = []
        outputs = write_rad3d_images(root, cases, volumes, rng, nan_case)
        for case in cases:
            doc = case_json(case)
            if case is cases[-1]:  # an image number the crawl lists but whose folder is not in the download
                doc = {**doc, "9": [{"modality": "CT"}], f"9{'详情'}": "Axial CT, bone window."}
                planted.append(fault("rad3d", f"cases/{case.case_id}/9", "missing_file", mode="native"))
            write_json(root / "cases" / f"{case.case_id}.json", doc)
        planted.append(fault("rad3d", outputs.nan_npy, "nan_volume"))
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
            "radfm_prefix": RADFM_PREFIX,
            "titles": {str(c.case_id): c.topic for c in cases},
        }
        return info, planted


FIXTURE = Rad3DFixture()
