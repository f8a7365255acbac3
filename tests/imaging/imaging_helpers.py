"""Helpers shared by the imaging tests (real images: pydicom-data DICOMs, nilearn's MNI152 template, nibabel's
examples)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.config import ImageConfig

CFG = ImageConfig()


def small(**sizes: int) -> ImageConfig:
    return dataclasses.replace(CFG, **sizes)


def dicom_file(name: str) -> Path:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    assert path is not None, f"pydicom-data lacks {name}"
    return Path(path)


def save_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def pil_resize(array: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(array).resize((size, size), Image.Resampling.BICUBIC))
