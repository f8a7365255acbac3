"""Per-finding precision, recall and F1 for open diagnosis ("which findings does this image show?").

The truth's findings are its comma/semicolon/"and"-separated names (``split_findings``); the prediction's are the
dataset's label names it mentions (``find_findings``: whole words, longest label first). The label set is the
context's ``labels`` (the dataset's finding names, when known) plus every name seen in a truth of the group.

Per label: TP = samples whose truth and prediction both have it, FP = only the prediction, FN = only the truth;
precision = TP / (TP + FP), recall = TP / (TP + FN), F1 their harmonic mean, each 0 when undefined.
Reported: ``finding_micro_f1`` (from the summed counts; the headline), ``finding_macro_f1`` (mean over labels
that occur in a truth), micro precision and recall, ``finding_exact_set`` (fraction of samples whose found set
equals the truth's) and ``per_finding`` (label -> precision, recall, f1, support).
"""

from __future__ import annotations

from typing import Any

from evaluation.metrics.base import Metric
from evaluation.normalize import find_findings, normalize_answer, split_findings


def _prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return p, r, f


class FindingPRF(Metric):
    name = "finding_micro_f1"

    def reset(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def update(self, pred: str, truth: str) -> None:
        self.pairs.append((pred, truth))

    def compute(self) -> dict[str, Any]:
        display: dict[str, str] = {}
        truths = []
        for _, truth in self.pairs:
            names = {normalize_answer(n): n for n in split_findings(truth)}
            names.pop("", None)
            for norm, name in names.items():
                display.setdefault(norm, name)
            truths.append(set(names))
        for name in self.context.labels:
            display.setdefault(normalize_answer(name), name)
        display.pop("", None)
        labels = sorted(display)
        counts = {label: [0, 0, 0] for label in labels}  # tp, fp, fn
        exact = 0
        for (pred, _), truth in zip(self.pairs, truths):
            found = find_findings(pred, labels)
            exact += found == truth
            for label in found | truth:
                counts[label][0 if (label in found and label in truth) else 1 if label in found else 2] += 1
        per = {}
        for label in labels:
            tp, fp, fn = counts[label]
            p, r, f = _prf(tp, fp, fn)
            per[display[label]] = {"precision": p, "recall": r, "f1": f, "support": tp + fn}
        tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
        micro_p, micro_r, micro_f = _prf(tp, fp, fn)
        supported = [v["f1"] for v in per.values() if v["support"] > 0]
        return {
            self.name: micro_f,
            "finding_macro_f1": sum(supported) / len(supported) if supported else 0.0,
            "finding_micro_precision": micro_p,
            "finding_micro_recall": micro_r,
            "finding_exact_set": exact / len(self.pairs) if self.pairs else 0.0,
            "per_finding": per,
        }
