"""PMC-CaseReport: the reader (``source.py``; figures from the ``pmc_figures`` store) and its demo fixture
(``fixture.py``, used only by ``pipelines.demo``)."""

from pipelines.sources.pmc_casereport.source import SOURCE, CaseFields, PmcCaseReport, parse_img_ref  # noqa: F401
