"""``interleaved`` (PMC-Inline): a window of a paper's text with its figures inside, for language modelling.

The question is empty and the answer is the window's text, so the loss covers the whole text (only BOS and the
image tokens are not learned, RadFM's rule). Each figure goes where its sentence begins: RadFM's position
``{"answer": len(text so far)}`` (with the span rule ``max(p - 1, 0)`` that is just before the last character of
the text before the sentence). Sentences are joined with one space where neither side has one (RadFM glued them).
The source cuts papers into windows (at most 50 sentences and 3 figures each, ``pipelines.sources.pmc_inline``);
every image of the record is one figure reference, in reading order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from pipelines.records import ImagePlacement, Record, SampleSpec
from pipelines.tasks.base import Task, TaskInputs
from pipelines.tasks.common import select_images


def join_sentences(text: str, sentence: str) -> str:
    """``text`` and ``sentence`` with one space between them unless either side already has whitespace."""
    if not text or not sentence or text[-1].isspace() or sentence[0].isspace():
        return text + sentence
    return f"{text} {sentence}"


@dataclass(frozen=True)
class InterleavedInputs(TaskInputs):
    task: ClassVar[str] = "interleaved"
    sentences: tuple[str, ...]
    #: per sentence, the indices (into the record's images, ascending) of the figures it references
    figures: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if len(self.figures) != len(self.sentences):
            raise ValueError(f"interleaved: {len(self.figures)} figure lists for {len(self.sentences)} sentences")
        flat = [i for refs in self.figures for i in refs]
        if flat != sorted(set(flat)):
            raise ValueError("interleaved: figure indices must ascend through the text, each once")

    @classmethod
    def example(cls) -> InterleavedInputs:
        return cls(("Chest radiographs were obtained at admission.", "The heart is normal in size (Figure 1).",
                    "No focal consolidation is seen."), ((), (0,), ()))


def build(rng: random.Random, record: Record, inputs: InterleavedInputs, *, max_images: int) -> SampleSpec:
    images = select_images(rng, len(record.images), max_images)
    text, starts = "", {}
    for sentence, refs in zip(inputs.sentences, inputs.figures):
        for i in refs:
            starts[i] = len(text)
        text = join_sentences(text, sentence)
    # a figure no sentence references (the sources give none) goes after the text
    placements = tuple(ImagePlacement("answer", starts.get(i, len(text))) for i in images)
    return SampleSpec("interleaved", "text", "", text, placements, None, images)


TASK = Task("interleaved", InterleavedInputs, build, (), random_choices=False)
