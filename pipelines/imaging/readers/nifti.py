"""NIfTI-1 and NIfTI-2 (``.nii``, ``.nii.gz``): volumes only.

Volumes are reoriented to RAS+ and their axial slices shown in radiological convention (row 0 anterior, column 0
patient right), which is also how an axial DICOM slice is stored; slices run inferior -> superior. 4D+ files give
their first volume.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from nibabel.orientations import io_orientation

from pipelines.config import ImageConfig
from pipelines.imaging.errors import UndecodableImage, UnsupportedFormat, decoding
from pipelines.imaging.files import check_size
from pipelines.imaging.intensity import Window
from pipelines.imaging.planes import Slices
from pipelines.imaging.readers.base import Reader, Signature


def _radiological_slice(data: Any, ornt: np.ndarray, k: int) -> np.ndarray:
    """Axial slice ``k`` of the RAS+-reoriented volume (as ``nibabel.as_closest_canonical`` would give,
    read without loading the volume) in display convention: canonical ``arr[::-1, ::-1, k].T``."""
    z_axis = int(np.flatnonzero(ornt[:, 0] == 2)[0])
    index: list[int | slice] = [slice(None)] * 3
    index[z_axis] = k if ornt[z_axis, 1] > 0 else data.shape[z_axis] - 1 - k
    plane = np.asarray(data[tuple(index)])
    first, second = (axis for axis in range(3) if axis != z_axis)
    if ornt[first, 0] == 1:  # stored (y, x): make it (x, y)
        plane, first, second = plane.T, second, first
    plane = plane[:: int(ornt[first, 1]), :: int(ornt[second, 1])]  # canonical (x, y) slice
    return plane[::-1, ::-1].T


def nifti_slices(path: Path, cfg: ImageConfig) -> Slices:
    """Axial slices of a NIfTI file, RAS+ canonical, inferior -> superior, at native resolution. 4D+ files give
    their first volume. Uncompressed files are memory-mapped and read slice by slice; ``.nii.gz`` is decompressed
    once (gzip cannot seek). Planes hold the stored (unscaled) values, views where possible; ``scl_slope`` /
    ``scl_inter`` travel as the ``Slices.scale`` (None for stored uint8 without scaling: display values)."""
    with decoding(path, "not a readable NIfTI file"):
        image = nib.load(path)
        affine = image.affine
        shape = tuple(int(n) for n in image.shape)
        dtype = image.get_data_dtype()
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)) or dtype.fields is not None:
        raise UnsupportedFormat(path, f"unsupported NIfTI ({type(image).__name__}, dtype {dtype})")
    spatial = (shape + (1, 1))[:3]
    with decoding(path, "affine has no usable orientation"):
        ornt = io_orientation(affine)
    if np.isnan(ornt).any():
        raise UndecodableImage(path, "affine has no usable orientation")
    z_axis = int(np.flatnonzero(ornt[:, 0] == 2)[0])
    height, width = (spatial[axis] for axis in range(3) if axis != z_axis)
    volumes = int(np.prod(shape[3:], dtype=np.int64))  # all are read from .nii.gz, the first is used
    check_size(path, height, width, spatial[z_axis] * volumes, cfg)
    with decoding(path, "cannot read NIfTI data"):
        proxy = image.dataobj
        data = proxy.get_unscaled() if nib.is_proxy(proxy) else np.asarray(proxy)
        slope, inter = (float(proxy.slope), float(proxy.inter)) if nib.is_proxy(proxy) else (1.0, 0.0)
    data = data.reshape(spatial) if data.ndim < 3 else data[(Ellipsis,) + (0,) * (data.ndim - 3)]
    keep_uint8 = data.dtype == np.uint8 and (slope, inter) == (1.0, 0.0)

    def planes() -> Iterator[np.ndarray]:
        for k in range(spatial[z_axis]):
            with decoding(path, f"cannot read slice {k}"):
                yield _radiological_slice(data, ornt, k)[None]

    return Slices(spatial[z_axis], planes(), scale=None if keep_uint8 else (slope, inter))



class NiftiReader(Reader):
    formats = ("nifti",)
    signatures = (
        Signature("nifti", 344, b"n+1\x00"),
        Signature("nifti", 344, b"ni1\x00"),
        Signature("nifti", 4, b"n+2\x00"),
    )

    def claim(self, head: bytes, name: str) -> str | None:
        return "nifti" if head[:2] == b"\x1f\x8b" and name.lower().endswith(".nii.gz") else None

    def image(self, path: Path, cfg: ImageConfig, colour: bool) -> tuple[np.ndarray, Window | None]:
        raise UnsupportedFormat(path, "NIfTI is a volume format: use load_volume")

    def volume(self, path: Path, cfg: ImageConfig, colour: bool) -> Slices:
        return nifti_slices(path, cfg)
