"""Tasks as a registry: record -> sample with RadFM's prompt, substitution and position rules.

``TASKS`` maps the name written to ``meta.json`` ``task`` to its :class:`~pipelines.tasks.base.Task` (inputs type,
pure builder, prompt files); the contract every builder keeps is in :mod:`pipelines.tasks.base`. A source asks for
a sample with :func:`sample` (or ``BuildContext.sample``), handing the record and that task's inputs::

    sample(seed, record, ReportInputs(answer, prompt_kind="caption", context=context, position="random"),
           max_images=10)

Adding a task: a module here with its inputs dataclass, ``build`` and ``TASK``, one line in ``TASKS``, its prompt
files in ``prompts/``, and a test in ``tests/tasks/`` (the contract test runs over every registered task).
"""

from __future__ import annotations

from pipelines.records import Record, SampleSpec
from pipelines.tasks import (
    caption,
    case_vqa,
    diagnosis_open,
    diagnosis_yesno,
    interleaved,
    medpix_case,
    medpix_image,
    medpix_qa,
    modality,
    rationale,
    report,
    vqa,
)
from pipelines.tasks.base import Task, TaskInputs, task_rng
from pipelines.tasks.caption import CaptionInputs
from pipelines.tasks.case_vqa import CaseVqaInputs
from pipelines.tasks.diagnosis_open import DiagnosisOpenInputs
from pipelines.tasks.diagnosis_yesno import DiagnosisYesNoInputs
from pipelines.tasks.interleaved import InterleavedInputs
from pipelines.tasks.medpix_case import MedpixCaseInputs
from pipelines.tasks.medpix_image import MedpixImageInputs
from pipelines.tasks.medpix_qa import MedpixQaInputs
from pipelines.tasks.modality import ModalityInputs
from pipelines.tasks.rationale import RationaleInputs
from pipelines.tasks.report import ReportInputs
from pipelines.tasks.vqa import VqaInputs

TASKS: dict[str, Task] = {t.name: t for t in (
    report.TASK, vqa.TASK, modality.TASK, rationale.TASK,
    # X-ray classification (issue #13)
    diagnosis_open.TASK, diagnosis_yesno.TASK,
    # literature, VQA and case sources (issue #14)
    caption.TASK, interleaved.TASK, case_vqa.TASK, medpix_case.TASK, medpix_image.TASK, medpix_qa.TASK,
)}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(sorted(TASKS))}")
    return TASKS[name]


def sample(seed: int, record: Record, inputs: TaskInputs, *, max_images: int) -> SampleSpec:
    """One sample of ``record`` from the task ``inputs`` belong to, with that task's seeded choices."""
    task = get_task(inputs.task)
    if not isinstance(inputs, task.inputs):
        raise TypeError(f"task {task.name} takes {task.inputs.__name__}, not {type(inputs).__name__}")
    return task.build(task_rng(seed, record, task.name), record, inputs, max_images=max_images)


__all__ = ["TASKS", "CaptionInputs", "CaseVqaInputs", "DiagnosisOpenInputs", "DiagnosisYesNoInputs", "InterleavedInputs",
           "MedpixCaseInputs", "MedpixImageInputs", "MedpixQaInputs", "ModalityInputs", "RationaleInputs", "ReportInputs",
           "Task", "TaskInputs", "VqaInputs", "get_task", "sample", "task_rng"]
