"""Colour figures stay colour: in the demo shards (built with the default ``--channels auto``) a sample of a
literature or VQA source is stored with three planes exactly when one of its figures is a colour image (a fundus
photograph, a micrograph, an annotated scan), and grey figures are stored as one plane."""

from __future__ import annotations

import pytest
from literature_helpers import samples
from PIL import Image

from shards_spec.layout import FIELD_VISION

COLOUR_SOURCES = ("medpix", "pmc_inline", "pmc_casereport", "pmc_oa", "pmc_vqa")


def _is_colour(path) -> bool:
    with Image.open(path) as im:
        if im.mode not in ("RGB", "RGBA"):
            return False
        r, g, b = im.convert("RGB").split()
        return not (r.tobytes() == g.tobytes() == b.tobytes())


@pytest.mark.parametrize("dataset", COLOUR_SOURCES)
def test_colour_figures_are_stored_in_colour(demo_raw, demo_shards, dataset):
    built = samples(demo_shards, dataset)
    assert built
    channels = set()
    for meta, decoded in built:
        files = [demo_raw / (image.store or dataset) / image.path for image in meta.images]
        want = 3 if any(_is_colour(f) for f in files) else 1
        vision = decoded[FIELD_VISION]
        assert vision.shape[1] == want, (meta.source_id, [str(f) for f in files])
        channels.add(want)
    assert channels == {1, 3}, f"{dataset}: the demo should hold grey and colour figures, got C in {channels}"
