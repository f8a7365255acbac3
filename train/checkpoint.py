"""Trainer checkpoints: DeepSpeed's engine checkpoint plus the trainer's own per-rank state.

Layout (``<output>/checkpoints``)::

    latest                                   tag of the newest *complete* checkpoint (DeepSpeed's format)
    step00000020/                            one tag per saved step
        mp_rank_00_model_states.pt, zero_pp_rank_*_optim_states.pt, ...   (DeepSpeed; client_state: step, streams)
        trainer_state_rank000.pt, ...        step, stream positions and RNG states of each rank

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


def load(engine, ckpt_dir: Path, tag: str, rank: int, world_size: int | None = None) -> tuple[dict, dict | None]:
    """Load the engine state and this rank's trainer state; returns ``(common, rank_state)``.

    On another world size than the checkpoint's (elastic resume) ``rank_state`` is None for ranks the old run
    did not have. DeepSpeed (0.19) refuses to re-split ZeRO optimizer partitions for a new world size (short of
    its offline universal-checkpoint conversion), so under ZeRO-1/2 the module (its full copy in
    ``mp_rank_00_model_states.pt``; the fp32 master weights are refreshed from it), the learning-rate schedule
    and the step counters are restored and Adam's moments restart (warned); ZeRO-3 checkpoints are refused."""
    tag_dir = Path(ckpt_dir) / tag
    saved = saved_world_size(tag_dir)
    if world_size is not None and saved != world_size:
        stage = engine.zero_optimization_stage()
        if stage == 3:
            raise ResumeError(f"{tag_dir} was written by {saved} ranks under ZeRO-3, whose partitions DeepSpeed "
                              f"cannot re-split for {world_size}: resume on {saved} ranks (runs that change size "
                              "use ZeRO-2, train/configs/ds_zero2.json)")
    path = state_file(tag_dir, rank)
    if not path.is_file() and (world_size is None or saved == world_size):
        raise FileNotFoundError(f"{path} is missing: the checkpoint is incomplete")
    resized = world_size is not None and saved != world_size
    if resized and rank == 0:
        print(f"[train] warning: {tag_dir} was written by {saved} ranks, now {world_size}: weights, lr schedule and "
              "data position are restored, Adam's moments restart (DeepSpeed cannot re-split them)", flush=True)
    # resized: the full bf16/fp32 module (mp_rank_00, the same for any world size), fp32 masters refreshed from it
    load_path, client = engine.load_checkpoint(str(ckpt_dir), tag=tag, load_module_only=resized)
    if load_path is None:
        raise RuntimeError(f"DeepSpeed could not load {ckpt_dir}/{tag}")
    client = client or {}
    if resized:
        if engine.lr_scheduler is not None and client.get("lr_scheduler") is not None:
            engine.lr_scheduler.load_state_dict(client["lr_scheduler"])
        engine.global_steps = int(client.get("global_steps", engine.global_steps))
        engine.global_samples = int(client.get("global_samples", engine.global_samples))
    rank_state = torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None
    return client.get("trainer", {}), rank_state


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
