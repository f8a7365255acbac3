"""Token F1 for open answers (SQuAD's): the harmonic mean of precision and recall of the normalised answers'
token bags (``evaluation.normalize.answer_tokens``; repeated tokens count as often as they occur in both). Two
empty answers score 1, one empty answer 0."""

from __future__ import annotations

from collections import Counter

from evaluation.metrics.base import MeanMetric
from evaluation.normalize import answer_tokens


def token_f1(pred: str, truth: str) -> float:
    p, t = answer_tokens(pred), answer_tokens(truth)
    if not p or not t:
        return float(p == t)
    common = sum((Counter(p) & Counter(t)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(t)
    return 2 * precision * recall / (precision + recall)


class TokenF1(MeanMetric):
    name = "token_f1"

    def score(self, pred: str, truth: str) -> float:
        return token_f1(pred, truth)
