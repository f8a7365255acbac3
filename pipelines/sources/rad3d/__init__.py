"""Rad3D (Radiopaedia): the reader (``source.py``) and its demo fixture (``fixture.py`` + ``topics.json``, used only
by ``pipelines.demo``)."""

from pipelines.sources.rad3d.source import (  # noqa: F401
    SOURCE,
    ArticleFields,
    CaseImageFields,
    ModalityFields,
    Rad3D,
    Rad3DVocabulary,
    VqaFields,
)
