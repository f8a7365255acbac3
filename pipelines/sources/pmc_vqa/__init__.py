"""PMC-VQA: the reader (``source.py``) and its demo fixture (``fixture.py``, used only by ``pipelines.demo``)."""

from pipelines.sources.pmc_vqa.source import SOURCE, PmcVqa, choice_text  # noqa: F401
