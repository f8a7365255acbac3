"""Exact match for open answers: normalised prediction == normalised truth (``evaluation.normalize.normalize_answer``)."""

from __future__ import annotations

from evaluation.metrics.base import MeanMetric
from evaluation.normalize import normalize_answer


class ExactMatch(MeanMetric):
    name = "exact_match"

    def score(self, pred: str, truth: str) -> float:
        return float(normalize_answer(pred) == normalize_answer(truth))
