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


def _name(tp: Any) -> str:
    if tp is type(None):
        return "null"
    if typing.get_origin(tp) is tuple:
        return "list"
    if typing.get_origin(tp) is dict or dataclasses.is_dataclass(tp):
        return "object"
    return getattr(tp, "__name__", str(tp))


# Checking is compiled: each annotation becomes, once, a function ``value -> converted value`` (lists -> tuples,
# objects -> dataclasses). The trainer checks every sample's meta.json this way (train.read), so the happy path
# builds no strings and looks nothing up; where a problem lies is assembled only when there is one.
class _Bad(Exception):
    """A problem inside a record; ``path`` collects field names and ``[i]`` indices, innermost first."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.path: list[str] = []

    def where(self) -> str:
        out = ""
        for piece in reversed(self.path):
            out += piece if piece.startswith("[") or not out else "." + piece
        return out


Converter = typing.Callable[[Any], Any]
_COMPILED: dict[Any, Converter] = {}


def _converter(tp: Any) -> Converter:
    fn = _COMPILED.get(tp)
    if fn is None:
        fn = _COMPILED[tp] = _compile(tp)
    return fn


def _primitive(tp: type) -> Converter:
    expected = f"expected {_name(tp)}, got "
    if tp is bool:
        def conv(v):
            if v is True or v is False:
                return v
            raise _Bad(expected + _kind(v))
    elif tp is int:
        def conv(v):
            if type(v) is int or (isinstance(v, int) and not isinstance(v, bool)):
                return v
            raise _Bad(expected + _kind(v))
    elif tp is float:
        def conv(v):
            if type(v) is float:
                return v
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
            raise _Bad(expected + _kind(v))
    else:  # str
        def conv(v):
            if type(v) is str or isinstance(v, str):
                return v
            raise _Bad(expected + _kind(v))
    return conv


def _compile(tp: Any) -> Converter:
    """The converter of the annotation ``tp``. Supports the shapes the schemas use: str, int, bool, float,
    X | None, tuple[X, ...], tuple[X, Y], dict[str, X], dict[str, Any] and schema dataclasses."""
    if tp is Any:
        return lambda v: v
    if tp in (str, int, bool, float):
        return _primitive(tp)
    if dataclasses.is_dataclass(tp):
        return _compile_dataclass(tp)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        nullable = type(None) in options
        convs = [_converter(o) for o in options if o is not type(None)]
        expected = f"expected {' or '.join(_name(o) for o in options)}, got "

        def union(v):
            if v is None and nullable:
                return None
            for c in convs:
                try:
                    return c(v)
                except _Bad:
                    continue
            raise _Bad(expected + _kind(v))
        return union
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            item = _converter(args[0])
            plain = args[0] if args[0] in (str, int) else None

            def tuple_of(v):
                if not isinstance(v, (list, tuple)):
                    raise _Bad(f"expected a list, got {_kind(v)}")
                if plain is not None and all(type(x) is plain for x in v):
                    return tuple(v)
                out, i = [], 0
                try:
                    for i, x in enumerate(v):
                        out.append(item(x))
                except _Bad as bad:
                    bad.path.append(f"[{i}]")
                    raise
                return tuple(out)
            return tuple_of
        items = [_converter(a) for a in args]

        def fixed_tuple(v):
            if not isinstance(v, (list, tuple)):
                raise _Bad(f"expected a list, got {_kind(v)}")
            if len(v) != len(items):
                raise _Bad(f"expected {len(items)} values, got {len(v)}")
            out, i = [], 0
            try:
                for i, (x, c) in enumerate(zip(v, items)):
                    out.append(c(x))
            except _Bad as bad:
                bad.path.append(f"[{i}]")
                raise
            return tuple(out)
        return fixed_tuple
    if origin is dict:
        _, value_type = typing.get_args(tp)
        value = _converter(value_type)
        any_value = value_type is Any

        def mapping(v):
            if not isinstance(v, dict) or not all(type(k) is str or isinstance(k, str) for k in v):
                raise _Bad(f"expected an object, got {_kind(v)}")
            if any_value:
                return dict(v)
            out, k = {}, ""
            try:
                for k, x in v.items():
                    out[k] = value(x)
            except _Bad as bad:
                bad.path.append(k)
                raise
            return out
        return mapping
    raise TypeError(f"schema annotation {tp!r} is not supported")


def _compile_dataclass(cls: type) -> Converter:
    hints = typing.get_type_hints(cls)
    convs = [(f.name, f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
              _converter(hints[f.name])) for f in dataclasses.fields(cls)]

    def record(v):
        if not isinstance(v, dict):
            raise _Bad(f"expected an object, got {_kind(v)}")
        values = {}
        name = ""
        try:
            for name, required, conv in convs:
                if name in v:
                    values[name] = conv(v[name])
                elif required:
                    raise _Bad("missing")
        except _Bad as bad:
            bad.path.append(name)
            raise
        return cls(**values)
    return record


def _from_dict(cls: type[T], data: Any, where: str) -> T:
    try:
        return _converter(cls)(data)
    except _Bad as bad:
        inner = bad.where()
        path = f"{where}.{inner}" if where and inner else (where or inner or cls.__name__)
        raise SchemaError(f"{path}: {bad.message}") from None


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
    ``npy``) and, for a multi-series ``.npy``, which series; ``store`` names the figure store whose root ``path``
    is relative to when it is not the dataset's raw root (spec 1.3)."""

    path: str
    kind: str
    series: int
    store: str = ""


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
    #: diagnosis samples (spec 1.2): the finding names of the image(s), in the dataset's order (empty: normal), and
    #: the dataset's label set (every finding name and its normal label), for per-finding evaluation
    findings: tuple[str, ...] = ()
    label_set: tuple[str, ...] = ()
    #: for evaluation (spec 1.3): a VQA answer's type, ``closed`` | ``open`` ("" when the dataset does not say),
    #: and a multiple-choice question's options in the dataset's order (empty otherwise)
    answer_type: str = ""
    choices: tuple[str, ...] = ()

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


def parse_manifest(data: Any) -> tuple[Manifest | None, list[tuple[int, ManifestShard]], list[str]]:
    """A manifest read the way tools that go on past a bad entry need it (inspect, validate): the manifest
    without its shard list (``None`` when its own keys are mistyped), every well-typed shard entry with its
    position, and one problem per mistyped key or entry (``shards[3].samples: expected int, got str``)."""
    if not isinstance(data, dict):
        return None, [], [f"top level: expected an object, got {_kind(data)}"]
    problems: list[str] = []
    head = None
    try:
        head = Manifest.from_dict({**data, "shards": []})
    except SchemaError as exc:
        problems.append(str(exc))
    raw_shards = data.get("shards")
    entries: list[tuple[int, ManifestShard]] = []
    if not isinstance(raw_shards, list):
        if "shards" in data:  # a missing key is already the head's problem
            problems.append(f"shards: expected a list, got {_kind(raw_shards)}")
        return head, entries, problems
    for i, raw in enumerate(raw_shards):
        try:
            entries.append((i, ManifestShard.from_dict(raw)))
        except SchemaError as exc:
            text = str(exc)
            problems.append(f"shards[{i}]" + (text[len("ManifestShard"):] if text.startswith("ManifestShard:")
                                               else "." + text))
    return head, entries, problems
