"""ROUGE-L for reports and captions: ``rouge-score``'s longest-common-subsequence F-measure (its tokeniser:
lower case, alphanumeric tokens; Porter stemming on), averaged over pairs."""

from __future__ import annotations

from functools import cached_property

from evaluation.metrics.base import MeanMetric


class RougeL(MeanMetric):
    name = "rouge_l"

    @cached_property
    def scorer(self):
        from rouge_score import rouge_scorer

        return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)

    def score(self, pred: str, truth: str) -> float:
        return self.scorer.score(truth, pred)["rougeL"].fmeasure
