"""The stateless 2D/3D step schedule (train.schedule)."""

from __future__ import annotations

import pytest

from train.schedule import StepSchedule, default_ratio_2d


def test_schedule_is_a_pure_function_of_seed_and_step():
    a, b = StepSchedule(7, 0.3), StepSchedule(7, 0.3)  # "two ranks" build their own
    assert a.streams(0, 500) == b.streams(0, 500)
    assert a.streams(250, 500) == a.streams(0, 500)[250:]  # no state: any window is the same
    assert StepSchedule(8, 0.3).streams(0, 500) != a.streams(0, 500)


def test_schedule_ratio_and_counts():
    s = StepSchedule(0, 0.25)
    streams = s.streams(0, 20000)
    share = streams.count("2d") / len(streams)
    assert abs(share - 0.25) < 0.015
    assert s.consumed(1234) == {"2d": streams[:1234].count("2d"), "3d": streams[:1234].count("3d")}
    assert set(StepSchedule(0, 1.0).streams(0, 100)) == {"2d"}
    assert set(StepSchedule(0, 0.0).streams(0, 100)) == {"3d"}


def test_default_ratio_is_proportional_to_batch_counts():
    # 28 2D samples / 4 = 7 batches, 34 3D samples / 1 = 34 batches
    assert default_ratio_2d(28, 34, 4, 1) == pytest.approx(7 / 41)
    assert default_ratio_2d(10, 0, 4, 1) == 1.0
    assert default_ratio_2d(0, 10, 4, 1) == 0.0

