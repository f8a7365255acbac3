"""Real content for the fixtures, read from files that registry packages carry (never downloaded, never imported):

* chest X-ray pixels: pydicom-data's ``RG1_UNCI.dcm`` (a CR chest PA);
* volumes: nilearn's MNI152 T1 template, nibabel's ``example4d.nii.gz`` and ``anatomical.nii``, pydicom's
  ``CT_small.dcm``;
* report text: torchxrayvision's ``NLMCXR_reports.tgz`` (OpenI, Indiana University chest X-ray reports).

A fixture declares the files it reads (``Fixture.requires``); the demo checks them all before writing anything.
"""

from __future__ import annotations

import importlib.util
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image


class DemoSourceError(RuntimeError):
    """A package that carries the demo's real content is missing."""


@dataclass(frozen=True)
class PackageFile:
    """A data file inside an installed package, found without importing the package."""

    package: str
    path: str

    def locate(self) -> Path:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise DemoSourceError(f"package {self.package!r} is not installed (needed for its data files)")
        path = Path(next(iter(spec.submodule_search_locations))) / self.path
        if not path.is_file():
            raise DemoSourceError(f"{self.package} does not carry {self.path}")
        return path


@dataclass(frozen=True)
class PydicomFile:
    """One of pydicom's test files (pydicom-data)."""

    name: str

    def locate(self) -> Path:
        from pydicom.data import get_testdata_file

        try:
            found = get_testdata_file(self.name)
        except Exception as exc:  # pydicom may try (and fail) to download it
            raise DemoSourceError(f"pydicom test file {self.name} unavailable: {exc}") from exc
        if not found:
            raise DemoSourceError(f"pydicom test file {self.name} unavailable (install pydicom-data)")
        return Path(found)


DataFile = PackageFile | PydicomFile

OPENI_REPORTS = PackageFile("torchxrayvision", "data/NLMCXR_reports.tgz")
MNI_T1 = PackageFile("nilearn", "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz")
EXAMPLE_4D = PackageFile("nibabel", "tests/data/example4d.nii.gz")
ANATOMICAL = PackageFile("nibabel", "tests/data/anatomical.nii")
CHEST_CR = PydicomFile("RG1_UNCI.dcm")
CT_SMALL = PydicomFile("CT_small.dcm")
#: What :func:`load_volumes` reads.
VOLUME_FILES = (MNI_T1, EXAMPLE_4D, ANATOMICAL, CT_SMALL)


def check(files: Iterable[DataFile]) -> None:
    """Raise ``DemoSourceError`` unless every file is installed (reads nothing)."""
    for f in files:
        f.locate()


def collapse(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------- chest radiograph


def load_chest_base() -> Image.Image:
    """RG1_UNCI.dcm (CR chest PA, MONOCHROME1) as an 8-bit image with dark lungs."""
    import pydicom

    ds = pydicom.dcmread(CHEST_CR.locate())
    raw = ds.pixel_array.astype(np.float32)
    lo, hi = np.percentile(raw, [2.0, 98.0])
    x = np.clip((raw - lo) / (hi - lo), 0.0, 1.0)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        x = 1.0 - x
    x = x**1.6  # darken the mid-tones: lung fields read as air
    return Image.fromarray(np.round(x * 255).astype(np.uint8), mode="L")


# --------------------------------------------------------------------------- volumes


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

    mni = nib.load(MNI_T1.locate())
    t1_raw = np.asarray(mni.dataobj)
    t1 = _percentile_unit(t1_raw.astype(np.float32), 0.0, 99.9)
    # A T2-like contrast derived from the T1 template: invert inside the head (CSF bright).
    head = t1_raw > 25
    t2_raw = np.where(head, 255 - t1_raw.astype(np.int16), 0).astype(np.uint8)

    ex4d = nib.load(EXAMPLE_4D.locate())
    epi_raw = np.asarray(ex4d.dataobj)[..., 0]
    anat = nib.load(ANATOMICAL.locate())
    anat_raw = np.asarray(anat.dataobj).astype(np.int16)

    ct = pydicom.dcmread(CT_SMALL.locate())
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


# --------------------------------------------------------------------------- report text


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
        (el.get("Label") or "").upper(): collapse(el.text or "")
        for el in root.iter("AbstractText")
    }
    uid_el = root.find("uId")
    return OpenIReport(
        uid=uid_el.get("id", "") if uid_el is not None else "",
        indication=sections.get("INDICATION", ""),
        comparison=sections.get("COMPARISON", ""),
        findings=sections.get("FINDINGS", ""),
        impression=sections.get("IMPRESSION", ""),
        mesh=tuple(collapse(m.text or "") for m in root.iter("major")),
    )


@lru_cache(maxsize=1)
def _openi_payload(path: str) -> dict[str, bytes]:
    """The XML members of the OpenI archive by name, read once per process (several fixtures draw reports)."""
    with tarfile.open(path, "r:gz") as tf:
        payload: dict[str, bytes] = {}
        for member in tf.getmembers():
            if member.isfile() and member.name.endswith(".xml"):
                fh = tf.extractfile(member)
                if fh is not None:
                    payload[member.name] = fh.read()
    return payload


def load_openi_reports(rng: np.random.Generator, n: int) -> list[OpenIReport]:
    """``n`` distinct OpenI reports having both FINDINGS and IMPRESSION, seeded choice.

    Members are only read (never extracted to disk).
    """
    payload = _openi_payload(str(OPENI_REPORTS.locate()))
    names = sorted(payload)
    picked: list[OpenIReport] = []
    for idx in rng.permutation(len(names)):
        report = _parse_openi(payload[names[int(idx)]])
        if len(report.findings) >= 40 and len(report.impression) >= 10:
            picked.append(report)
            if len(picked) == n:
                return picked
    raise DemoSourceError(f"only {len(picked)} OpenI reports with FINDINGS and IMPRESSION")
