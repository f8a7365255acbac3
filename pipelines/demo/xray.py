"""What the X-ray classification fixtures share (VinDr-*, ChestX-ray14, CheXpert, COVIDx, NLM-TB, Object-CXR, OpenI,
RSNA, SIIM): radiographs synthesised from the real chest CR, written as the dataset ships them (DICOM with realistic
tags and several transfer syntaxes, PNG, JPEG), labels spread over the splits, RadFM's classification files, and a
:class:`XrayFixture` base that writes a planned list of :class:`XrayItem`.

Every image is derived from pydicom-data's ``RG1_UNCI.dcm`` (a real CR chest PA): chest views are re-cropped, rotated
and jittered as for MIMIC (:mod:`pipelines.demo.synth`); a spine view is the vertical strip of the thoracic spine;
a mammogram view is a lung-field crop under a breast-shaped mask (chest wall on the side of its laterality, the
pectoral muscle in the MLO's corner). Sizes are scaled down from the real ones to keep the demo small.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.demo.content import CHEST_CR, load_chest_base
from pipelines.demo.faults import fault, truncated
from pipelines.demo.fixture import DemoOptions, Fixture
from pipelines.demo.synth import ChestParams, draw_chest_params, render_chest
from pipelines.demo.writers import dicom_bytes, jpeg_bytes, png_bytes, write_bytes, write_csv
from pipelines.sources.diagnosis import RadfmFiles, hashed_split

#: Where RadFM's files say the datasets lived on the authors' cluster (does not exist locally).
RADFM_ROOT = "/gpfs/home/cs/leijiayu/data/"
#: Organisation root of the UIDs the fixtures make up (pydicom's, for examples and tests).
UID_ROOT = "1.2.826.0.1.3680043.8.498."

# --------------------------------------------------------------------------------------------- images


@lru_cache(maxsize=1)
def xray_base() -> Image.Image:
    """The real chest CR at half resolution (978 x 921): every output here is smaller, and rendering is 4x faster."""
    return load_chest_base().reduce(2)


CHEST_VIEWS = ("PA", "AP", "LATERAL")
MAMMO_VIEWS = ("CC", "MLO")


def draw_view(rng: np.random.Generator, view: str, long_side: int) -> ChestParams:
    """Everything random about one radiograph of ``view`` (a chest view, ``SPINE``, ``CC`` or ``MLO``)."""
    src_w, src_h = xray_base().size
    if view in CHEST_VIEWS:
        return draw_chest_params(rng, (src_w, src_h), view == "LATERAL", long_side)
    p = draw_chest_params(rng, (src_w, src_h), False, long_side)
    if view == "SPINE":  # the thoracic spine: a tall strip around the midline
        crop_w, crop_h = int(src_w * rng.uniform(0.26, 0.34)), int(src_h * rng.uniform(0.86, 0.98))
        cx, cy = src_w * rng.uniform(0.48, 0.52), src_h / 2
    elif view in MAMMO_VIEWS:  # a lung field's texture, portrait
        crop_w = int(src_w * rng.uniform(0.30, 0.36))
        crop_h = int(crop_w * rng.uniform(1.22, 1.32))
        cx, cy = src_w * (rng.uniform(0.26, 0.32) if rng.random() < 0.5 else rng.uniform(0.68, 0.74)), src_h * rng.uniform(0.45, 0.55)
    else:
        raise ValueError(f"unknown view {view!r}")
    scale = long_side / max(crop_w, crop_h)
    return replace(p, crop_w=crop_w, crop_h=crop_h, cx=float(cx), cy=float(cy), out_w=int(round(crop_w * scale)),
                   out_h=int(round(crop_h * scale)))


def render_view(params: ChestParams, view: str, laterality: str = "") -> np.ndarray:
    """The displayed uint8 image of a view drawn by :func:`draw_view`."""
    pixels = render_chest(xray_base(), params)
    if view in MAMMO_VIEWS:
        pixels = breast(pixels, chest_wall_right=laterality == "R", mlo=view == "MLO")
    return pixels


def breast(pixels: np.ndarray, *, chest_wall_right: bool, mlo: bool) -> np.ndarray:
    """Tissue under a half-ellipse hugging the chest wall, black air around it, the pectoral muscle in an MLO."""
    h, w = pixels.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    depth = ((w - 1 - xx) if chest_wall_right else xx) / w  # 0 at the chest wall
    r = np.sqrt((depth / 0.86) ** 2 + ((yy - h * 0.5) / (h * 0.47)) ** 2)
    mask = 1.0 / (1.0 + np.exp((r - 1.0) / 0.025))
    tissue = 60.0 + 0.75 * pixels.astype(np.float32)
    if mlo:
        muscle = depth < 0.32 * np.clip(1.0 - yy / (h * 0.55), 0.0, 1.0)
        tissue = np.where(muscle, 0.5 * tissue + 110.0, tissue)
    return np.clip(np.rint(tissue * mask), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------- ids and labels


def hex_id(rng: np.random.Generator, n: int = 32) -> str:
    return "".join(f"{int(v):x}" for v in rng.integers(0, 16, n))


def dicom_uid(rng: np.random.Generator) -> str:
    return UID_ROOT + ".".join(str(int(v)) for v in rng.integers(1, 2**31, 3))


def mangled(rng: np.random.Generator, text: str) -> str:
    """``text`` with every digit replaced by a random one: an id of the same shape that (almost surely) names nothing."""
    return "".join(str(int(rng.integers(10))) if ch.isdigit() else ch for ch in text)


def assign_findings(rng: np.random.Generator, n: int, findings: Sequence[str], *, normal_share: float = 0.3,
                    second: float = 0.35) -> list[tuple[str, ...]]:
    """Findings of ``n`` images: about ``normal_share`` normal, the others one finding taken in turn from
    ``findings`` (so each occurs) and sometimes a second one; names in ``findings`` order."""
    out, turn = [], 0
    for _ in range(n):
        if rng.random() < normal_share:
            out.append(())
            continue
        names = {findings[turn % len(findings)]}
        turn += 1
        if len(findings) > 1 and rng.random() < second:
            names.add(findings[int(rng.integers(len(findings)))])
        out.append(tuple(f for f in findings if f in names))
    return out


def split_findings(rng: np.random.Generator, size: int, findings: Sequence[str], test_findings: Sequence[str], *,
                   test_normal_share: float = 0.3) -> list[tuple[str, tuple[str, ...]]]:
    """``[(split, findings)]`` for a dataset with an official split: the last quarter (at least 3) test, whose labels
    draw from ``test_findings`` (:func:`assign_findings`), the rest train from ``findings``."""
    n_test = max(3, size // 4)
    labels = assign_findings(rng, size - n_test, findings) + \
        assign_findings(rng, n_test, test_findings, normal_share=test_normal_share)
    return [("train" if k < size - n_test else "test", f) for k, f in enumerate(labels)]


def split_keys(rng: np.random.Generator, dataset: str, n: int, make_key, test_share: float = 0.25) -> list[tuple[str, str]]:
    """``n`` distinct keys with the split the source's :func:`~pipelines.sources.diagnosis.hashed_split` gives them,
    drawn until about ``test_share`` are test (the demo needs both splits): ``[(key, split)]``."""
    want_test = max(2, round(n * test_share))
    keys: list[tuple[str, str]] = []
    seen: set[str] = set()
    counts = Counter()
    while len(keys) < n:
        key = make_key(rng)
        split = hashed_split(dataset, key)
        quota = want_test if split == "test" else n - want_test
        if key in seen or counts[split] >= quota:
            continue
        seen.add(key)
        counts[split] += 1
        keys.append((key, split))
    return keys


# --------------------------------------------------------------------------------------------- items and the base


@dataclass(frozen=True)
class ImageFormat:
    """How a dataset ships an image: ``dicom`` (with modality, syntax, photometric, bits), ``png`` or ``jpeg``."""

    kind: str
    modality: str = "DX"
    syntax: str = "explicit"
    photometric: str = "MONOCHROME2"
    bits: int = 12
    quality: int = 90


@dataclass
class XrayItem:
    """One image of a classification fixture (and the table rows that describe it)."""

    key: str  # its id in the dataset's tables
    rel: str  # its file under the dataset root
    split: str
    findings: tuple[str, ...]
    view: str  # PA / AP / LATERAL / SPINE / CC / MLO
    fmt: ImageFormat
    params: ChestParams
    laterality: str = ""
    tags: dict = field(default_factory=dict)  # DICOM tags beyond the pixel description
    extra: dict = field(default_factory=dict)  # values only the dataset's tables hold
    fault: str | None = None  # corrupt_file / empty_file / missing_file


def image_bytes(item: XrayItem) -> bytes:
    pixels = render_view(item.params, item.view, item.laterality)
    fmt = item.fmt
    if fmt.kind == "png":
        return png_bytes(pixels)
    if fmt.kind == "jpeg":
        return jpeg_bytes(pixels, fmt.quality)
    top = (1 << fmt.bits) - 1
    window = None if fmt.syntax == "jpeg" else (top * 0.5, top * 0.96)
    return dicom_bytes(pixels, modality=fmt.modality, syntax=fmt.syntax, photometric=fmt.photometric,
                       bits_stored=fmt.bits, window=window, tags=item.tags)


def write_items(root: Path, dataset: str, items: Sequence[XrayItem]) -> list[dict]:
    """Write every item's image (a planted fault instead where it has one) and return the planted faults."""
    planted = []
    for item in items:
        if item.fault is not None:
            planted.append(fault(dataset, item.rel, item.fault))
        if item.fault == "missing_file":
            continue
        data = b"" if item.fault == "empty_file" else image_bytes(item)
        write_bytes(root / item.rel, truncated(data) if item.fault == "corrupt_file" else data)
    return planted


