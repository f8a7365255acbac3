"""Accuracy for closed questions: the normalised prediction equals the normalised truth.

Three registered flavours differ only in the normaliser (``evaluation.normalize``):

* ``yes_no_accuracy``: ``normalize_yes_no`` (the first word decides; an answer that is neither yes nor no is
  wrong). Also reports ``unanswered``, the fraction of predictions that were neither.
  (An empty normalised prediction is wrong in every flavour.)
* ``modality_accuracy``: ``normalize_modality`` (the first modality named, aliases folded: MR = MRI).
* ``closed_accuracy``: ``normalize_answer`` (case, punctuation, articles and spacing ignored).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from evaluation.metrics.base import Metric
from evaluation.normalize import normalize_answer, normalize_modality, normalize_yes_no


class Accuracy(Metric):
    normalize: Callable[[str], str | None] = staticmethod(normalize_answer)

    def reset(self) -> None:
        self.correct, self.count, self.unanswered = 0, 0, 0

    def update(self, pred: str, truth: str) -> None:
        p, t = self.normalize(pred), self.normalize(truth)
        self.count += 1
        if p is None or p == "":
            self.unanswered += 1
        elif p == t:
            self.correct += 1

    def compute(self) -> dict[str, Any]:
        return {self.name: self.correct / max(self.count, 1)}


class YesNoAccuracy(Accuracy):
    name = "yes_no_accuracy"
    normalize = staticmethod(normalize_yes_no)

    def compute(self) -> dict[str, Any]:
        return {**super().compute(), "unanswered": self.unanswered / max(self.count, 1)}


class ModalityAccuracy(Accuracy):
    name = "modality_accuracy"
    normalize = staticmethod(normalize_modality)


class ClosedAccuracy(Accuracy):
    name = "closed_accuracy"
    normalize = staticmethod(normalize_answer)
