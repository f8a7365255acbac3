"""The NIfTI reader: RAS+ reorientation, radiological display, 4D files, a full-size template."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from imaging_helpers import CFG, small

from pipelines.imaging import (
    UndecodableImage,
    load_volume,
    to_uint8,
)


def test_nifti_is_reoriented_to_ras_and_shown_radiologically(tmp_path: Path) -> None:
    cfg = small(size_3d=8)
    rng = np.random.default_rng(0)
    ras = rng.integers(0, 100, (8, 8, 5)).astype(np.int16)
    ras[7, 7, 0] = 1000  # patient right, anterior, inferior
    nx, ny, nz = ras.shape
    lps_affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    lps_affine[:2, 3] = [nx - 1, ny - 1]
    zyx_affine = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [-1, 0, 0, nz - 1], [0, 0, 0, 1]], float)
    variants = {
        "ras": nib.Nifti1Image(ras, np.eye(4)),
        "lps": nib.Nifti1Image(ras[::-1, ::-1, :].copy(), lps_affine),
        "zyx": nib.Nifti1Image(ras.transpose(2, 1, 0)[::-1].copy(), zyx_affine),
    }
    volumes = {}
    for name, image in variants.items():
        nib.save(image, tmp_path / f"{name}.nii.gz")
        volumes[name] = load_volume(tmp_path / f"{name}.nii.gz", cfg)
    assert np.array_equal(volumes["ras"], volumes["lps"])
    assert np.array_equal(volumes["ras"], volumes["zyx"])

    canonical = nib.as_closest_canonical(variants["zyx"]).get_fdata()
    display = np.stack([canonical[::-1, ::-1, k].T for k in range(nz)], axis=-1)
    assert np.array_equal(volumes["zyx"], to_uint8(display[None].astype(np.float32), cfg))
    assert volumes["ras"][0, 0, 0, 0] == 255  # row 0 anterior, column 0 patient right, slice 0 inferior

    nib.save(nib.Nifti1Image(ras, np.eye(4)), tmp_path / "plain.nii")  # uncompressed: memory-mapped
    assert np.array_equal(load_volume(tmp_path / "plain.nii", cfg), volumes["ras"])


def test_nifti_4d_uses_the_first_volume(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    first = rng.random((8, 8, 3)).astype(np.float32)
    series = np.stack([first, first[::-1]], axis=-1)
    nib.save(nib.Nifti1Image(series, np.eye(4)), tmp_path / "4d.nii.gz")
    nib.save(nib.Nifti1Image(first, np.eye(4)), tmp_path / "3d.nii.gz")
    cfg = small(size_3d=8)
    assert np.array_equal(load_volume(tmp_path / "4d.nii.gz", cfg), load_volume(tmp_path / "3d.nii.gz", cfg))


def test_mni_template_loads_at_full_size() -> None:
    (package,) = importlib.util.find_spec("nilearn").submodule_search_locations
    path = Path(package) / "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    volume = load_volume(path, CFG)
    assert volume.shape == (1, CFG.size_3d, CFG.size_3d, 189) and volume.dtype == np.uint8
    middle = volume[0, :, :, 90]
    assert middle[200:312, 200:312].mean() > 4 * middle[:40, :40].mean()  # brain vs background corner



def test_nifti_with_an_unusable_header_value_is_undecodable(tmp_path: Path) -> None:
    """nibabel refuses an infinite ``scl_inter`` with its own ``HeaderDataError``: a bad file, reported as one."""
    img = nib.Nifti1Image(np.arange(8 * 8 * 3, dtype=np.int16).reshape(8, 8, 3), np.eye(4))
    img.header["scl_slope"], img.header["scl_inter"] = 1.0, np.inf
    path = tmp_path / "bad_inter.nii.gz"
    nib.save(img, path)
    with pytest.raises(UndecodableImage, match="bad_inter.nii.gz"):
        load_volume(path, CFG)
