"""The PMC-Figures demo fixture: the figure store of the demo's PMC corpus (:mod:`pipelines.demo.pmc`): every figure
PMC-Inline's papers and PMC-CaseReport's rows reference, some figures no dataset uses (the real store holds
millions), real grey and colour images.

Planted: a file that is not a figure (``Thumbs.db``: the store's check counts it and never reads it); the corpus'
truncated figure (written here, reported by ``pmc_casereport``). Figures the corpus marks missing are not written.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.demo.faults import fault, truncated
from pipelines.demo.figures import FIGURE_FILES, figure_jpeg
from pipelines.demo.fixture import DemoOptions, Fixture
from pipelines.demo.pmc import DEFAULT_EXTRA, corpus_for
from pipelines.demo.writers import write_bytes

STRAY = "Thumbs.db"


class PmcFiguresFixture(Fixture):
    name = "pmc_figures"
    rng_stream = 142
    size_unit = "extra_figures"
    default_size = DEFAULT_EXTRA
    min_size = 1
    description = "PMC-Figures: the figure store <PMCID>_<figure id>.jpg of pmc_inline and pmc_casereport"
    requires = FIGURE_FILES

    def write(self, root: Path, rng: np.random.Generator, size: int, options: DemoOptions) -> tuple[dict, list[dict]]:
        corpus = corpus_for(options)
        written = colour = 0
        root.mkdir(parents=True, exist_ok=True)
        for fig in corpus.figures():
            if not fig.present:
                continue
            data = figure_jpeg(fig.params)
            write_bytes(root / fig.file, truncated(data) if fig.corrupt else data)
            written += 1
            colour += fig.params.colour
        write_bytes(root / STRAY, bytes(range(256)) * 4)
        info = {"root": str(root), "figures": written, "colour_figures": colour, "extra_figures": size, "rows": {}}
        return info, [fault(self.name, STRAY, "stray_file")]


FIXTURE = PmcFiguresFixture()
