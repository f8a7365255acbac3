"""Which metrics score which task: a task (``meta.json`` ``task``) -> an evaluation *kind* -> its metrics.

``TASK_KINDS`` maps a task name to its kind, either directly (``"report": "text"``) or per ``variant``
(``modality``: the direct question is a modality answer, the yes/no variants are yes/no), or through a function
of the sample (VQA: closed when the truth is yes/no, or when the source marks the variant ``closed``). A source
that adds a task adds one line here (a test checks that every task of ``pipelines.tasks.TASKS`` has one).

``KINDS`` maps a kind to its metric names (``evaluation.metrics.METRICS``) and the headline number plotted by the
trainer. Kinds:

=============  ==========================================  ====================================================
kind           used for                                    metrics
=============  ==========================================  ====================================================
``yesno``      yes/no questions (modality, rationale,      ``yes_no_accuracy`` (first word decides)
               diagnosis_yesno, closed VQA)
``modality``   "which modality is this?"                   ``modality_accuracy`` (aliases folded: MR = MRI)
``closed``     multiple-choice / closed VQA                ``closed_accuracy`` (normalised exact)
``open``       open VQA                                    ``exact_match``, ``token_f1``
``findings``   open diagnosis                              ``finding_micro_f1`` … (per finding P/R/F1)
``text``       reports, captions, rationales               ``bleu4``, ``rouge_l``, ``bertscore_f1``, ``radgraph_f1``
                                                           (the last two model-based: skipped without a model)
=============  ==========================================  ====================================================

``belong_to`` (RadFM's CSV column) is RadFM's dataset name for the (dataset, task) when RadFM had one
(``RADFM_NAMES``), else ``<dataset>_<task>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from evaluation.normalize import normalize_yes_no


@dataclass(frozen=True)
class Kind:
    metrics: tuple[str, ...]
    headline: str  # the number the trainer logs and plots for this kind


KINDS: dict[str, Kind] = {
    "yesno": Kind(("yes_no_accuracy",), "yes_no_accuracy"),
    "modality": Kind(("modality_accuracy",), "modality_accuracy"),
    "closed": Kind(("closed_accuracy",), "closed_accuracy"),
    "open": Kind(("exact_match", "token_f1"), "token_f1"),
    "findings": Kind(("finding_micro_f1",), "finding_micro_f1"),
    "text": Kind(("bleu4", "rouge_l", "bertscore_f1", "radgraph_f1"), "rouge_l"),
}


def vqa_kind(variant: str, truth: str) -> str:
    """Closed when the source says so (variant ``closed``) or the truth is a yes/no answer, else open."""
    if variant in ("closed", "open"):
        return "yesno" if variant == "closed" and normalize_yes_no(truth) else variant
    return "yesno" if normalize_yes_no(truth) and len(truth.split()) <= 2 else "open"


def medpix_image_kind(variant: str, truth: str) -> str:
    """MedPix image questions: a caption is text, the yes/no variants yes/no, the modality question a modality
    answer, the plane question an open answer (a short phrase: ``axial``, ``PA``)."""
    if variant.endswith(("_yes", "_no")):
        return "yesno"
    return {"caption": "text", "modality": "modality"}.get(variant, "open")


KindRule = str | Mapping[str, str] | Callable[[str, str], str]

#: task -> kind, or {variant: kind}, or f(variant, truth) -> kind
TASK_KINDS: dict[str, KindRule] = {
    "report": "text",
    "caption": "text",
    "rationale": {"features": "text", "yes": "yesno", "no": "yesno"},
    "modality": {"direct": "modality", "yes": "yesno", "no": "yesno"},
    "vqa": vqa_kind,
    "diagnosis_open": "findings",
    "diagnosis_yesno": "yesno",
    # literature, VQA and case sources: running text and free answers are scored as text, short answers as open VQA
    "interleaved": "text",
    "case_vqa": "text",
    "medpix_case": "text",
    "medpix_image": medpix_image_kind,
    "medpix_qa": "open",
}

#: (dataset, task) -> RadFM's dataset name (``belong_to`` in its output CSV)
RADFM_NAMES: dict[tuple[str, str], str] = {
    ("mimic", "report"): "chestxray_caption_dataset",
    ("rad3d", "report"): "radiocaption_dataset",
    ("rad3d", "rationale"): "radiofeatures_dataset",
    ("rad3d", "vqa"): "radiovqa_dataset",
    ("rad3d", "modality"): "radiomodality_dataset",
}


class UnknownTask(KeyError):
    pass


def kind_of(task: str, variant: str, truth: str) -> str:
    """The evaluation kind of one sample; raises :class:`UnknownTask` for a task without a rule."""
    rule = TASK_KINDS.get(task)
    if rule is None:
        raise UnknownTask(f"no evaluation rule for task {task!r}; add it to evaluation.tasks.TASK_KINDS "
                          f"(known: {', '.join(sorted(TASK_KINDS))})")
    if isinstance(rule, str):
        kind = rule
    elif isinstance(rule, Mapping):
        if variant not in rule:
            raise UnknownTask(f"no evaluation rule for task {task!r} variant {variant!r} (known: {sorted(rule)})")
        kind = rule[variant]
    else:
        kind = rule(variant, truth)
    if kind not in KINDS:
        raise UnknownTask(f"task {task!r} maps to unknown kind {kind!r}")
    return kind


def check_tasks(tasks) -> None:
    """Raise :class:`UnknownTask` for a task without a rule (before any generation, not at scoring)."""
    unknown = sorted(set(tasks) - set(TASK_KINDS))
    if unknown:
        raise UnknownTask(f"no evaluation rule for task(s) {unknown}; add them to evaluation.tasks.TASK_KINDS "
                          f"(known: {', '.join(sorted(TASK_KINDS))})")


def belong_to(dataset: str, task: str) -> str:
    return RADFM_NAMES.get((dataset, task), f"{dataset}_{task}")
