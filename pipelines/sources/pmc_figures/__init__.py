"""PMC-Figures: the figure store of PMC-Inline and PMC-CaseReport (``source.py``) and its demo fixture
(``fixture.py``, used only by ``pipelines.demo``)."""

from pipelines.sources.pmc_figures.source import FIGURE_NAME, SOURCE, STORE, PmcFigures, figure_file  # noqa: F401