def radiograph_tags(rng: np.random.Generator, item_view: str, *, body_part: str = "CHEST", manufacturer: str = "",
                    study: str | None = None, series: str | None = None, age: int | None = None, sex: str = "") -> dict:
    """The identifying and descriptive tags of a de-identified radiograph (UIDs from ``rng``)."""
    age = int(rng.integers(18, 88)) if age is None else age
    tags = {
        "StudyInstanceUID": study or dicom_uid(rng),
        "SeriesInstanceUID": series or dicom_uid(rng),
        "SOPInstanceUID": dicom_uid(rng),
        "PatientSex": sex or ("F" if rng.random() < 0.5 else "M"),
        "PatientAge": f"{age:03d}Y",
        "BodyPartExamined": body_part,
        "PixelSpacing": [f"{rng.uniform(0.14, 0.2):.3f}"] * 2,
    }
    if item_view in CHEST_VIEWS:
        tags["ViewPosition"] = "LL" if item_view == "LATERAL" else item_view
    if manufacturer:
        tags["Manufacturer"] = manufacturer
    return tags


class XrayFixture(Fixture):
    """A classification fixture: ``plan`` the items, ``write_tables`` the dataset's label files, ``radfm_path`` maps an
    item to RadFM's cluster path; the base writes the images, the faults and RadFM's files."""

    requires = (CHEST_CR,)
    shard_args = ("--samples-per-shard-2d", "16")
    #: RadFM's files of the dataset family, its normal label and finding names (from the source module)
    radfm_files: RadfmFiles
    normal: str
    label_names: tuple[str, ...]

    @abstractmethod
    def plan(self, rng: np.random.Generator, size: int) -> list[XrayItem]:
        """Every image: ids, file, split, findings, view, format, synthesis parameters, fault."""

    @abstractmethod
    def write_tables(self, root: Path, items: list[XrayItem], rng: np.random.Generator, planted: list[dict]) -> dict[str, int]:
        """The dataset's own label/split files (data rows per file, keyed by path under ``root``); append the faults
        planted in them to ``planted``."""

    @abstractmethod
    def radfm_path(self, item: XrayItem) -> str:
        """The absolute cluster path RadFM's files give the item."""

    def missing_key(self, rng: np.random.Generator, item: XrayItem) -> str:
        """A key of the item's shape that is not in the download (RadFM's row for an image the user lacks)."""
        return mangled(rng, item.key)

    def write(self, root: Path, rng: np.random.Generator, size: int, options: DemoOptions) -> tuple[dict, list[dict]]:
        items = self.plan(rng, size)
        planted = write_items(root, self.name, items)
        rows = self.write_tables(root, items, rng, planted)
        radfm_rows, missing = write_radfm_files(root, self.name, self.radfm_files, items, self.radfm_path, self.normal,
                                                self.label_names, rng, self.missing_key)
        rows.update(radfm_rows)
        info = {
            "root": str(root),
            self.size_unit: size,
            "images": len(items),
            "splits": dict(sorted(Counter(i.split for i in items).items())),
            "rows": rows,
            "radfm_missing": missing,
            "labels": {i.rel: list(i.findings) for i in items},
        }
        return info, planted


