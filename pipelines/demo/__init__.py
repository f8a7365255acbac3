"""The demo: a small raw-data tree with every registered source in its native layout, built from real content.

``python -m pipelines.demo --out data/raw [--seed 0] [--<dataset>-<unit> N ...]``

Each dataset is written by its fixture (``pipelines/sources/<name>/fixture.py``, see :mod:`pipelines.demo.fixture`)
in the layout a user who downloaded it would have, together with the RadFM split files that refer to it through
the original authors' absolute cluster paths, so a builder has to remap prefixes. Content is real, only
re-arranged (:mod:`pipelines.demo.content`); some faults are planted on purpose (:mod:`pipelines.demo.faults`).

The output is deterministic: the same seed and sizes give byte-identical files. Shared pieces: ``content``
(package data), ``synth`` (image and volume synthesis), ``writers`` (deterministic files), ``faults``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipelines.demo.content import DemoSourceError, check
from pipelines.demo.faults import PLANT_KINDS
from pipelines.demo.fixture import DemoOptions, Fixture, fixtures, get_fixture
from pipelines.demo.writers import write_text

#: Written at the root of the output; its presence allows a rebuild to replace the tree.
MARKER = "README.demo.txt"


def _prepare_out(out: Path, chosen: list[Fixture]) -> None:
    """Create ``out``; replace a previous demo tree, refuse to touch anything else."""
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER
    for fixture in chosen:
        target = out / fixture.name
        if target.exists():
            if not marker.is_file():
                raise FileExistsError(f"{target} exists and is not a demo tree (no {MARKER}); not overwriting")
            shutil.rmtree(target)
    write_text(marker, "Demo raw tree written by `python -m pipelines.demo`.\n"
               + "".join(f"{f.name}/  {f.description}\n" for f in chosen))


def build_demo(
    out: Path,
    seed: int = 0,
    *,
    image_size: int | tuple[int, int] | None = None,
    log: Callable[[str], None] | None = None,
    **sizes: int,
) -> dict:
    """Write the demo tree under ``out`` and return counts, paths and planted faults.

    ``sizes``: ``<dataset>_<unit>=N`` per fixture (``mimic_studies=24``, ``rad3d_cases=6``; defaults from each
    fixture). ``image_size``: see :class:`~pipelines.demo.fixture.DemoOptions`.

    Returns ``{"out", "seed", "<dataset>": {...} per dataset, "planted": [...]}``. Each dataset dict holds its
    ``root`` and counts, and ``rows``: data rows (or entries) per written table, keyed by path relative to the
    dataset root. Each planted fault is ``{"dataset", "file" (relative to <out>/<dataset>), "kind"}`` plus
    ``"row"`` (0-based data row) for ``bad_row``.
    """
    chosen = fixtures()
    known = {f.size_option: f for f in chosen}
    unknown = sorted(set(sizes) - set(known))
    if unknown:
        raise TypeError(f"unknown demo size(s) {unknown}; known: {sorted(known)}")
    for option, value in sizes.items():
        if value < known[option].min_size:
            raise ValueError(f"{option} must be >= {known[option].min_size} (planted faults need room)")
    check(file for f in chosen for file in f.requires)  # before touching ``out``
    out = Path(out)
    _prepare_out(out, chosen)
    say = log or (lambda _msg: None)
    chosen_sizes = {f.size_option: sizes.get(f.size_option, f.default_size) for f in chosen}
    options = DemoOptions(image_size=image_size, seed=seed, sizes=tuple(sorted(chosen_sizes.items())))
    info: dict = {"out": str(out), "seed": seed}
    planted: list[dict] = []
    for fixture in chosen:
        size = chosen_sizes[fixture.size_option]
        say(f"{fixture.name}: {size} {fixture.size_unit} ...")
        rng = np.random.default_rng([seed, fixture.rng_stream])
        info[fixture.name], faults = fixture.write(out / fixture.name, rng, size, options)
        planted += faults
    info["planted"] = planted
    return info


__all__ = ["MARKER", "PLANT_KINDS", "DemoOptions", "DemoSourceError", "Fixture", "build_demo", "fixtures", "get_fixture"]
