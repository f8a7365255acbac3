"""Train a RadFM-style model on 2D + 3D WebDataset shards with DeepSpeed.

    deepspeed train/run.py                    (no --config: the default config, see below)
    deepspeed --num_gpus 2 train/run.py --config train/configs/demo-cpu.yaml [--set steps=10] [--resume]
    deepspeed --num_gpus 2 --module train.run --config ...
    torchrun --nproc_per_node 2 -m train.run --config ...     (or torchrun ... train/run.py)
    python -m train.run --config ...                          (one process)

Launched as a script (``train/run.py``) it imports the installed ``train`` package (``make setup`` installs the
project); launched as a module from the repository root it needs nothing installed.

Without ``--config`` it runs ``train/configs/radfm-13b-a100.yaml`` (RadFM's recipe: RadFM-13B, ZeRO-3 bf16, on every
dataset under ``data/shards``) when CUDA is available, else ``train/configs/demo-cpu.yaml`` (the tiny model on
the same shards), and says which it chose; ``--set`` still applies.

config -> shard sources (resolved first: a config that points at no shards fails in seconds, before DeepSpeed and
the model exist) -> model and optimizer -> (resume) -> streams -> loop -> checkpoint. The pieces live in ``train.config``,
``train.sources``, ``train.schedule``, ``train.stream``, ``train.collate``, ``train.logs`` and
``train.checkpoint``; their docstrings explain the design (equal step counts on every rank, exact resumption,
what an epoch is).

On a machine without CUDA this sets ``DS_ACCELERATOR=cpu`` before importing DeepSpeed and uses gloo.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import os
import random
import socket
import sys
import time
import warnings
from dataclasses import astuple, dataclass
from pathlib import Path

if __package__ in (None, "") and importlib.util.find_spec("train") is None:  # launched as a script, not installed
    sys.exit("train/run.py imports the installed 'train' package: run `make setup`, set PYTHONPATH to the repository, "
             "or launch the module from the repository root (python -m train.run / deepspeed --module train.run)")

import numpy as np
import torch

from shards_spec.layout import IGNORE_INDEX
from train import checkpoint as ckpt
from train.collate import CollateConfig
from train.config import REPO_ROOT, ConfigError, TrainConfig, load_config, resolve_deepspeed_path
from train.logs import StepLogger
from train.schedule import STREAM_2D, STREAM_3D, StepSchedule, default_ratio_2d
from train.sources import ShardRef, SourceError, bind_model_tokenizer, resolve_sources, weighted_samples
from train.stream import StreamConfig, StreamLoader, merge_states

MODEL_INPUTS = ("input_ids", "attention_mask", "vision_x", "labels", "loss_weight")

# DeepSpeed's ZeRO calls a collective that torch deprecated; the warning repeats on every rank.
warnings.filterwarnings("ignore", message=r".*all_gather_into_tensor.*is deprecated", category=FutureWarning)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="RadFM streaming trainer (DeepSpeed)")
    p.add_argument("--config", default=None,
                   help="YAML config (see train/configs/); default: train/configs/radfm-13b-a100.yaml where CUDA is available, "
                        "else train/configs/demo-cpu.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key (dotted, YAML value); repeatable")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="resume from the latest checkpoint in output_dir (or from the given directory)")
    p.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


#: The config a run without ``--config`` uses: RadFM's recipe where there is a GPU, the demo where there is none.
DEFAULT_CONFIG_GPU = REPO_ROOT / "train" / "configs" / "radfm-13b-a100.yaml"
DEFAULT_CONFIG_CPU = REPO_ROOT / "train" / "configs" / "demo-cpu.yaml"


def default_config() -> tuple[Path, str]:
    """``(config path, why)`` for a run started without ``--config``."""
    if torch.cuda.is_available():
        return DEFAULT_CONFIG_GPU, "CUDA is available: RadFM's recipe (RadFM-13B, ZeRO-3 bf16) on data/shards"
    return DEFAULT_CONFIG_CPU, "no GPU: the tiny demo model on data/shards (`make demo` builds them)"


def _is_rank0() -> bool:
    return os.environ.get("RANK", "0") == "0"


# ----------------------------------------------------------------------------------------------- environment
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StaleLockError(RuntimeError):
    """A JIT-build lock left by a killed run, on which DeepSpeed would wait forever; the message names it."""


#: A build lock nobody on this machine holds open and whose build directory has not changed for this long was
#: left by a killed build (a live build writes its objects and ninja log well within it).
STALE_LOCK_MINUTES = 10.0


def _held_open(path: Path) -> bool | None:
    """Whether a process on this machine has ``path`` open (torch's build lock keeps its descriptor open until
    released); None where ``/proc`` cannot tell. Processes of other users, unreadable, are not seen."""
    proc = Path("/proc")
    if not (proc / "self" / "fd").is_dir():
        return None
    target = os.path.realpath(path)
    for fd_dir in proc.glob("[0-9]*/fd"):
        try:
            for fd in os.scandir(fd_dir):
                try:
                    if os.readlink(fd.path) == target:
                        return True
                except OSError:
                    continue
        except OSError:  # the process ended, or belongs to another user
            continue
    return False


def extension_locks(root: str | Path | None = None, minutes: float = STALE_LOCK_MINUTES,
                    now: float | None = None) -> tuple[list[Path], list[Path]]:
    """``(stale, unheld)`` torch JIT-build locks (``<root>/<extension>/lock``, or ``<root>/py311_cpu/...`` under
    torch's default root) that no process on this machine holds open: ``stale`` when nothing in the build
    directory changed for ``minutes``, ``unheld`` when more recently (a build killed a moment ago, or one
    running on another node that shares the directory)."""
    if root is None:
        from torch.utils.cpp_extension import get_default_build_root

        root = os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()
    root = Path(root)
    now = time.time() if now is None else now
    stale, unheld = [], []
    for lock in sorted({*root.glob("*/lock"), *root.glob("*/*/lock")}):
        try:
            changed = max([lock.stat().st_mtime] + [e.stat().st_mtime for e in os.scandir(lock.parent)])
        except OSError:  # released meanwhile
            continue
        if _held_open(lock):
            continue
        (stale if now - changed >= minutes * 60 else unheld).append(lock)
    return stale, unheld


def check_extension_locks(root: str | Path | None = None, minutes: float = STALE_LOCK_MINUTES) -> None:
    """Before DeepSpeed JIT-builds or loads an op: a lock left by a killed build would make it wait forever
    without a word. A stale one stops the run with one line naming the file to delete (removing it here could
    race with another rank's build); a recent unheld one is named in a warning."""
    stale, unheld = extension_locks(root, minutes)
    if stale:
        raise StaleLockError(f"{stale[0]} is a JIT-build lock left by a killed run (no process holds it, nothing "
                             f"changed for {minutes:g} min) on which DeepSpeed would wait forever: delete it "
                             f"(rm {' '.join(str(p) for p in stale)}) and start again")
    for lock in unheld:
        print(f"[train] warning: {lock} exists but no process here holds it: DeepSpeed waits until it is gone; "
              "if no other node is building this extension, it was left by a killed run: delete it",
              file=sys.stderr, flush=True)


def setup_distributed():
    """Pick the accelerator (CPU when there is no CUDA), then initialise torch.distributed via DeepSpeed."""
    on_cpu = not torch.cuda.is_available()
    if on_cpu:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
        # DeepSpeed JIT-builds its CPU communication op once; keep it with the repository's other caches.
        os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(__file__).resolve().parents[1] / ".cache" / "torch_extensions"))
    check_extension_locks()
    for k, v in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0"), ("MASTER_ADDR", "127.0.0.1")):
        os.environ.setdefault(k, v)
    if "MASTER_PORT" not in os.environ:
        os.environ["MASTER_PORT"] = str(_free_port())
    import deepspeed  # noqa: E402  (after DS_ACCELERATOR)

    deepspeed.init_distributed(dist_backend="gloo" if on_cpu else "nccl", auto_mpi_discovery=False)
    if not on_cpu:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    return deepspeed, on_cpu


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------------------------- data
def stream_ratio(cfg: TrainConfig, shards: dict[str, list[ShardRef]], global_batches: tuple[int, int] | None = None,
                 world: int = 1) -> float:
    """The share of 2D micro-batches: ``stream_ratio_2d``, or proportional to the streams' global batch counts
    (``global_batches``: the streams' global batch sizes; default the per-rank sizes x ``world``)."""
    n2, n3 = weighted_samples(shards[STREAM_2D]), weighted_samples(shards[STREAM_3D])
    if cfg.stream_ratio_2d is None:
        g2, g3 = global_batches or (cfg.batch_size_2d * world, cfg.batch_size_3d * world)
        return default_ratio_2d(n2, n3, g2, g3)
    ratio = cfg.stream_ratio_2d
    if (ratio > 0 and n2 == 0) or (ratio < 1 and n3 == 0):
        raise ConfigError(f"config: stream_ratio_2d={ratio} but the 2D stream has {n2:g} and the 3D stream {n3:g} "
                          "samples")
    return ratio


