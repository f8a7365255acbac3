"""SLAKE: the reader (``source.py``) and its demo fixture (``fixture.py``, used only by ``pipelines.demo``)."""

from pipelines.sources.slake.source import SOURCE, Slake  # noqa: F401
