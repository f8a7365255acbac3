"""MIMIC-CXR: the reader (``source.py``), its report section parser (``sections.py``) and its demo fixture
(``fixture.py``, used only by ``pipelines.demo``)."""

from pipelines.sources.mimic.sections import parse_sections, report_answer, report_sections  # noqa: F401
from pipelines.sources.mimic.source import SOURCE, Mimic, MimicFields  # noqa: F401
