"""The metric interface: one file per metric, each a small stateful object.

A metric is made for one group of predictions (one dataset, task and evaluation kind) by
``make_metric(name, context)``, then fed pairs and asked for its numbers::

    metric = make_metric("rouge_l", MetricContext())
    for pred, truth in pairs:
        metric.update(pred, truth)
    metric.compute()      # {"rouge_l": 0.41}
    metric.reset()        # empty again

``compute()`` returns named scalars in [0, 1] (the first key is the metric's headline number) and may add
details (per-finding tables). Metrics see the *gathered* predictions: ``train.evaluate`` merges every rank's
predictions before scoring, so corpus-level scores (BLEU) are computed over the whole split, never averaged over
ranks. A metric that cannot run here (a model-based metric without a local model) raises :class:`MetricSkipped`
from its constructor with the reason; the scorer lists it as skipped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


class MetricSkipped(Exception):
    """A metric that cannot be computed in this run (the message says why and how to enable it)."""


@dataclass(frozen=True)
class MetricContext:
    """What a metric may need besides the pairs."""

    #: finding names of the group's dataset (open diagnosis); ground-truth findings are added by the scorer
    labels: tuple[str, ...] = ()
    #: a local Hugging Face encoder folder for BERTScore (``None``: BERTScore is skipped)
    bertscore_model: str | None = None
    #: extra options by metric name
    options: dict[str, Any] = field(default_factory=dict)


class Metric(ABC):
    """Accumulates (prediction, truth) pairs; ``compute`` gives its numbers. Subclasses set ``name``."""

    name: str = ""

    def __init__(self, context: MetricContext | None = None) -> None:
        self.context = context or MetricContext()
        self.reset()

    @abstractmethod
    def reset(self) -> None:
        """Forget every pair."""

    @abstractmethod
    def update(self, pred: str, truth: str) -> None:
        """Add one pair."""

    @abstractmethod
    def compute(self) -> dict[str, Any]:
        """The metric's numbers over every pair added since the last reset."""


class MeanMetric(Metric):
    """A metric that is the mean of a per-pair score (``score(pred, truth) -> float``)."""

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def update(self, pred: str, truth: str) -> None:
        self.total += float(self.score(pred, truth))
        self.count += 1

    @abstractmethod
    def score(self, pred: str, truth: str) -> float:
        """One pair's score in [0, 1]."""

    def compute(self) -> dict[str, Any]:
        return {self.name: self.total / self.count if self.count else 0.0}