def steps_for_epochs(cfg: TrainConfig, shards: dict[str, list[ShardRef]], world: int) -> int:
    """Optimizer steps for ``cfg.epochs`` passes over both streams (see ``TrainConfig.epochs``)."""
    micro = (math.ceil(weighted_samples(shards[STREAM_2D]) / cfg.batch_size_2d)
             + math.ceil(weighted_samples(shards[STREAM_3D]) / cfg.batch_size_3d))
    return max(1, math.ceil(cfg.epochs * micro / (world * cfg.gradient_accumulation_steps)))


def global_order(cfg: TrainConfig, stream: str, world: int, state: dict | None) -> tuple[int, int]:
    """``(global batch size, lanes)`` of a stream: the config's, else the checkpoint's, else the per-rank batch
    size x the world size and the world size (a first launch). The batch order is a function of these two."""
    per_rank = cfg.batch_size_2d if stream == STREAM_2D else cfg.batch_size_3d
    wanted = cfg.global_batch_size_2d if stream == STREAM_2D else cfg.global_batch_size_3d
    state = state or {}
    if state and "global_batch" not in state:
        raise ckpt.ResumeError("the checkpoint holds the per-worker stream cursors of an older trainer: resume it "
                               "with that version, or start a new run (resume=false or a new output_dir)")
    g = wanted or int(state.get("global_batch") or per_rank * world)
    lanes = cfg.lanes or int(state.get("lanes") or world)
    if state and (g, lanes) != (int(state["global_batch"]), int(state["lanes"])):
        raise ckpt.ResumeError(
            f"stream {stream}: the checkpoint's batch order uses a global batch of {state['global_batch']} in "
            f"{state['lanes']} lanes, the config {g} in {lanes}: drop global_batch_size_{stream} / lanes to keep "
            "the checkpoint's, or start a new run")
    if g % lanes or g % world:
        raise ckpt.ResumeError(f"stream {stream}: the global batch size {g} must be a multiple of the lanes ({lanes}) "
                               f"and of the world size ({world}); set global_batch_size_{stream} / lanes")
    return g, lanes


