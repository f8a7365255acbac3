"""Trainer checkpoints: DeepSpeed's engine checkpoint plus the trainer's own per-rank state.

Layout (``<output>/checkpoints``)::

    latest                                   tag of the newest *complete* checkpoint (DeepSpeed's format)
    step00000020/                            one tag per saved step
        mp_rank_00_model_states.pt, zero_pp_rank_*_optim_states.pt, ...   (DeepSpeed; client_state: step, streams)
        trainer_state_rank000.pt, ...        step, stream positions and RNG states of each rank
        universal/                           DeepSpeed's universal form of the tag, made when it is resumed on
                                             another world size (:func:`prepare_resume`)

Every rank calls :func:`save` (``engine.save_checkpoint`` must run on all ranks). DeepSpeed writes its
``client_state`` only from data-parallel rank 0, but stream cursors and RNG states differ per rank, so each rank
also writes ``trainer_state_rankNNN.pt``. The common state (``client_state``) also holds every stream's merged position
(``train.stream.merge_states``), which is all an elastic resume on another world size needs.
``latest`` is written by rank 0 only after every rank has finished
(DeepSpeed's own ``latest`` is disabled: it can appear before slower ranks are done), so a run killed while
saving resumes from the previous complete checkpoint. The state files hold only tensors, lists and numbers
(``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import logging
import os
import random
import shutil
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

LATEST = "latest"


def tag_for(step: int) -> str:
    return f"step{step:08d}"


def state_file(tag_dir: Path, rank: int) -> Path:
    return Path(tag_dir) / f"trainer_state_rank{rank:03d}.pt"


def rng_state() -> dict:
    py = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [name, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(engine, ckpt_dir: str | Path, step: int, rank: int, common: dict, rank_state: dict,
         keep: int = 0) -> str:
    """Save a checkpoint for ``step`` on every rank; returns the tag."""
    ckpt_dir = Path(ckpt_dir)
    tag = tag_for(step)
    tag_dir = ckpt_dir / tag
    tag_dir.mkdir(parents=True, exist_ok=True)
    tmp = state_file(tag_dir, rank).with_suffix(".tmp")
    torch.save({**rank_state, "step": step, "rank": rank}, tmp)
    os.replace(tmp, state_file(tag_dir, rank))
    engine.save_checkpoint(str(ckpt_dir), tag=tag, client_state={"trainer": common}, save_latest=False)
    if dist.is_initialized():
        dist.barrier()
    if rank == 0:
        tmp = ckpt_dir / f".{LATEST}.tmp"
        tmp.write_text(tag)
        os.replace(tmp, ckpt_dir / LATEST)
        if keep > 0:
            tags = sorted(p.name for p in ckpt_dir.iterdir() if p.is_dir() and p.name.startswith("step"))
            for old in tags[:-keep]:
                if old != tag:
                    shutil.rmtree(ckpt_dir / old, ignore_errors=True)
    if dist.is_initialized():
        dist.barrier()
    return tag


def find(resume: str | bool, ckpt_dir: str | Path) -> tuple[Path, str] | None:
    """``(checkpoint dir, tag)`` to resume from, or None.

    ``resume``: False/None/"" -> None; True/"auto"/"latest" -> ``ckpt_dir/latest`` if present (else a fresh
    start); a path -> that tag directory, or a checkpoints directory with a ``latest`` file (must exist).
    """
    if resume in (False, None, "", "false", "no"):
        return None
    if resume in (True, "auto", "latest", "true", "yes"):
        latest = Path(ckpt_dir) / LATEST
        if not latest.is_file():
            return None
        return Path(ckpt_dir), latest.read_text().strip()
    p = Path(str(resume))
    if (p / LATEST).is_file():
        return p, (p / LATEST).read_text().strip()
    if p.is_dir() and state_file(p, 0).is_file():
        return p.parent, p.name
    raise FileNotFoundError(f"resume: {p} is neither a checkpoint tag directory nor holds a '{LATEST}' file")


class ResumeError(ValueError):
    """A checkpoint that cannot be resumed as configured; the message says what to do."""


def saved_world_size(tag_dir: Path) -> int:
    """Ranks that wrote the checkpoint (one trainer state file each)."""
    return len(list(Path(tag_dir).glob("trainer_state_rank*.pt")))


#: Subdirectory of a tag holding its DeepSpeed *universal* checkpoint (written on the first resume on another
#: world size, or beforehand with ``python -m deepspeed.checkpoint.ds_to_universal``; see :func:`to_universal`).
UNIVERSAL = "universal"


def needs_universal(ckpt_dir: str | Path, tag: str, world_size: int) -> bool:
    """True when the checkpoint was written by another number of ranks than ``world_size`` and holds ZeRO
    optimizer partitions: DeepSpeed re-splits those only from a universal checkpoint."""
    tag_dir = Path(ckpt_dir) / tag
    saved = saved_world_size(tag_dir)
    return saved > 0 and saved != world_size and any(tag_dir.glob("*_optim_states.pt"))


def to_universal(tag_dir: str | Path) -> Path:
    """Convert the ZeRO checkpoint in ``tag_dir`` to DeepSpeed's universal layout in ``tag_dir/universal``
    (one file per parameter and state: ``fp32``, ``exp_avg``, ``exp_avg_sq``, unpartitioned); returns that
    directory. Run it on one process (the trainer: rank 0, the others wait). An existing ``universal`` directory
    is used as it is; a new one appears whole (converted into a temporary directory, then renamed), so a run
    killed while converting converts again. DeepSpeed's own output goes to ``universal/convert.log``."""
    import argparse
    from contextlib import redirect_stderr, redirect_stdout

    tag_dir = Path(tag_dir)
    out = tag_dir / UNIVERSAL
    if out.is_dir():
        return out
    work = tag_dir / f".{UNIVERSAL}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    log_path = work / "convert.log"
    args = argparse.Namespace(input_folder=str(tag_dir), output_folder=str(work / UNIVERSAL), num_extract_workers=1,
                              num_merge_workers=1, keep_temp_folder=False, strict=True,
                              inject_missing_state=True)  # our checkpoints carry no universal_checkpoint_info
    try:
        from deepspeed.checkpoint import ds_to_universal

        with open(log_path, "w") as log, redirect_stdout(log), redirect_stderr(log):
            ds_to_universal.main(args)
    except Exception as exc:  # DeepSpeed's converter: assertions, KeyErrors, NotImplementedError ...
        raise ResumeError(f"{tag_dir}: DeepSpeed's universal-checkpoint conversion failed "
                          f"({type(exc).__name__}: {_first_line(exc)}; log {log_path}): resume on "
                          f"{saved_world_size(tag_dir)} ranks") from None
    os.replace(log_path, work / UNIVERSAL / "convert.log")
    os.replace(work / UNIVERSAL, out)
    shutil.rmtree(work, ignore_errors=True)  # also the converter's 'latest_universal' pointer
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "no message"


