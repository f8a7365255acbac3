"""Whose failure is it (pipelines.failures): library errors on bad bytes vs bugs of ours."""

from __future__ import annotations

import json

import pytest

from pipelines.failures import describe, is_our_bug, project_frame
from pipelines.imaging.errors import UndecodableImage, decoding


def test_library_errors_are_the_inputs_and_project_bugs_are_ours():
    try:
        json.loads("{")
    except ValueError as exc:
        assert not is_our_bug(exc)
    with pytest.raises(UndecodableImage, match="x.bin: cannot decode: "):
        with decoding("x.bin", "cannot decode"):
            json.loads("{")
    from pipelines.imaging import intensity

    try:
        intensity.luma(None)  # a TypeError raised inside pipelines/: ours
    except TypeError as exc:
        assert is_our_bug(exc)
        assert project_frame(exc).startswith("pipelines/imaging/intensity.py:") and "in luma" in project_frame(exc)
        assert describe(exc).startswith("TypeError: ") and "(at pipelines/imaging/intensity.py:" in describe(exc)
        caught = exc
    with pytest.raises(TypeError):  # the decoding net lets it through
        with decoding("x.bin", "cannot decode"):
            raise caught
