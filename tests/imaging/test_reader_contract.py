"""The reader contract over every registered reader: declared formats and signatures, sniffing, 2D planes and
volume slices of the promised shapes, and only ImageError on broken content. A new format adds its reader to
``READERS`` and an example file to ``EXAMPLES`` here (the first test fails until it does)."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from imaging_helpers import dicom_file, save_png, small

from pipelines.imaging import ImageError, UnsupportedFormat, load_volume, sniff
from pipelines.imaging.readers import BY_FORMAT, READERS, Reader, signatures


def _jpeg(folder: Path, chest: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(chest[:300, :250]).save(folder / "x.jpg", quality=90)
    return folder / "x.jpg"


def _npy(folder: Path, chest: np.ndarray) -> Path:
    np.save(folder / "x.npy", chest[:64, :48])
    return folder / "x.npy"


def _dicom(folder: Path, chest: np.ndarray) -> Path:
    return dicom_file("CT_small.dcm")


def _nifti(folder: Path, chest: np.ndarray) -> Path:
    volume = np.stack([chest[:40, :40].astype(np.int16) + k for k in range(5)], axis=-1)
    nib.save(nib.Nifti1Image(volume, np.eye(4)), folder / "x.nii.gz")
    return folder / "x.nii.gz"


#: reader class name -> a function writing one example file of its format
EXAMPLES: dict[str, Callable[[Path, np.ndarray], Path]] = {
    "PilReader": _jpeg,
    "NpyReader": _npy,
    "DicomReader": _dicom,
    "NiftiReader": _nifti,
}

CFG = small(size_2d=32, size_3d=32)


def test_every_reader_has_an_example_and_formats_are_unique() -> None:
    assert sorted(EXAMPLES) == sorted(type(r).__name__ for r in READERS)
    formats = [f for r in READERS for f in r.formats]
    assert len(formats) == len(set(formats)) and set(BY_FORMAT) == set(formats)
    order = signatures()
    assert [s.weak for s in order] == sorted(s.weak for s in order)  # strong signatures first
    for reader in READERS:
        assert reader.signatures and all(s.format in reader.formats for s in reader.signatures)


@pytest.mark.parametrize("reader", READERS, ids=lambda r: type(r).__name__)
def test_reader_contract(reader: Reader, tmp_path: Path, chest_u8: np.ndarray) -> None:
    example = EXAMPLES[type(reader).__name__](tmp_path, chest_u8)
    assert sniff(example) in reader.formats

    slices = reader.volume(example, CFG, colour=False)
    planes = list(slices.planes)
    assert slices.count == len(planes) >= 1
    # Volume planes are native (windowing and resizing are shared, pipelines.imaging.load.finish_volume), except
    # for Pillow slices, which are decoded straight to the target size.
    assert all(p.ndim == 3 and p.shape[0] in (1, 3) and p.dtype.kind in "uif" for p in planes)
    assert len({p.shape[1:] for p in planes}) == 1 and load_volume(example, CFG).shape[1:3] == (32, 32)
    try:
        image, window = reader.image(example, CFG, colour=False)
    except UnsupportedFormat as exc:  # a volume-only format says so
        assert "load_volume" in str(exc)
    else:
        assert image.shape[1:] == (32, 32) and (window is None or window[0] <= window[1])

    broken = tmp_path / ("broken" + "".join(example.suffixes))
    signature = reader.signatures[0]
    head = bytearray(512)
    head[signature.offset : signature.offset + len(signature.magic)] = signature.magic
    broken.write_bytes(bytes(head) + b"\x07garbage" * 50)
    assert sniff(broken) == signature.format
    with pytest.raises(ImageError, match="broken"):
        list(reader.volume(broken, CFG, colour=False).planes)


def test_names_claim_files_without_a_signature(tmp_path: Path, chest_u8: np.ndarray) -> None:
    raw = dicom_file("CT_small.dcm").read_bytes()[132:]  # no preamble, no DICM
    (tmp_path / "bare.dcm").write_bytes(raw)
    assert sniff(tmp_path / "bare.dcm") == "dicom"
    (tmp_path / "bare.bin").write_bytes(raw)
    assert sniff(tmp_path / "bare.bin") == "unknown"
    nifti = _nifti(tmp_path, chest_u8)
    assert sniff(nifti) == "nifti"  # gzip + .nii.gz
    (tmp_path / "x.gz").write_bytes(gzip.compress(b"not an image", mtime=0))
    assert sniff(tmp_path / "x.gz") == "unknown"
    save_png(tmp_path / "p.png", chest_u8[:10, :10])
    assert sniff(tmp_path / "p.png") == "png"
