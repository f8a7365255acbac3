"""MIMIC-CXR: the reader (``source.py``) and its demo fixture (``fixture.py``, used only by ``pipelines.demo``)."""

from pipelines.sources.mimic.source import SOURCE, Mimic, MimicFields, report_answer, report_sections  # noqa: F401