def build_streams(cfg: TrainConfig, rank: int, world: int, states: dict,
                  shards: dict[str, list[ShardRef]] | None = None) -> tuple[StepSchedule, dict, dict]:
    shards = resolve_sources(cfg.sources) if shards is None else shards
    n2, n3 = weighted_samples(shards[STREAM_2D]), weighted_samples(shards[STREAM_3D])
    order = {name: global_order(cfg, name, world, states.get(name)) for name in (STREAM_2D, STREAM_3D)}
    ratio = stream_ratio(cfg, shards, (order[STREAM_2D][0], order[STREAM_3D][0]))
    base = dict(
        depth_choices=tuple(cfg.depth_choices), image_size_default=cfg.image_size_default,
        image_size_single_3d=cfg.image_size_single_3d, many_images_threshold=cfg.many_images_threshold,
        many_images_max_depth=cfg.many_images_max_depth, image_size=cfg.image_size, resize_mode=cfg.resize_mode,
        crop_scale=tuple(cfg.crop_scale), crop_ratio=tuple(cfg.crop_ratio), seed=cfg.seed,
        vision_dtype=cfg.vision_dtype, dense_vision=cfg.dense_vision)
    loaders = {}
    for name, block, augment in ((STREAM_2D, cfg.shuffle_block_2d, cfg.augment),
                                 (STREAM_3D, cfg.shuffle_block_3d, False)):
        if not shards[name]:
            continue
        scfg = StreamConfig(name=name, batch_size=order[name][0], block_size=block, interleave=cfg.interleave,
                            length_grouping=cfg.length_grouping, seed=cfg.seed, lanes=order[name][1],
                            collate=CollateConfig(augment=augment, **base))
        loaders[name] = StreamLoader(shards[name], scfg, rank, world, cfg.num_workers, cfg.prefetch_factor,
                                     state=states.get(name))
    info = {"shards": {k: len(v) for k, v in shards.items()}, "weighted_samples": {STREAM_2D: n2, STREAM_3D: n3},
            "ratio_2d": ratio, "global_batch": {k: f"{g}/{lanes} lanes" for k, (g, lanes) in order.items()
                                                 if shards[k]}}
    return StepSchedule(cfg.seed, ratio), loaders, info