# --------------------------------------------------------------------------------------------- RadFM's files

#: A few cluster paths of each chest dataset, shaped as its rows in RadFM's shared chest files: every chest fixture
#: mixes the other datasets' rows into its copy, which its source must leave alone.
CHEST_ROWS: Mapping[str, tuple[str, ...]] = {
    "vindr_cxr": ("VinDr-CXR/process/train/5a8b3f0e2c7d41b6a9e0f1d2c3b4a596.png",
                  "VinDr-CXR/process/test/0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f.png"),
    "nih_cxr14": ("ChestXray14/images_004/images/00007551_003.png", "ChestXray14/images_011/images/00027213_000.png"),
    "chexpert": ("CheXpert-v1.0-small/train/patient04731/study2/view1_frontal.jpg",
                 "CheXpert-v1.0-small/valid/patient64602/study1/view1_frontal.jpg"),
    "covid_cxr2": ("COVIDx-CXR2/train/MIDRC-RICORD-1C-419639-003251-46647-0.png", "COVIDx-CXR2/test/covid-19-pneumonia-28.png"),
    "nlm_tb": ("NLM-TB/ChinaSet_AllFiles/CXR_png/CHNCXR_0391_1.png", "NLM-TB/MontgomerySet/CXR_png/MCUCXR_0104_0.png"),
    "object_cxr": ("object-CXR/train/04321.jpg", "object-CXR/dev/08765.jpg"),
    "openi": ("OpenI/images/images_normalized/3021_IM-1412-1001.dcm.png", "OpenI/images/images_normalized/147_IM-0301-2001.dcm.png"),
    "rsna_pneumonia": ("RSNA-Pneumonia/stage_2_train_images/0004cfab-14fd-4e49-80ba-63a80b6bddd6.png",
                       "RSNA-Pneumonia/stage_2_train_images/00436515-870c-4b36-a041-de91049b9ab4.png"),
    "siim_acr": ("SIIM-ACR/dicom-images-train/1.2.276.0.7230010.3.1.2.8323329.5597.1517875188.959090/"
                 "1.2.276.0.7230010.3.1.3.8323329.5597.1517875188.959089/1.2.276.0.7230010.3.1.4.8323329.5597.1517875188.959091.dcm",),
}


