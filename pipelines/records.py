"""The small value types that flow through a build.

``Record``  one source item (an image + report, a case with its series …), made by a source.
``SampleSpec``  one training sample derived from a record by a task (question, answer,
               where each image goes).
``Job``  a record + spec + key: the unit a shard worker turns into a written sample.
``Reject``  anything that did not become a sample, with a reason code and message.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pipelines.text import ImagePlacement

#: How a shard worker loads an image reference.
ImageKind = Literal["image2d", "volume", "npy"]


@dataclass(frozen=True)
class ImageRef:
    path: str  # relative to the raw root, POSIX separators
    kind: ImageKind
    index: int = 0  # series index inside a multi-series .npy


@dataclass(frozen=True)
class Record:
    dataset: str
    source_id: str  # stable, unique within the dataset
    split: str
    stream: Literal["2d", "3d"]
    images: tuple[ImageRef, ...]
    fields: dict[str, Any] = field(default_factory=dict)  # text fields the tasks read
    modality: str = ""


@dataclass(frozen=True)
class SampleSpec:
    task: str
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
    reason: str  # snake_case code: missing_file, undecodable, bad_row, too_long …
    message: str
    stage: str  # plan | preprocess | encode
    task: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def sample_key(dataset: str, source_id: str, task: str, variant: str) -> str:
    """Stable key without dots: ``<dataset>_<20 hex>`` from dataset, source id, task, variant."""
    digest = hashlib.blake2b(f"{dataset}\0{source_id}\0{task}\0{variant}".encode("utf-8"), digest_size=10)
    return f"{dataset}_{digest.hexdigest()}"


def derive_seed(*parts: object) -> int:
    """A 64-bit seed from any parts, stable across processes and Python versions."""
    digest = hashlib.blake2b("\0".join(map(str, parts)).encode("utf-8"), digest_size=8)
    return int.from_bytes(digest.digest(), "little")
