"""Source datasets as a registry: one package per dataset, registered by name.

``REGISTRY`` maps a registry id (``--dataset``) to the package ``pipelines.sources.<id>`` whose ``SOURCE`` reads
that dataset (the contract is :class:`~pipelines.sources.base.Source`) and whose ``fixture`` module writes its demo
data (:mod:`pipelines.demo`; never imported by a build). Adding a source is one package and one line here.
"""

from __future__ import annotations

import importlib

from pipelines.sources.base import BuildContext, Source, Store, Vocabulary

#: registry id -> package implementing it (the other 20 sources slot in here).
REGISTRY = {
    "mimic": "pipelines.sources.mimic",
    "rad3d": "pipelines.sources.rad3d",
    # X-ray classification (issue #13): diagnosis_open / diagnosis_yesno (pipelines/sources/diagnosis.py)
    "vindr_cxr": "pipelines.sources.vindr_cxr",
    "vindr_pcxr": "pipelines.sources.vindr_pcxr",
    "vindr_spinexr": "pipelines.sources.vindr_spinexr",
    "vindr_mammo": "pipelines.sources.vindr_mammo",
    "nih_cxr14": "pipelines.sources.nih_cxr14",
    "chexpert": "pipelines.sources.chexpert",
    "covid_cxr2": "pipelines.sources.covid_cxr2",
    "nlm_tb": "pipelines.sources.nlm_tb",
    "object_cxr": "pipelines.sources.object_cxr",
    "openi": "pipelines.sources.openi",
    "rsna_pneumonia": "pipelines.sources.rsna_pneumonia",
    "siim_acr": "pipelines.sources.siim_acr",
    # literature, VQA and case sources (issue #14); pmc_figures is the figure store of pmc_inline and pmc_casereport
    "medpix": "pipelines.sources.medpix",
    "pmc_figures": "pipelines.sources.pmc_figures",
    "pmc_inline": "pipelines.sources.pmc_inline",
    "pmc_casereport": "pipelines.sources.pmc_casereport",
    "vqa_rad": "pipelines.sources.vqa_rad",
    "slake": "pipelines.sources.slake",
    "pmc_vqa": "pipelines.sources.pmc_vqa",
    "pmc_oa": "pipelines.sources.pmc_oa",
}


def names() -> list[str]:
    return sorted(REGISTRY)


def get_source(name: str) -> Source:
    if name not in REGISTRY:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(names())}")
    source = importlib.import_module(REGISTRY[name]).SOURCE
    if source.name != name:
        raise RuntimeError(f"{REGISTRY[name]}.SOURCE is named {source.name!r}, registered as {name!r}")
    return source


def users_of(store: str) -> list[str]:
    """The registry ids of the sources that read the store ``store`` (``Source.stores``)."""
    return [name for name in names() if store in get_source(name).stores]


__all__ = ["REGISTRY", "BuildContext", "Source", "Store", "Vocabulary", "get_source", "names", "users_of"]