def prepare_resume(ckpt_dir: str | Path, tag: str, rank: int, world_size: int) -> bool:
    """Before ``deepspeed.initialize``: if resuming ``tag`` needs a universal checkpoint (another world size),
    rank 0 converts it while the others wait. Returns whether the engine must be configured with
    ``"checkpoint": {"load_universal": true}`` (DeepSpeed reads that switch from its config)."""
    if not needs_universal(ckpt_dir, tag, world_size):
        return False
    tag_dir = Path(ckpt_dir) / tag
    error = None
    if rank == 0:
        if not (tag_dir / UNIVERSAL).is_dir():
            print(f"[train] {tag_dir} was written by {saved_world_size(tag_dir)} ranks, now {world_size}: converting "
                  f"it to a DeepSpeed universal checkpoint in {tag_dir / UNIVERSAL}", flush=True)
        try:
            to_universal(tag_dir)
        except ResumeError as exc:
            error = str(exc)
    if dist.is_initialized() and dist.get_world_size() > 1:
        box = [error]
        dist.broadcast_object_list(box, src=0)
        error = box[0]
    if error is not None:
        raise ResumeError(error)
    return True


def load(engine, ckpt_dir: Path, tag: str, rank: int, world_size: int | None = None) -> tuple[dict, dict | None]:
    """Load the engine state and this rank's trainer state; returns ``(common, rank_state)``.

    On another world size than the checkpoint's (elastic resume) ``rank_state`` is None for ranks the old run
    did not have, and the engine state comes from the tag's universal checkpoint (:func:`prepare_resume` made it
    and configured the engine with ``load_universal``): weights, fp32 masters, Adam's moments and step, the
    learning-rate schedule and the step counters all carry over, re-split for the new world size (ZeRO-1/2/3)."""
    tag_dir = Path(ckpt_dir) / tag
    saved = saved_world_size(tag_dir)
    resized = world_size is not None and saved != world_size
    path = state_file(tag_dir, rank)
    if not path.is_file() and not resized:
        raise FileNotFoundError(f"{path} is missing: the checkpoint is incomplete")
    universal = bool(engine.load_universal_checkpoint())
    if resized and not universal and any(tag_dir.glob("*_optim_states.pt")):
        raise ResumeError(f"{tag_dir} was written by {saved} ranks, now {world_size}: its ZeRO optimizer partitions "
                          "load only as a universal checkpoint (train.checkpoint.prepare_resume before "
                          "deepspeed.initialize)")
    if universal:
        from deepspeed.utils import logger as ds_logger

        level = ds_logger.level
        ds_logger.setLevel(max(level, logging.ERROR))  # "MPU is not provided, setting tp size to 1", per rank
        try:
            load_path, client = engine.load_checkpoint(str(tag_dir), tag=UNIVERSAL)
        finally:
            ds_logger.setLevel(level)
        _unshare_optimizer_steps(engine)
    else:
        load_path, client = engine.load_checkpoint(str(ckpt_dir), tag=tag)
    if load_path is None:
        raise RuntimeError(f"DeepSpeed could not load {ckpt_dir}/{tag}")
    client = client or {}
    rank_state = torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None
    return client.get("trainer", {}), rank_state


