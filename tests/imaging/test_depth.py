"""Depth: RadFM's one depth per sample, depth resampling, stacking a sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from imaging_helpers import CFG, small

from pipelines.imaging import (
    EmptySeries,
    common_depth,
    fit_depth,
    load_volume,
    stack_sample,
)


@pytest.mark.parametrize(
    ("depths", "expected"),
    [
        ([1], 4), ([4], 4), ([6], 4), ([7], 8),  # below min_depth, exact, tie -> smaller, nearest
        ([10, 30], 28), ([31], 32), ([62], 60), ([63], 64),  # max of the sample decides
        ([65], 64), ([500], 64),  # beyond max_depth
    ],
)
def test_common_depth(depths: list[int], expected: int) -> None:
    assert common_depth(depths, CFG) == expected


def column(values: list[int]) -> np.ndarray:
    return np.array(values, np.uint8).reshape(1, 1, 1, -1)


def test_fit_depth_shrinks_by_area_grows_linearly_and_replicates() -> None:
    assert fit_depth(column([0, 10, 20, 30, 40, 50, 60, 70]), 4).ravel().tolist() == [5, 25, 45, 65]
    assert fit_depth(column([0, 30, 60]), 2).ravel().tolist() == [10, 50]  # 1.5 slices per output
    assert fit_depth(column([0, 100]), 4).ravel().tolist() == [0, 25, 75, 100]
    assert fit_depth(column([7]), 4).ravel().tolist() == [7, 7, 7, 7]
    volume = np.random.default_rng(4).integers(0, 256, (3, 5, 5, 24), dtype=np.uint8)
    fitted = fit_depth(volume, 8)
    assert fitted.shape == (3, 5, 5, 8) and fitted.dtype == np.uint8
    assert abs(float(fitted.mean()) - float(volume.mean())) < 0.5
    assert fit_depth(volume, 24) is volume


def test_stack_sample_2d_and_3d() -> None:
    cfg = small(size_2d=8, size_3d=8)
    rng = np.random.default_rng(5)
    grey = rng.integers(0, 256, (1, 8, 8, 1), dtype=np.uint8)
    colour = rng.integers(0, 256, (3, 8, 8, 1), dtype=np.uint8)
    sample = stack_sample([grey, colour], cfg, "2d")
    assert sample.shape == (2, 3, 8, 8, 1) and np.array_equal(sample[0, 2], grey[0])

    volumes = [rng.integers(0, 256, (1, 8, 8, depth), dtype=np.uint8) for depth in (10, 30)]
    stacked = stack_sample([*volumes, grey], cfg, "3d")
    assert stacked.shape == (3, 1, 8, 8, 28) and stacked.dtype == np.uint8
    assert np.all(stacked[2] == grey[..., :1])  # the 2D image is replicated through depth

    with pytest.raises(EmptySeries):
        stack_sample([], cfg, "3d")
    with pytest.raises(ValueError):
        stack_sample([volumes[0]], cfg, "2d")


def test_very_deep_volume_is_averaged_in_slice_groups_while_reading(tmp_path: Path) -> None:
    depth = np.arange(40, dtype=np.uint8) * 5
    np.save(tmp_path / "deep.npy", np.broadcast_to(depth, (8, 8, 40)))
    cfg = small(size_3d=8, max_depth=4)  # bound 4 * max_depth = 16 slices -> groups of 3
    volume = load_volume(tmp_path / "deep.npy", cfg)
    assert volume.shape == (1, 8, 8, 14)
    assert volume[0, 0, 0].tolist() == [5 * (3 * j + 1) for j in range(13)] + [195]

