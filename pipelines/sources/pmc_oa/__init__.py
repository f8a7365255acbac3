"""PMC-OA: the reader (``source.py``) and its demo fixture (``fixture.py``, used only by ``pipelines.demo``)."""

from pipelines.sources.pmc_oa.source import SOURCE, CaptionFields, PmcOa  # noqa: F401