def _unshare_optimizer_steps(engine) -> None:
    """Give every optimizer state its own ``step`` tensor. DeepSpeed's ZeRO-3 universal load (0.19) puts one
    tensor object into every sub-group's state; torch's Adam increments ``step`` in place, so each optimizer
    step would advance it once per sub-group (measured: 3 -> 5 after one step with two groups), skewing Adam's
    bias correction from then on."""
    base = getattr(engine.optimizer, "optimizer", engine.optimizer)
    for state in getattr(base, "state", {}).values():
        if torch.is_tensor(state.get("step")):
            state["step"] = state["step"].clone()


def export_pretrained(engine, directory: str | Path, rank: int) -> Path | None:
    """Write the trained model as a ``save_pretrained`` directory (``config.json`` + ``model.safetensors``,
    loadable with ``RadFMForCausalLM.from_pretrained``). Call on every rank; rank 0 writes.

    Under ZeRO-3 each parameter is partitioned across ranks: they are gathered one module at a time, so no rank
    ever holds more than one module's full weights on the device; rank 0 collects them on the CPU.
    """
    import deepspeed

    from model import RadFMForCausalLM
    from model.modeling import SHARED_EMBEDDING_KEY

    module = engine.module
    zero3 = engine.zero_optimization_stage() == 3
    state: dict[str, torch.Tensor] = {}
    for prefix, sub in module.named_modules():
        own = list(sub.named_parameters(recurse=False))
        if not own:
            continue
        gather = deepspeed.zero.GatheredParameters([p for _, p in own], modifier_rank=None) if zero3 else nullcontext()
        with gather:
            if rank == 0:
                for name, p in own:
                    state[f"{prefix}.{name}" if prefix else name] = p.detach().to("cpu", copy=True)
    if rank != 0:
        return None
    state.pop(SHARED_EMBEDDING_KEY, None)  # the same Parameter as the LLM's embed_tokens
    model = RadFMForCausalLM._from_state_dict(module.config, state, "cpu")
    directory = Path(directory)
    model.save_pretrained(directory)
    return directory
