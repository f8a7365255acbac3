"""The small value types that flow through a build (leaf types: they import nothing of the pipeline).

``ImageRef``       one image of a record: a path under the raw root and how the worker loads it.
``RecordFields``   the typed text a source's tasks read (each source subclasses it).
``Record``         one source item (an image + report, a case with its series …), made by a source.
``TextFixes``      what the build's text hygiene repaired in a record's text.
``ImagePlacement`` where one image's token span goes in the question or the answer (RadFM's rule).
``SampleSpec``     one training sample derived from a record by a task (question, answer, image positions).
``Job``            a record + spec + key: the unit a shard worker turns into a written sample.
``Reject``         anything that did not become a sample, with a reason code and message.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Generic, Literal, TypeVar

#: How a shard worker loads an image reference (``meta.json`` ``images[].kind``): a 2D image, a volume (a file or
#: a slice folder), or one series of a RadFM ``.npy`` (``[S, C, H, W, D]``).
LoadAs = Literal["image2d", "volume", "npy"]
Stream = Literal["2d", "3d"]


@dataclass(frozen=True)
class ImageRef:
    path: str  # relative to the raw root, POSIX separators
    load_as: LoadAs
    series: int = 0  # series index inside a multi-series .npy


@dataclass(frozen=True)
class RecordFields:
    """Base of the per-source record fields: a frozen dataclass holding what that source's tasks need."""


F = TypeVar("F", bound=RecordFields)


@dataclass(frozen=True)
class TextFixes:
    """What text hygiene repaired in a record's text (``pipelines.hygiene``; ``meta.json`` ``text_fixes``)."""

    control_chars: int = 0  # C0/C1 control characters and DEL removed
    non_utf8: int = 0  # bytes that were not UTF-8, decoded as Windows-1252 (or lone surrogates replaced)

    def __add__(self, other: TextFixes) -> TextFixes:
        return TextFixes(self.control_chars + other.control_chars, self.non_utf8 + other.non_utf8)


@dataclass(frozen=True, kw_only=True)
class Record(Generic[F]):
    dataset: str
    source_id: str  # stable, unique within the dataset
    split: str
    stream: Stream
    images: tuple[ImageRef, ...]
    fields: F
    modality: str = ""
    text_fixes: TextFixes = TextFixes()  # set by the build's text hygiene, never by a source


@dataclass(frozen=True)
class ImagePlacement:
    """Where image ``i`` of a sample goes: RadFM's ``{"question"|"answer": p}`` (the span is inserted before
    character ``max(p - 1, 0)``)."""

    where: Literal["question", "answer"]
    char: int


@dataclass(frozen=True)
class SampleSpec:
    task: str  # the task registry name, written to meta.json
    variant: str
    question: str
    answer: str
    placements: tuple[ImagePlacement, ...]  # one per image, in image order
    prompt_id: str | None = None
    #: indices into Record.images of the images this sample uses (cap on image count)
    image_indices: tuple[int, ...] = ()


@dataclass(frozen=True)
class Job:
    key: str
    record: Record
    spec: SampleSpec


@dataclass(frozen=True)
class Reject:
    dataset: str
    source_id: str
    file: str  # relative to the raw root ("" when the reject is not about one file)
    reason: str  # snake_case code: missing_file, undecodable, bad_row, too_long … (SPEC §6)
    message: str
    stage: str  # plan | preprocess | encode
    task: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class FileReject(Reject):
    """A whole input file that could not be used (missing, unreadable, wrong shape): its rows are neither samples
    nor row rejects. When a build has no record at all and such rejects, nothing can be built and it says which
    files (``pipelines.build``)."""
