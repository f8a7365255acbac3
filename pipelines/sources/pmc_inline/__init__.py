"""PMC-Inline: the reader (``source.py``; figures from the ``pmc_figures`` store) and its demo fixture
(``fixture.py``, used only by ``pipelines.demo``)."""

from pipelines.sources.pmc_inline.source import SOURCE, InlineFields, PmcInline, parse_paper, split_text, windows  # noqa: F401
