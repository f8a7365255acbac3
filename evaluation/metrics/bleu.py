"""BLEU-4 for reports and captions: sacrebleu's corpus BLEU (4-gram, ``13a`` tokenisation, cased, exponential
brevity penalty, no smoothing beyond sacrebleu's default), divided by 100 so that it lies in [0, 1] like every
other number here. Corpus-level: the n-gram counts of all pairs are pooled before the geometric mean."""

from __future__ import annotations

from typing import Any

from evaluation.metrics.base import Metric


class Bleu4(Metric):
    name = "bleu4"

    def reset(self) -> None:
        self.preds: list[str] = []
        self.truths: list[str] = []

    def update(self, pred: str, truth: str) -> None:
        self.preds.append(pred)
        self.truths.append(truth)

    def compute(self) -> dict[str, Any]:
        import sacrebleu

        if not self.preds:
            return {self.name: 0.0}
        result = sacrebleu.corpus_bleu(self.preds, [self.truths], tokenize="13a")
        return {self.name: result.score / 100.0}
