"""Training configuration: one flat dataclass, loaded from YAML, with ``--set key=value`` overrides.

Paths in the YAML (``sources[].path``, ``checkpoint``, ``tokenizer``, ``output_dir``) are taken relative to the
working directory, as a shell would. ``deepspeed`` is looked up relative to the working directory, then the YAML
file's directory, then the repository root, so ``deepspeed: ds_zero2.json`` next to the YAML works from anywhere.

Overrides use dotted keys with list indices and YAML values::

    --set steps=10 --set lr=1e-3 --set sources.0.weight=2 --set 'depth_choices=[4,8]'

Every problem with a config is a :class:`ConfigError` (a ``ValueError``) whose message is one line for the user;
an unknown key names the nearest known one (``unknown key 'step' (did you mean 'steps'?)``).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]

LR_SCHEDULES = ("cosine", "linear", "constant")


class ConfigError(ValueError):
    """A config the trainer cannot run: the message says which key and what to do."""


def unknown_keys_message(where: str, unknown: list[str], known) -> str:
    """``config: unknown key 'step' (did you mean 'steps'?)``; several keys are listed with a suggestion each."""
    known = sorted(known)
    parts = []
    for key in unknown:
        near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        if not near:  # a prefix or a word of a known key ("batch" -> batch_size_2d)
            near = [k for k in known if k.startswith(key) or key in k.split("_")][:1]
        parts.append(f"{key!r}" + (f" (did you mean {near[0]!r}?)" if near else ""))
    noun = "key" if len(unknown) == 1 else "keys"
    return f"{where}: unknown {noun} {', '.join(parts)}"
RESIZE_MODES = ("trilinear", "nearest")
LOSS_REDUCTIONS = ("weighted", "mean")


@dataclass
class SourceConfig:
    """One shard source: a dataset directory, a directory of dataset directories, a ``manifest.json``,
    or a brace pattern of local tar paths (``/x/mimic-train-2d-{000000..000005}.tar``)."""

    path: str
    #: Expected visits per sample per stream epoch (2 = every shard twice, 0.5 = a seeded half of them).
    weight: float = 1.0
    #: Splits to use; ``None`` means ``["train"]`` for manifests/directories and "no filter" for URL patterns.
    splits: list[str] | None = None


@dataclass
class TrainConfig:
    # ---------------------------------------------------------------- data
    sources: list[SourceConfig] = field(default_factory=list)
    batch_size_2d: int = 4  # RadFM's batch_size_2D
    batch_size_3d: int = 1  # RadFM's batch_size_3D
    #: Samples of a stream per micro-step over all ranks; the batch order is a function of this (and the seed, the
    #: lanes and the data), never of the world size. None: batch_size x the world size of the run's first launch,
    #: then kept by its checkpoints (a resume on another world size changes the per-rank batch, not the order).
    global_batch_size_2d: int | None = None
    global_batch_size_3d: int | None = None
    #: Canonical partitions of each stream (divide the global batch sizes). None: the first launch's world size.
    lanes: int | None = None
    #: Fraction of micro-batches that are 2D; None = proportional to the two streams' (weighted) batch counts.
    stream_ratio_2d: float | None = None
    num_workers: int = 1  # DataLoader workers per stream and rank (0 = in the training process)
    prefetch_factor: int = 2
    shuffle_block_2d: int = 256  # K: samples per shuffle block
    shuffle_block_3d: int = 32
    interleave: int = 4  # M: shards read round-robin at a time by one worker
    length_grouping: bool = True  # sort each block by length into batches, then shuffle the batch order
    augment: bool = True  # RandomResizedCrop on 2D images, as RadFM
    crop_scale: list[float] = field(default_factory=lambda: [0.8, 1.0])
    crop_ratio: list[float] = field(default_factory=lambda: [3 / 4, 4 / 3])
    resize_mode: str = "trilinear"  # "nearest" reproduces RadFM's F.interpolate default
    depth_choices: list[int] = field(default_factory=lambda: list(range(4, 65, 4)))
    image_size_default: int = 512
    image_size_single_3d: int = 256  # H = W for a batch of one sample whose target depth > 4
    many_images_threshold: int = 6  # a batch of one sample with more images than this ...
    many_images_max_depth: int = 32  # ... is limited to this depth
    image_size: int | None = None  # force H = W for every batch (tests / small machines)
    vision_dtype: str = "float32"  # dtype of vision_x leaving the loader ("float32" or "bfloat16")
    dense_vision: bool = False  # materialise vision_x (default: grey channels / 2D slices are broadcast views)

    # ---------------------------------------------------------------- model
    model: str = "tiny"  # preset name (model.config.PRESETS) when no checkpoint is given
    model_overrides: dict[str, Any] = field(default_factory=dict)
    #: our save_pretrained directory, or RadFM's official pytorch_model.bin (load_official_checkpoint)
    checkpoint: str | None = None
    tokenizer: str | None = None  # only used to log decoded text ("default" = the builder's tokenizer)
    #: Train although the shards' tokenizer differs from the one the model was trained with (experiments only:
    #: the same ids then mean other pieces). A differing base vocabulary is refused regardless.
    allow_tokenizer_mismatch: bool = False
    gradient_checkpointing: bool = True  # activation checkpointing in the LLM decoder layers, as RadFM (always on there)
    #: build the model inside deepspeed.zero.Init (partitioned at construction); "auto": ZeRO-3 without checkpoint
    zero_init: str | bool = "auto"

    # ---------------------------------------------------------------- optimisation
    deepspeed: str = "train/configs/ds_zero2.json"
    steps: int = 1000  # optimizer steps; every rank runs exactly this many
    #: When set, ``steps`` is derived at start: ``ceil(epochs x micro-batches of one pass over both streams
    #: (weights applied) / (world size x gradient_accumulation_steps))``, as a Hugging Face Trainer counts epochs.
    epochs: float | None = None
    gradient_accumulation_steps: int = 1
    lr: float = 1e-4
    lr_schedule: str = "cosine"
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1  # final lr = lr * min_lr_ratio (cosine / linear)
    weight_decay: float = 0.0
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    adam_eps: float = 1e-8
    grad_clip: float | None = 1.0
    loss_reduction: str = "weighted"  # "weighted" (RadFM's intended loss) or "mean"

    # ---------------------------------------------------------------- run
    output_dir: str = "runs/train"
    seed: int = 0
    checkpoint_interval: int = 0  # optimizer steps between checkpoints (0: only the final one)
    save_final: bool = True
    export_final: bool = True  # write <output_dir>/final (RadFMForCausalLM.save_pretrained format) at the end
    keep_checkpoints: int = 3  # newest checkpoints kept (0: keep all)
    resume: str | bool = False  # False, "auto" (latest in output_dir/checkpoints if any) or a tag dir
    stop_after: int | None = None  # leave after this step without a final checkpoint (simulates a kill)
    progress: bool = True  # tqdm bar on rank 0
    log_text_every: int = 0  # with a tokenizer: log the decoded answer of one sample every N steps

    # ---------------------------------------------------------------- evaluation (evaluation.during_training)
    eval_every: int = 0  # optimizer steps between evaluations on eval_shards (0: never)
    eval_shards: list[str] = field(default_factory=list)  # held-out sources: dataset dirs, manifests, tar patterns
    eval_splits: list[str] = field(default_factory=lambda: ["test"])  # splits read from eval_shards' manifests
    eval_limit: int | None = 8  # at most this many samples per dataset and task (None: all)
    eval_batch_size: int = 4
    eval_max_new_tokens: int = 64

    def validate(self) -> None:
        if not self.sources:
            raise ConfigError("config: 'sources' is empty")
        if self.batch_size_2d < 1 or self.batch_size_3d < 1:
            raise ConfigError("config: batch sizes must be >= 1")
        if self.steps < 1:
            raise ConfigError("config: steps must be >= 1")
        for key in ("global_batch_size_2d", "global_batch_size_3d", "lanes"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ConfigError(f"config: {key} must be >= 1 (or null)")
        if self.gradient_accumulation_steps < 1:
            raise ConfigError("config: gradient_accumulation_steps must be >= 1")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"config: lr_schedule must be one of {LR_SCHEDULES}")
        if self.resize_mode not in RESIZE_MODES:
            raise ConfigError(f"config: resize_mode must be one of {RESIZE_MODES}")
        if self.loss_reduction not in LOSS_REDUCTIONS:
            raise ConfigError(f"config: loss_reduction must be one of {LOSS_REDUCTIONS}")
        if self.stream_ratio_2d is not None and not 0.0 <= self.stream_ratio_2d <= 1.0:
            raise ConfigError("config: stream_ratio_2d must be in [0, 1]")
        if self.num_workers < 0 or self.interleave < 1:
            raise ConfigError("config: num_workers must be >= 0 and interleave >= 1")
        if self.shuffle_block_2d < 1 or self.shuffle_block_3d < 1:
            raise ConfigError("config: shuffle blocks must be >= 1")
        if sorted(self.depth_choices) != list(self.depth_choices) or not self.depth_choices:
            raise ConfigError("config: depth_choices must be a non-empty increasing list")
        if self.vision_dtype not in ("float32", "bfloat16"):
            raise ConfigError("config: vision_dtype must be float32 or bfloat16")
        if self.epochs is not None and not self.epochs > 0:
            raise ConfigError("config: epochs must be > 0 (or null to use steps)")
        if self.stop_after is not None and self.stop_after < 1:
            raise ConfigError("config: stop_after must be >= 1")
        for s in self.sources:
            if s.weight < 0:
                raise ConfigError(f"config: source {s.path}: weight must be >= 0")
        if self.eval_every < 0 or (self.eval_every > 0 and not self.eval_shards):
            raise ConfigError("config: eval_every must be >= 0, and eval_shards must name the held-out shards when it is > 0")
        if self.eval_batch_size < 1 or self.eval_max_new_tokens < 1 or (self.eval_limit is not None and self.eval_limit < 1):
            raise ConfigError("config: eval_batch_size, eval_max_new_tokens and eval_limit must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(unknown_keys_message("config", unknown, known))
        d = dict(d)
        d["sources"] = [_source(s) for s in d.get("sources") or []]
        types = {f.name: str(f.type) for f in dataclasses.fields(cls)}
        for k, v in list(d.items()):
            d[k] = _coerce(k, v, types[k])
        cfg = cls(**d)
        cfg.validate()
        return cfg


_SCALARS = {"int": int, "float": float, "bool": bool, "str": str, "None": type(None)}


def _coerce(name: str, value: Any, type_str: str) -> Any:
    """YAML 1.1 reads ``3e-3`` as a string; turn such strings into the field's number type. A scalar field
    (``int``, ``float | None``, ``str | bool`` …) whose value has none of its types is refused by name."""
    if isinstance(value, str) and type_str.split(" |")[0] in ("float", "int"):
        try:
            return float(value) if type_str.startswith("float") else int(value)
        except ValueError:
            raise ConfigError(f"config: {name} must be a number, got {value!r}") from None
    if isinstance(value, int) and not isinstance(value, bool) and type_str.startswith("float"):
        return float(value)
    names = [t.strip() for t in type_str.split("|")]
    if all(t in _SCALARS for t in names):
        ok = any(type(value) is _SCALARS[t] or (t == "float" and type(value) is int) for t in names)
        if not ok:
            wanted = " or ".join("null" if t == "None" else t for t in names)
            raise ConfigError(f"config: {name} must be {wanted}, got {type(value).__name__} {value!r}")
    return value


def _source(s: Any) -> SourceConfig:
    if isinstance(s, SourceConfig):
        return s
    if isinstance(s, str):
        return SourceConfig(path=s)
    if not isinstance(s, dict) or "path" not in s:
        raise ConfigError(f"config: a source must be a path or a mapping with 'path', got {s!r}")
    unknown = sorted(set(s) - {"path", "weight", "splits"})
    if unknown:
        raise ConfigError(unknown_keys_message(f"config: source {s['path']}", unknown, ("path", "weight", "splits")))
    splits = s.get("splits")
    if isinstance(splits, str):
        splits = [splits]
    return SourceConfig(path=str(s["path"]), weight=float(s.get("weight", 1.0)), splits=splits)


def apply_override(d: dict[str, Any], assignment: str) -> None:
    """Apply one ``dotted.key=value`` (value parsed as YAML) to the raw config dict ``d`` in place."""
    if "=" not in assignment:
        raise ConfigError(f"--set expects key=value, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    try:
        _apply(d, key, yaml.safe_load(raw) if raw != "" else None)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {assignment}: the value is not YAML ({_first_line(exc)})") from None
    except (IndexError, ValueError, TypeError, AttributeError) as exc:
        raise ConfigError(f"--set {assignment}: no such place in the config ({exc})") from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _apply(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.strip().split(".")
    node: Any = d
    for i, part in enumerate(parts[:-1]):
        nxt_is_index = parts[i + 1].isdigit()
        if isinstance(node, list):
            if isinstance(node[int(part)], str):  # a source given as a bare path
                node[int(part)] = {"path": node[int(part)]}
            node = node[int(part)]
        else:
            if part not in node or node[part] is None:
                node[part] = [] if nxt_is_index else {}
            node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        idx = int(last)
        if idx == len(node):
            node.append(value)
        else:
            node[idx] = value
    else:
        node[last] = value


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainConfig:
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        raw = loaded or {}
    raw = {k: v for k, v in raw.items()}
    raw["sources"] = [s if not isinstance(s, SourceConfig) else dataclasses.asdict(s) for s in raw.get("sources") or []]
    for a in overrides or []:
        apply_override(raw, a)
    _settle_run_length(raw, str(path), overrides or [])
    cfg = TrainConfig.from_dict(raw)
    cfg._config_path = str(path) if path is not None else None  # type: ignore[attr-defined]
    return cfg


def _settle_run_length(raw: dict[str, Any], path: str, overrides: list[str]) -> None:
    """``steps`` or ``epochs``: the command line names the run's length over the file. ``--set steps=N`` over a
    file's ``epochs`` drops the epochs (N steps run); ``--set epochs=X`` over a file's ``steps`` derives the
    steps from X. Both given (non-null) in the same place -- the file, or the ``--set`` list -- is refused."""
    in_set = {key for key in ("steps", "epochs") if raw.get(key) is not None
              and any(a.split("=", 1)[0].strip() == key for a in overrides)}
    both = raw.get("steps") is not None and raw.get("epochs") is not None
    if len(in_set) == 2 or (both and not in_set):
        where = "--set" if in_set else path
        raise ConfigError(f"{where}: both 'steps' and 'epochs' are set; set one of them (epochs=null to count steps)")
    if in_set == {"steps"}:
        raw["epochs"] = None


def resolve_deepspeed_path(cfg: TrainConfig) -> Path:
    """The DeepSpeed JSON: as given, else next to the YAML, else under the repository root."""
    p = Path(cfg.deepspeed)
    candidates = [p]
    if not p.is_absolute():
        cfg_path = getattr(cfg, "_config_path", None)
        if cfg_path:
            candidates.append(Path(cfg_path).parent / p)
        candidates.append(REPO_ROOT / p)
    for c in candidates:
        if c.is_file():
            return c
    raise ConfigError(f"config: deepspeed {cfg.deepspeed!r} not found (tried {', '.join(str(c) for c in candidates)}; "
                      "train/configs/ has ds_zero2.json, ds_zero3.json and their _fp32 variants)")