def radfm_rows(items: Sequence[XrayItem], path_of, normal: str, label_names: Sequence[str], rng: np.random.Generator
               ) -> tuple[dict[str, list[list]], dict[str, list[list]]]:
    """RadFM-style rows of the items: the open file (``image_path,label``: the finding names or the normal label) and
    the balance file (``image_path,disease,label``: one 1 row per finding present, one 0 row for a finding absent)."""
    open_rows: dict[str, list[list]] = {"train": [], "test": []}
    yes_no: dict[str, list[list]] = {"train": [], "test": []}
    for item in items:
        split = "test" if item.split == "test" else "train"
        path = path_of(item)
        open_rows[split].append([path, ", ".join(item.findings) or normal])
        for finding in item.findings:
            yes_no[split].append([path, finding, 1])
        absent = [n for n in label_names if n not in item.findings]
        if absent:
            yes_no[split].append([path, absent[int(rng.integers(len(absent)))], 0])
    return open_rows, yes_no


def write_radfm_files(root: Path, dataset: str, files: RadfmFiles, items: Sequence[XrayItem], path_of, normal: str,
                      label_names: Sequence[str], rng: np.random.Generator, missing_key) -> tuple[dict[str, int], str]:
    """RadFM's open and balance files for ``items`` under ``root/radfm``, with one train row whose image is not part
    of the download and, in the shared chest files, rows of the other chest datasets. Returns the rows per file and
    the missing image's cluster path."""
    usable = [i for i in items if i.fault is None]
    open_rows, yes_no = radfm_rows(usable, path_of, normal, label_names, rng)
    host = next(i for i in usable if i.split != "test")
    other = missing_key(rng, host)
    missing = path_of(replace(host, key=other, rel=host.rel.replace(host.key, other)))
    open_rows["train"].insert(int(rng.integers(0, len(open_rows["train"]) + 1)), [missing, normal])
    if files.shared:
        for other, paths in sorted(CHEST_ROWS.items()):
            if other == dataset:
                continue
            for k, path in enumerate(paths):
                split = "test" if k % 2 else "train"
                target = open_rows[split] if rng.random() < 0.5 else yes_no[split]
                row = [RADFM_ROOT + path, "Pneumonia"] if target is open_rows[split] else [RADFM_ROOT + path, "Pneumonia", 0]
                target.insert(int(rng.integers(0, len(target) + 1)), row)
    counts = {}
    for split, name in files.open.items():
        counts[f"radfm/{name}"] = write_csv(root / "radfm" / name, ["image_path", "label"], open_rows[split])
    for split, name in files.yes_no.items():
        counts[f"radfm/{name}"] = write_csv(root / "radfm" / name, ["image_path", "disease", "label"], yes_no[split])
    return counts, missing
