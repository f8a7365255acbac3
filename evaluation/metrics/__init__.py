"""Metrics as a registry: ``METRICS`` maps a metric name to its class (one module each, interface in ``base``).

A new metric is one module with a :class:`~evaluation.metrics.base.Metric` subclass, one line here and a test in
``tests/evaluation/``; which tasks use it is decided by ``evaluation.tasks.KINDS``.
"""

from __future__ import annotations

from evaluation.metrics.accuracy import ClosedAccuracy, ModalityAccuracy, YesNoAccuracy
from evaluation.metrics.base import Metric, MetricContext, MetricSkipped
from evaluation.metrics.bertscore import BertScore
from evaluation.metrics.bleu import Bleu4
from evaluation.metrics.exact_match import ExactMatch
from evaluation.metrics.findings import FindingPRF
from evaluation.metrics.rouge import RougeL
from evaluation.metrics.token_f1 import TokenF1

METRICS: dict[str, type[Metric]] = {m.name: m for m in (
    YesNoAccuracy, ModalityAccuracy, ClosedAccuracy, ExactMatch, TokenF1, FindingPRF, Bleu4, RougeL, BertScore)}

#: Metrics named in reports that this build cannot compute, with the reason (listed as skipped).
UNAVAILABLE: dict[str, str] = {
    "radgraph_f1": "model-based (RadGraph entity/relation F1); not implemented here: it needs the radgraph package "
                   "and its model, which no registry package carries",
}


def make_metric(name: str, context: MetricContext | None = None) -> Metric:
    """A fresh metric; raises :class:`MetricSkipped` when it cannot run, ``KeyError`` for an unknown name."""
    if name in UNAVAILABLE:
        raise MetricSkipped(UNAVAILABLE[name])
    if name not in METRICS:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))}")
    return METRICS[name](context)


__all__ = ["METRICS", "UNAVAILABLE", "Metric", "MetricContext", "MetricSkipped", "make_metric"]
