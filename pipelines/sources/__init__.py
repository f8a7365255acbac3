"""Source datasets: one small module per dataset, registered by name.

A source declares its layout and maps rows of its native or RadFM files to
:class:`~pipelines.records.Record` s (``records``), and records to samples (``samples``)
using the shared task builders of :mod:`pipelines.tasks`.
"""

from __future__ import annotations

import importlib

from pipelines.sources.base import BuildContext, Source  # noqa: F401

#: registry id -> module implementing it (the other 20 sources slot in here).
REGISTRY = {
    "mimic": "pipelines.sources.mimic",
    "rad3d": "pipelines.sources.rad3d",
}


def get_source(name: str) -> Source:
    if name not in REGISTRY:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return importlib.import_module(REGISTRY[name]).SOURCE
