"""The task contract: a frozen inputs type and a pure builder, registered under the name written to meta.json.

A task turns one record into one :class:`~pipelines.records.SampleSpec` (question, answer, where each image goes)
with RadFM's prompt, substitution and position rules. A builder

* is a pure function of ``(rng, record, inputs, max_images)``: every random choice (prompt, variant, image
  position, negative example, image subset) comes from ``rng``, which :func:`task_rng` seeds by (build seed,
  dataset, source id, task name), so a build is reproducible and a record always yields the same samples;
* returns a spec whose ``task`` is its registry name, with one placement per kept image and ``image_indices``
  sorted, within the record's images and at most ``max_images`` long;
* draws prompts only from the prompt files it declares (``prompt_kinds``);
* never reads files and never raises on text content: a source decides what is usable before calling it.

Inputs are small frozen dataclasses that check their own values when constructed (a bad position or prompt kind
fails at the source, with the record at hand) and name their task (``TaskInputs.task``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from pipelines.records import Record, SampleSpec
from shards_spec.hashing import BUILD_SEP, seed_from


@dataclass(frozen=True)
class TaskInputs:
    """Base of every task's inputs. ``task`` names the registered task that builds from them."""

    task: ClassVar[str]

    @classmethod
    def example(cls) -> TaskInputs:
        """A valid instance (documentation, and the contract test over every task)."""
        raise NotImplementedError


Builder = Callable[..., SampleSpec]  # (rng, record, inputs, *, max_images) -> SampleSpec


@dataclass(frozen=True)
class Task:
    name: str  # written to meta.json "task"
    inputs: type[TaskInputs]
    build: Builder
    prompt_kinds: tuple[str, ...]  # the prompt files (tasks/prompts/<kind>.json) it draws from
    #: False for a task whose samples involve no random choice besides the image subset (interleaved text)
    random_choices: bool = True


def task_rng(seed: int, record: Record, task: str) -> random.Random:
    return random.Random(seed_from(seed, record.dataset, record.source_id, task, sep=BUILD_SEP))
