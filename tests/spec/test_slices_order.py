"""Spec 1.4's 3D storage order and the 3D build's intensity rule.

* 3D images are stored slices-contiguous (``slices.npy.zst``: ``[S, C, D, H, W]``) and every reader returns the
  ``[S, C, H, W, D]`` view: the codec round trip, the build writing it, and spec 1.3 3D shards (``vision.npy.zst``
  holding ``[S, C, H, W, D]``) reading to identical samples and identical trainer batches.
* The percentile window of a volume is taken over its native voxels (before in-plane resizing): ``native_window``
  equals ``np.percentile`` over every voxel value, and ``load_volume`` equals window -> uint8 -> resize.
Speed and bytes are measured in bench/volume3d.py, never here.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image
from shard_edit import edit_dataset

from pipelines.config import ImageConfig
from pipelines.imaging import load_volume, stack_sample
from pipelines.imaging.intensity import native_window, rescale
from pipelines.imaging.planes import FILTER, REDUCING_GAP
from shards_spec import codec
from shards_spec.layout import FIELD_META, FIELD_SLICES, FIELD_SLICES_RAW, FIELD_VISION, IMAGE_FIELDS, image_field
from shards_spec.reader import iter_raw_samples
from train.collate import CollateConfig, collate
from train.config import SourceConfig
from train.read import FileCache, IndexCache, read_sample
from train.sources import resolve_sources


# ============================================================================================ codec
@pytest.mark.parametrize("level", [3, 0])
def test_slices_member_round_trip(level):
    vision = np.random.default_rng(0).integers(0, 256, (2, 1, 8, 9, 5), dtype=np.uint8)  # [S, C, H, W, D]
    members = codec.encode_sample(input_ids=np.arange(4), labels=np.arange(4), loss_weight=np.ones(4), meta={},
                                  vision=vision, zstd_level=level, slices=True)
    field = FIELD_SLICES if level else FIELD_SLICES_RAW
    assert image_field(members) == field and FIELD_VISION not in members
    stored = codec.load_npy(codec.npy_bytes(vision.transpose(0, 1, 4, 2, 3)))
    payload = members[field] if level == 0 else codec._decompressor().decompress(members[field])
    assert codec.load_npy(payload).shape == (2, 1, 5, 8, 9) and np.array_equal(codec.load_npy(payload), stored)
    view = codec.decode_image(field, members[field])
    assert view.shape == vision.shape and np.array_equal(view, vision)
    if level == 0:
        assert np.shares_memory(view, np.frombuffer(members[field], np.uint8))  # read in place, no copy
    decoded = codec.decode_sample(members)[FIELD_VISION]
    assert np.array_equal(decoded, vision) and decoded.flags.writeable


def test_slices_member_errors_name_the_member():
    with pytest.raises(codec.DecodeError, match="slices.npy.zst"):
        codec.decode_image(FIELD_SLICES, b"not zstd")
    with pytest.raises(codec.DecodeError, match="slices.npy"):
        codec.decode_image(FIELD_SLICES_RAW, codec.npy_bytes(np.zeros((2, 3), np.uint8)))


def test_stack_sample_3d_is_a_view_of_slices_contiguous_memory():
    rng = np.random.default_rng(1)
    cfg = ImageConfig(size_3d=16)
    images = [rng.integers(0, 256, (1, 16, 16, 8), dtype=np.uint8), rng.integers(0, 256, (3, 16, 16, 8), dtype=np.uint8)]
    stacked = stack_sample(images, cfg, "3d")
    expected = np.stack([np.broadcast_to(image, (3, 16, 16, 8)) for image in images])
    assert stacked.shape == expected.shape and np.array_equal(stacked, expected)
    assert stacked.transpose(0, 1, 4, 2, 3).flags.c_contiguous  # encode_image stores it without a copy


# ============================================================================================ old 1.3 shards
def as_spec_13(key: str, members: dict[str, bytes]) -> dict[str, bytes]:
    """The sample as a spec 1.3 build wrote it: ``vision.npy.zst`` holding ``[S, C, H, W, D]``."""
    field = image_field(members)
    vision = codec.decode_image(field, members[field])
    meta = codec.decode_meta(members[FIELD_META])
    meta["spec_version"] = "1.3"
    rest = {f: b for f, b in members.items() if f != field}
    return {**rest, FIELD_VISION: codec.encode_vision(np.ascontiguousarray(vision)), FIELD_META: codec.encode_meta(meta)}


def test_spec_13_3d_shards_read_to_identical_samples_and_batches(demo_shards, tmp_path):
    new = demo_shards / "rad3d"
    old = edit_dataset(new, tmp_path / "rad3d", as_spec_13)
    shards = {name: resolve_sources([SourceConfig(str(root), splits=["train", "validate", "test"])])["3d"]
              for name, root in (("new", new), ("old", old))}
    first_tar = sorted(new.rglob("*-3d-*.tar"))[0]
    assert all(image_field(raw.members) == FIELD_SLICES for raw in iter_raw_samples(first_tar))  # the build writes 1.4
    cfg = CollateConfig()
    files, index = FileCache(2), IndexCache()
    checked = 0
    for shard_new, shard_old in zip(shards["new"], shards["old"]):
        for entry_new, entry_old in zip(index.get(shard_new), index.get(shard_old)):
            assert FIELD_SLICES in entry_new["members"] and FIELD_VISION in entry_old["members"]
            a = read_sample(files, shard_new, entry_new, 0, index)
            b = read_sample(files, shard_old, entry_old, 0, index)
            assert a.key == b.key and a.vision.shape == b.vision.shape and np.array_equal(a.vision, b.vision)
            batch_a, batch_b = collate([a], cfg, "3d"), collate([b], cfg, "3d")
            assert torch.equal(batch_a["vision_x"], batch_b["vision_x"])
            checked += 1
    files.close()
    assert checked >= 4
    assert all(f in IMAGE_FIELDS for f in (FIELD_VISION, FIELD_SLICES))


# ============================================================================================ window
@pytest.mark.parametrize("dtype,scale", [(np.int16, None), (np.int16, (0.5, -1024.0)), (np.int16, (-2.0, 10.0)),
                                         (np.uint16, (1.0, 0.0)), (np.float32, None)])
def test_native_window_equals_the_percentiles_of_every_voxel(dtype, scale):
    rng = np.random.default_rng(2)
    raw = rng.normal(100, 300, (7, 1, 23, 19))
    raw = np.abs(raw) if dtype == np.uint16 else raw
    planes = [p.astype(dtype) for p in raw]
    values = np.concatenate([p.astype(np.float64).ravel() for p in planes])
    if scale is not None:
        values = values * scale[0] + scale[1]
    expected = np.percentile(values, (0.5, 99.5))
    assert np.allclose(native_window(planes, (0.5, 99.5), scale), expected, rtol=1e-6, atol=1e-3)


def test_load_volume_windows_native_voxels_then_resizes_in_uint8(tmp_path: Path):
    rng = np.random.default_rng(3)
    native = np.clip(rng.normal(0, 400, (48, 40, 6)), -1024, 3000).astype(np.int16)  # RAS, larger than the target
    native[:5, :5] = 3000  # outliers the percentiles clip
    nib.save(nib.Nifti1Image(native, np.eye(4)), tmp_path / "v.nii.gz")
    cfg = ImageConfig(size_3d=32)
    got = load_volume(tmp_path / "v.nii.gz", cfg)
    low, high = np.percentile(native.astype(np.float32), cfg.clip_percentiles)
    slices = []
    for k in range(native.shape[2]):
        display = rescale(native[::-1, ::-1, k].T.astype(np.float32), float(low), float(high))
        slices.append(np.asarray(Image.fromarray(display).resize((32, 32), FILTER, reducing_gap=REDUCING_GAP)))
    assert got.shape == (1, 32, 32, 6) and np.array_equal(got[0], np.stack(slices, axis=-1))