# ----------------------------------------------------------------------------------------------- model
def build_model(cfg: TrainConfig, ds_config: dict | None = None):
    """A preset (``model``) or a checkpoint: our ``save_pretrained`` directory or RadFM's ``pytorch_model.bin``.

    With ZeRO-3 and no checkpoint the preset is built inside ``deepspeed.zero.Init`` (``zero_init: auto``), so
    a 13B model is partitioned while it is constructed instead of being materialised whole on every rank.
    """
    from model import RadFMForCausalLM, get_config
    from model.checkpoint import load_official_checkpoint

    stage = ((ds_config or {}).get("zero_optimization") or {}).get("stage", 0)
    use_zero_init = cfg.zero_init is True or (cfg.zero_init == "auto" and stage == 3 and not cfg.checkpoint)
    if use_zero_init and not cfg.checkpoint:
        import deepspeed

        with deepspeed.zero.Init(config_dict_or_path=ds_config):
            model = RadFMForCausalLM(get_config(cfg.model, **cfg.model_overrides))
    elif cfg.checkpoint:
        path = Path(cfg.checkpoint)
        if path.is_dir():
            model = RadFMForCausalLM.from_pretrained(path)
        else:
            model, report = load_official_checkpoint(path, config=get_config(cfg.model, **cfg.model_overrides))
            print(f"[train] {report.summary()}", flush=True)
    else:
        model = RadFMForCausalLM(get_config(cfg.model, **cfg.model_overrides))
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    return model.train()


def lr_lambda(cfg: TrainConfig):
    warmup, total, floor = cfg.warmup_steps, cfg.steps, cfg.min_lr_ratio

    def fn(step: int) -> float:  # step = optimizer steps already taken
        if warmup > 0 and step < warmup:
            return (step + 1) / warmup
        if cfg.lr_schedule == "constant":
            return 1.0
        progress = min(1.0, max(0.0, (step - warmup) / max(1, total - warmup)))
        if cfg.lr_schedule == "linear":
            return 1.0 - (1.0 - floor) * progress
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return fn


