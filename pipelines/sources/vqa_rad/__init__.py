"""VQA-RAD: the reader (``source.py``) and its demo fixture (``fixture.py``, used only by ``pipelines.demo``)."""

from pipelines.sources.vqa_rad.source import SOURCE, VqaRad  # noqa: F401
