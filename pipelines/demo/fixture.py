"""The fixture contract: each source's demo data, written in that dataset's native layout next to its reader.

A fixture lives in ``pipelines/sources/<name>/fixture.py`` as ``FIXTURE``, an instance of a :class:`Fixture`
subclass, and is found through the source registry (:func:`get_fixture`); a build never imports it. It writes,
under ``root`` (``<out>/<name>``), what a user who downloaded the dataset would have (exact file names, folders,
columns and value conventions as the publisher documents them) plus the RadFM split files that refer to it, using
real content (:mod:`pipelines.demo.content`), the shared synthesis and writers, and plants at least one fault
(:mod:`pipelines.demo.faults`).

``write`` must be deterministic: the same ``rng`` state, size and options give byte-identical files. Its random
stream is its own (``numpy.random.default_rng([seed, rng_stream])``), so adding a fixture changes no other.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from pipelines.demo.content import DataFile
from pipelines.sources import REGISTRY


@dataclass(frozen=True)
class DemoOptions:
    """Options that cut across fixtures."""

    #: Chest radiographs: None for varied ~1024-1400 px JPEGs, an int for the long side (e.g. 3000), or
    #: ``(width, height)`` for an exact size (e.g. ``(2544, 3056)``).
    image_size: int | tuple[int, int] | None = None
    #: The demo's seed and every fixture's size (``(size option, value)``): for fixtures of datasets that share
    #: content (PMC-Inline and PMC-CaseReport reference the figures of the PMC-Figures store), which derive one
    #: shared plan from them (:func:`size`), each writing only its own part.
    seed: int = 0
    sizes: tuple[tuple[str, int], ...] = ()

    def size(self, option: str, default: int) -> int:
        return dict(self.sizes).get(option, default)


class Fixture(ABC):
    name: ClassVar[str]  # the registry id; files go to <out>/<name>
    rng_stream: ClassVar[int]  # unique among fixtures
    size_unit: ClassVar[str]  # what the size counts: the CLI option is --<name>-<size_unit>
    default_size: ClassVar[int]
    min_size: ClassVar[int]  # the smallest size with room for every planted fault
    description: ClassVar[str]  # one line for the demo tree's README
    requires: ClassVar[tuple[DataFile, ...]]  # package data files it reads
    #: ``pipelines.build`` arguments ``make demo`` adds (small shards, so every stream has several)
    shard_args: ClassVar[tuple[str, ...]] = ()

    @property
    def size_option(self) -> str:
        """The ``build_demo`` keyword / CLI option stem for the size (``mimic_studies``)."""
        return f"{self.name}_{self.size_unit}"

    @abstractmethod
    def write(self, root: Path, rng: np.random.Generator, size: int, options: DemoOptions) -> tuple[dict, list[dict]]:
        """Write the dataset under ``root``; return an info dict (``root``, counts, ``rows``: data rows per written
        table keyed by path relative to ``root``, …) and the planted faults."""


def get_fixture(name: str) -> Fixture:
    """The demo fixture of a registered source (``pipelines.sources.<name>.fixture.FIXTURE``)."""
    if name not in REGISTRY:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(REGISTRY))}")
    fixture = importlib.import_module(f"{REGISTRY[name]}.fixture").FIXTURE
    if fixture.name != name:
        raise RuntimeError(f"{REGISTRY[name]}.fixture.FIXTURE is named {fixture.name!r}, registered as {name!r}")
    return fixture


def fixtures() -> list[Fixture]:
    """Every registered source's fixture, in registry order."""
    return [get_fixture(name) for name in REGISTRY]