def deepspeed_config(cfg: TrainConfig, on_cpu: bool) -> dict:
    ds = json.loads(resolve_deepspeed_path(cfg).read_text())
    ds.pop("train_batch_size", None)
    # Micro-batches differ per stream (batch_size_2d / batch_size_3d); DeepSpeed only uses this number for
    # its own bookkeeping, so it is nominal here.
    ds["train_micro_batch_size_per_gpu"] = 1
    ds["gradient_accumulation_steps"] = cfg.gradient_accumulation_steps
    if cfg.grad_clip is not None:
        ds["gradient_clipping"] = cfg.grad_clip
    if "optimizer" not in ds:
        ds["zero_allow_untested_optimizer"] = True
    ds.setdefault("steps_per_print", 10**9)
    if on_cpu and (ds.get("fp16") or {}).get("enabled"):
        raise ValueError("fp16 is not supported by DeepSpeed on CPU; use bf16 or fp32")
    return ds


def param_groups(model, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:  # under zero.Init the data is a flat shard; ds_shape keeps the real shape
            (decay if len(getattr(p, "ds_shape", p.shape)) >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# ----------------------------------------------------------------------------------------------- helpers
def _gather(obj, world: int):
    import torch.distributed as dist

    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def _all_reduce(values: list[float]) -> list[float]:
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t)
    return t.tolist()


def to_device(t: torch.Tensor, device) -> torch.Tensor:
    """Move a tensor, sending only the stored part of a broadcast (stride-0) view and expanding it there."""
    if 0 in t.stride():
        index = tuple(slice(0, 1) if st == 0 and n > 1 else slice(None) for n, st in zip(t.shape, t.stride()))
        return t[index].to(device, non_blocking=True).expand(t.shape)
    return t.to(device, non_blocking=True)


def _decoded_answer(tokenizer, batch) -> str:
    ids = batch["input_ids"][0]
    keep = batch["labels"][0] != IGNORE_INDEX
    return tokenizer.decode(ids[keep].tolist(), skip_special_tokens=True)


# ----------------------------------------------------------------------------------------------- one step
@dataclass
class StepTotals:
    """What one rank adds up over the micro-batches of an optimizer step; summed over ranks for the log."""

    loss: float = 0.0  # sum of the micro-batch losses
    correct_tokens: float = 0.0  # tokens predicted right (token accuracy x loss tokens)
    loss_tokens: float = 0.0  # tokens the loss counted
    samples: float = 0.0
    real_tokens: float = 0.0  # tokens that are not padding
    padded_tokens: float = 0.0  # batch size x padded length
    data_wait: float = 0.0  # fraction of the step spent waiting for batches
    micro_batches: float = 0.0
    bad_2d: float = 0.0  # bad samples the 2D stream skipped during the step
    bad_3d: float = 0.0

    def add_micro_batch(self, loss: float, token_accuracy: float, loss_tokens: float, batch: dict) -> None:
        batch_size, length = batch["input_ids"].shape
        self.loss += loss
        self.correct_tokens += token_accuracy * loss_tokens
        self.loss_tokens += loss_tokens
        self.samples += batch_size
        self.real_tokens += float(batch["n_real_tokens"])
        self.padded_tokens += batch_size * length
        self.micro_batches += 1
        for bad in batch["bad"]:
            if bad["stream"] == STREAM_2D:
                self.bad_2d += 1
            else:
                self.bad_3d += 1

    def summed_over_ranks(self) -> StepTotals:
        return StepTotals(*_all_reduce(list(astuple(self))))


def step_record(step: int, streams: list[str], lr: float, totals: StepTotals, step_time: float, world: int) -> dict:
    """The step's numbers for ``log.jsonl`` from the totals of all ranks."""
    return {
        "step": step,
        "stream": streams[0] if len(set(streams)) == 1 else "mixed",
        "loss": totals.loss / totals.micro_batches,
        "lr": lr,
        "token_accuracy": totals.correct_tokens / max(totals.loss_tokens, 1.0),
        "tokens_per_s": totals.real_tokens / step_time,
        "samples_per_s": totals.samples / step_time,
        "data_wait": totals.data_wait / world,
        "step_time": step_time,
        "n_tokens": int(totals.real_tokens),
        "samples": int(totals.samples),
        "token_efficiency": totals.real_tokens / max(totals.padded_tokens, 1.0),
    }


# ----------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    config_path = args.config
    if config_path is None:
        config_path, why = default_config()
        if _is_rank0():
            print(f"[train] no --config given; {why}: using {config_path}", flush=True)
    cfg = load_config(config_path, args.set)
    if args.resume is not None:
        cfg.resume = args.resume
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(levelname)s: %(message)s")
    # the shards first: a config that points at no shards fails here, before DeepSpeed and the model exist
    skipped_entries: list[str] = []  # bad manifest entries, left out with a warning each
    shards = resolve_sources(cfg.sources, skipped_entries)
    if skipped_entries and _is_rank0():
        print(f"[train] warning: {len(skipped_entries)} manifest entries skipped (the warnings above say why)",
              file=sys.stderr, flush=True)
    stream_ratio(cfg, shards)
    deepspeed, on_cpu = setup_distributed()
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    if cfg.epochs is not None:
        cfg.steps = steps_for_epochs(cfg, shards, world)
        if rank == 0:
            print(f"[train] epochs {cfg.epochs:g} = {cfg.steps} optimizer steps", flush=True)
    out = Path(cfg.output_dir)
    ckpt_dir = out / "checkpoints"
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    micro_per_step = cfg.gradient_accumulation_steps

    # ---- model and optimizer (same init on every rank)
    seed_all(cfg.seed)
    ds_config = deepspeed_config(cfg, on_cpu)
    model = build_model(cfg, ds_config)
    bind_model_tokenizer(cfg.sources, model.config, cfg.allow_tokenizer_mismatch, shards)  # before the engine exists
    evaluator = None
    if cfg.eval_every > 0:  # plans the held-out samples now, so that bad eval_shards fail before training starts
        from evaluation.during_training import PeriodicEvaluation

        zero_stage = (ds_config.get("zero_optimization") or {}).get("stage", 0)
        evaluator = PeriodicEvaluation(cfg, model.config, rank, world, out, zero_stage)
    optimizer = None
    if "optimizer" not in ds_config:
        optimizer = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr,
                                      betas=tuple(cfg.adam_betas), eps=cfg.adam_eps)
    # a resume on another world size loads DeepSpeed's universal checkpoint (converted here, once, by rank 0)
    found = ckpt.find(cfg.resume, ckpt_dir)
    if found is not None and ckpt.prepare_resume(found[0], found[1], rank, world):
        ds_config.setdefault("checkpoint", {})["load_universal"] = True
    scheduler = None
    if "scheduler" not in ds_config:
        fn = lr_lambda(cfg)
        scheduler = lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, fn)  # noqa: E731
    engine, optimizer, _, lr_sched = deepspeed.initialize(
        model=model, model_parameters=[p for p in model.parameters() if p.requires_grad], optimizer=optimizer,
        lr_scheduler=scheduler, config=ds_config)
    seed_all(cfg.seed + 1000003 * rank)  # dropout etc. differ per rank

    # ---- resume
    start_step, stream_states, bad_totals = 0, {}, {STREAM_2D: 0, STREAM_3D: 0}
    saved_rank_state = None
    if found is not None:
        common, saved_rank_state = ckpt.load(engine, found[0], found[1], rank, world)
        start_step = int(common.get("step", saved_rank_state and saved_rank_state["step"]))
        # every rank's stream positions, merged; (older checkpoints: this rank's own)
        stream_states = common.get("streams") or (saved_rank_state or {}).get("streams", {})
        bad_totals.update(common.get("bad_totals", {}))
        if int(common.get("world_size", world)) != world:
            saved_rank_state = None  # RNG states belong to the old ranks: reseed, per rank and step
            seed_all(cfg.seed + 1000003 * rank + 7919 * start_step)
        if rank == 0:
            print(f"[train] resumed from {found[0]}/{found[1]} at step {start_step}"
                  + (f" (written by {common.get('world_size')} ranks, now {world}: same batches and optimizer "
                     "state, new RNG states)"
                     if int(common.get("world_size", world)) != world else ""), flush=True)
            if start_step >= cfg.steps:
                print(f"[train] nothing to do: the run is already at step {start_step} of {cfg.steps} "
                      "(raise 'steps', or use resume=false / a new output_dir to start over)", flush=True)

    # ---- data
    schedule, loaders, data_info = build_streams(cfg, rank, world, stream_states, shards)
    expected = schedule.consumed(start_step * micro_per_step)
    for name, loader in loaders.items():
        if loader.batches != expected[name]:
            raise RuntimeError(f"stream {name}: checkpoint says {loader.batches} batches consumed, the schedule "
                               f"{expected[name]} after {start_step} steps (was the seed or ratio changed?)")
    for loader in loaders.values():
        loader.start()  # (starting a DataLoader draws from torch's RNG: restore the saved states after it)
    if saved_rank_state is not None:
        ckpt.set_rng_state(saved_rank_state["rng"])
    if rank == 0:
        precision = "bf16" if (ds_config.get("bf16") or {}).get("enabled") else "fp32"
        stage = (ds_config.get("zero_optimization") or {}).get("stage", 0)
        print(f"[train] world {world} ({'cpu/gloo' if on_cpu else 'cuda/nccl'}), ZeRO-{stage}, {precision}, "
              f"shards {data_info['shards']}, "
              f"weighted samples {data_info['weighted_samples']}, 2D share of steps {data_info['ratio_2d']:.3f}, "
              f"global batch {data_info['global_batch']}, manifest entries skipped {len(skipped_entries)}, "
              f"steps {start_step}->{cfg.steps}", flush=True)

    tokenizer = None
    if rank == 0 and cfg.tokenizer and cfg.log_text_every > 0:
        from shards_spec.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(cfg.tokenizer)

    logger = StepLogger(out, rank, start_step if found is not None else None)
    bar = None
    if rank == 0 and cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start_step, desc="train", dynamic_ncols=True)

    def save(step: int) -> None:
        states = {k: v.state_dict() for k, v in loaders.items()}
        every_rank = _gather(states, world)
        common = {"step": step, "streams_batches": {k: v.batches for k, v in loaders.items()},
                  "streams": {k: merge_states([r[k] for r in every_rank]) for k in states},
                  "bad_totals": bad_totals, "world_size": world, "seed": cfg.seed}
        rank_state = {"streams": states, "rng": ckpt.rng_state(), "world_size": world}
        ckpt.save(engine, ckpt_dir, step, rank, common, rank_state, keep=cfg.keep_checkpoints)
        logger.plot()

    # ---- loop: one optimizer step = micro_per_step micro-batches, each from the stream the schedule names
    step = start_step
    stopped_early = False
    while step < cfg.steps:
        step_started = time.perf_counter()
        waited = 0.0
        totals = StepTotals()
        streams, micro_losses, keys, new_bad = [], [], [], []
        lr = float(engine.get_lr()[0]) if engine.get_lr() else cfg.lr
        text = None
        for micro in range(micro_per_step):
            stream = schedule.stream(step * micro_per_step + micro)
            wait_started = time.perf_counter()
            batch = loaders[stream].next()
            waited += time.perf_counter() - wait_started
            inputs = {k: batch[k] for k in MODEL_INPUTS}
            if not on_cpu:
                inputs = {k: to_device(v, engine.device) for k, v in inputs.items()}
            res = engine(**inputs, loss_reduction=cfg.loss_reduction)
            engine.backward(res.loss)
            engine.step()
            loss = float(res.loss.detach().float())
            totals.add_micro_batch(loss, float(res.token_accuracy), float(res.n_tokens), batch)
            streams.append(stream)
            micro_losses.append(loss)
            keys.extend(batch["keys"])
            for b in batch["bad"]:
                print(f"[train] warning: bad sample skipped (rank {rank}, stream {b['stream']}): "
                      f"shard={b['shard']} key={b['key']} reason={b['reason']}", file=sys.stderr, flush=True)
            new_bad.extend(batch["bad"])
            if tokenizer is not None and text is None and (step + 1) % cfg.log_text_every == 0:
                text = _decoded_answer(tokenizer, batch)
        step += 1
        step_time = time.perf_counter() - step_started
        totals.data_wait = waited / step_time

        # ---- log: numbers summed over ranks, keys and bad samples gathered
        all_ranks = totals.summed_over_ranks()
        mean_micro_losses = [loss / world for loss in _all_reduce(micro_losses)]
        bad_totals[STREAM_2D] += int(all_ranks.bad_2d)
        bad_totals[STREAM_3D] += int(all_ranks.bad_3d)
        all_keys = _gather(keys, world)
        all_bad = _gather(new_bad, world) if all_ranks.bad_2d + all_ranks.bad_3d > 0 else [[]]
        record = step_record(step, streams, lr, all_ranks, step_time, world)
        record.update({
            "keys": all_keys,
            "micro": [{"stream": s, "loss": loss} for s, loss in zip(streams, mean_micro_losses)],
            "epochs": {k: max((c[0] for c in v.cursors.values()), default=0) for k, v in loaders.items()},  # rank 0
            "bad_samples": dict(bad_totals),
            "bad": [b for rank_bad in all_bad for b in rank_bad],
        })
        if text is not None:
            record["text"] = text
        if evaluator is not None and step % cfg.eval_every == 0:  # every rank generates; rank 0 gets the summary
            record["eval"] = evaluator.run(engine.module, step, engine.device)
            if rank == 0:
                print(f"[train] step {step} eval: {json.dumps(record['eval'])}", flush=True)
        logger.log(record)
        logger.log_rank({"step": step, "stream": record["stream"], "keys": keys,
                         "loss": totals.loss / max(totals.micro_batches, 1), "streams": streams,
                         "epochs": record["epochs"], "bad": [b["key"] for b in new_bad]})
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}", stream=record["stream"], wait=f"{record['data_wait']:.2f}")

        # ---- checkpoint, early stop
        if cfg.checkpoint_interval > 0 and step % cfg.checkpoint_interval == 0:
            save(step)
        if cfg.stop_after is not None and step >= cfg.stop_after and step < cfg.steps:
            stopped_early = True
            break

    # ---- finish: final checkpoint and export, close streams
    already_saved = step == start_step or (cfg.checkpoint_interval > 0 and step % cfg.checkpoint_interval == 0)
    if not stopped_early and cfg.save_final and not already_saved:
        save(step)
    if not stopped_early and cfg.export_final and step > start_step:
        final = ckpt.export_pretrained(engine, out / "final", rank)
        if final is not None:
            print(f"[train] model written to {final} (RadFMForCausalLM.from_pretrained)", flush=True)
    if bar is not None:
        bar.close()
    if not stopped_early:
        logger.plot()
    logger.close()
    for loader in loaders.values():
        loader.close()
    if rank == 0:
        print(f"[train] {'stopped' if stopped_early else 'finished'} at step {step}; log {out / 'log.jsonl'}; "
              f"bad samples {bad_totals}, manifest entries skipped {len(skipped_entries)}", flush=True)
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (SourceError, ConfigError, ckpt.ResumeError, StaleLockError) as exc:  # a problem the user fixes (the message says how): one line
        print(f"[train] error: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
