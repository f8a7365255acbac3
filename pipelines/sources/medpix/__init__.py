"""MedPix: the reader (``source.py``, MedPix's image categories in ``categories.json``) and its demo fixture
(``fixture.py``, used only by ``pipelines.demo``)."""

from pipelines.sources.medpix.source import SOURCE, MedPix, MedpixVocabulary  # noqa: F401
