"""The format's JSON records as types, defined once for the writer, the validator, the inspector and the trainer.

``SampleMeta``   a sample's ``meta.json`` member (SPEC §3.2), with ``ImageEntry`` and ``ImageSpan``
``IndexEntry``   one sample of a shard's index sidecar (SPEC §4); ``ShardIndex`` the whole sidecar
``Manifest``     a dataset's ``manifest.json`` (SPEC §5), with ``ManifestShard`` and ``RejectSummary``

``to_dict()`` gives exactly what is written (sequences become JSON lists). ``from_dict()`` checks every key and
type and raises :class:`SchemaError` naming the first problem (``images[1].series: expected int, got str``), so a
reader can treat a mistyped record as a bad sample instead of crashing on it. Keys a reader does not know are
ignored: a minor spec version may add keys (SPEC §7).

Values are checked by type only; the rules between values (labels equal ids where learned, spans in range …) are
the validator's (``shards_spec.validate``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


class SchemaError(ValueError):
    """A JSON record does not have the keys and types of its schema."""


def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "null"


def _convert(value: Any, tp: Any, where: str) -> Any:
    """``value`` (parsed JSON) checked against the annotation ``tp`` and converted (lists -> tuples, objects ->
    dataclasses). Supports the shapes the schemas use: str, int, bool, float, X | None, tuple[X, ...],
    tuple[X, Y], dict[str, X], dict[str, Any] and schema dataclasses."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(value, option, where)
            except SchemaError:
                continue
        raise SchemaError(f"{where}: expected {' or '.join(_name(o) for o in options)}, got {_kind(value)}")
    if dataclasses.is_dataclass(tp):
        return _from_dict(tp, value, where)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise SchemaError(f"{where}: expected a list, got {_kind(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise SchemaError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        _, value_type = typing.get_args(tp)
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise SchemaError(f"{where}: expected an object, got {_kind(value)}")
        return {k: _convert(v, value_type, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"{where}: schema annotation {tp!r} is not supported")
    raise SchemaError(f"{where}: expected {_name(tp)}, got {_kind(value)}")


def _name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if typing.get_origin(tp) is tuple:
        return "list"
    if typing.get_origin(tp) is dict or dataclasses.is_dataclass(tp):
        return "object"
    return getattr(tp, "__name__", str(tp))


def _from_dict(cls: type[T], data: Any, where: str) -> T:
    if not isinstance(data, dict):
        raise SchemaError(f"{where or cls.__name__}: expected an object, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        path = f"{where}.{f.name}" if where else f.name
        if f.name not in data:
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING:
                continue
            raise SchemaError(f"{path}: missing")
        values[f.name] = _convert(data[f.name], hints[f.name], path)
    return cls(**values)


class _Record:
    """``to_dict`` / ``from_dict`` for the schema dataclasses below."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], data: Any) -> T:
        return _from_dict(cls, data, "")


# ------------------------------------------------------------------------------------------------- meta.json
@dataclass(frozen=True)
class ImageEntry(_Record):
    """One stored image: its file relative to the raw root, how it was loaded (``image2d`` | ``volume`` |
    ``npy``) and, for a multi-series ``.npy``, which series."""

    path: str
    kind: str
    series: int


@dataclass(frozen=True)
class ImageSpan(_Record):
    """Where image ``image``'s 34-token span sits: requested at character ``char`` of the question or answer
    (``where``), found at token ``token_start``."""

    image: int
    where: str
    char: int
    token_start: int


#: Keys every ``special_ids`` object has (``bos`` may be null: a tokenizer without BOS).
SPECIAL_ID_KEYS = ("bos", "eos", "base_vocab")


@dataclass(frozen=True)
class SampleMeta(_Record):
    """A sample's ``meta.json`` (SPEC §3.2)."""

    spec_version: str
    key: str
    dataset: str
    split: str
    stream: str
    task: str
    variant: str
    prompt_id: str | None
    question: str
    answer: str
    truncated: bool
    modality: str
    source_id: str
    source_paths: tuple[str, ...]
    images: tuple[ImageEntry, ...]
    image_spans: tuple[ImageSpan, ...]
    vision_shape: tuple[int, ...]
    n_tokens: int
    n_question_tokens: int
    keywords: tuple[str, ...]
    tokenizer: str
    special_ids: dict[str, int | None]
    #: what the build's text hygiene repaired in the text this sample was made from (spec 1.2):
    #: ``control_chars`` removed, ``non_utf8`` bytes decoded by the documented fallback
    text_fixes: dict[str, int] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any) -> SampleMeta:
        meta = _from_dict(cls, data, "")
        for k in SPECIAL_ID_KEYS:
            if k not in meta.special_ids or (k != "bos" and meta.special_ids[k] is None):
                raise SchemaError(f"special_ids.{k}: missing")
        return meta


# ------------------------------------------------------------------------------------------------- index sidecar
@dataclass(frozen=True)
class IndexEntry(_Record):
    """One sample in a shard's index sidecar (SPEC §4): where its members are, and what the trainer plans with
    without reading the tar (task, token count, image count, depth)."""

    key: str
    offset: int  # header offset of the sample's first member
    size: int  # bytes from ``offset`` to the end of its last member's data
    members: dict[str, tuple[int, int]]  # field -> (data offset, size)
    task: str
    n_tokens: int
    n_images: int
    depth: int


@dataclass(frozen=True)
class ShardIndex(_Record):
    spec_version: str
    shard: str  # the tar's file name
    sha256: str  # of the tar
    samples: tuple[IndexEntry, ...]


# ------------------------------------------------------------------------------------------------- manifest
@dataclass(frozen=True)
class ManifestShard(_Record):
    path: str  # relative to the dataset directory
    split: str
    stream: str
    samples: int
    bytes: int
    sha256: str
    tasks: dict[str, int]


@dataclass(frozen=True)
class RejectSummary(_Record):
    total: int
    by_reason: dict[str, int]
    file: str  # the rejects file, relative to the dataset directory


@dataclass(frozen=True)
class Manifest(_Record):
    """A dataset's ``manifest.json`` (SPEC §5)."""

    spec_version: str
    dataset: str
    tokenizer: dict[str, Any] | str  # the tokenizer identity (spec 1.1; a fingerprint string in 1.0)
    build: dict[str, Any]  # mode, splits, the full build config, keyword matcher, tokenizer name
    samples: int
    counts: dict[str, dict[str, int]]  # "task" (keyed <stream>/<split>/<task>), "split", "stream"
    rejects: RejectSummary
    shards: tuple[ManifestShard, ...]
