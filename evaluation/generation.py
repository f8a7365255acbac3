"""Batched generation for evaluation: left-padded prompts, per-sample test-time images, RadFM's greedy decoding.

``generate_batch(model, samples, collate_cfg, gen, device)`` -> one :class:`Generated` per sample; a sample is an
``evaluation.data.EvalSample`` or anything with ``key``, ``prompt_ids`` and uint8 ``vision`` ``[S, C, H, W, D]``.

* Prompt: BOS + the question with its image spans, i.e. the sample's first ``n_question_tokens`` ids (RadFM's
  ``question_length``: the question encoded alone), left-padded with pad id 0 and attention mask 0, which the
  model turns into positions 0, 1, ... on the real tokens.
* Images: each sample's ``vision_x`` at its own test-time geometry (``evaluation.data.sample_vision``); samples
  with fewer images get all-zero images, which no token refers to.
* Decoding (``GenerationConfig``): greedy by default, as RadFM (``top_k=50`` without sampling is inert there);
  ``max_new_tokens`` 200 as RadFM; a row stops at EOS id 2, the EOS the model was trained to emit (RadFM's test
  loop stopped at id 1, see docs/deviations.md). Sampling (``do_sample``) draws from a generator seeded by
  (``seed``, the batch's first key), so a resumed run draws the same tokens.
* ``lockstep=True`` decodes exactly ``max_new_tokens`` steps and cuts at EOS afterwards (same tokens): every rank
  then calls the model the same number of times, which DeepSpeed ZeRO-3 needs (its parameters are gathered
  inside each call on all ranks at once).

``teacher_forced_loss(model, samples, collate_cfg, device)`` -> (sum of token losses, tokens): the held-out loss
of the whole samples (question, answer, EOS) with the trainer's labels, for the trainer's evaluation log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from evaluation.data import EvalSample, sample_vision
from shards_spec.hashing import seed_from
from shards_spec.layout import IGNORE_INDEX
from shards_spec.tokenizer import EOS_ID, PAD_ID
from train.collate import CollateConfig


@dataclass(frozen=True)
class GenerationConfig:
    max_new_tokens: int = 200  # RadFM's
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.do_sample and self.temperature <= 0:
            raise ValueError("temperature must be > 0 when sampling")


@dataclass(frozen=True)
class Generated:
    ids: list[int]  # new tokens before EOS
    stopped: str  # "eos" | "length"


def pad_left(rows: Sequence[np.ndarray], pad_id: int = PAD_ID) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, L]`` ids left-padded with ``pad_id`` and their attention mask."""
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, row in enumerate(rows):
        if len(row):
            ids[i, length - len(row):] = torch.from_numpy(np.asarray(row, dtype=np.int64))
            mask[i, length - len(row):] = 1
    return ids, mask


def batch_vision(samples: Sequence, collate_cfg: CollateConfig) -> torch.Tensor:
    """``[B, S_max, 3, H, W, D]``: each sample's images (zero images fill up to the batch's largest count)."""
    views = [sample_vision(s, collate_cfg) for s in samples]
    shapes = {tuple(v.shape[2:]) for v in views}
    if len(shapes) != 1:
        raise ValueError(f"samples of one batch need one image geometry, got {sorted(shapes)}")
    s_max = max(v.shape[1] for v in views)
    out = torch.zeros((len(views), s_max, *views[0].shape[2:]), dtype=views[0].dtype)
    for i, v in enumerate(views):
        out[i, : v.shape[1]] = v[0]
    return out


def split_at_eos(row: Sequence[int], eos_id: int = EOS_ID) -> Generated:
    row = [int(t) for t in row]
    if eos_id in row:
        return Generated(row[: row.index(eos_id)], "eos")
    return Generated(row, "length")


@torch.no_grad()
def generate_batch(model, samples: Sequence, collate_cfg: CollateConfig, gen: GenerationConfig,
                   device: torch.device | str = "cpu", lockstep: bool = False) -> list[Generated]:
    ids, mask = pad_left([s.prompt_ids for s in samples])
    vision = batch_vision(samples, collate_cfg)
    generator = None
    if gen.do_sample:
        generator = torch.Generator(device=device).manual_seed(seed_from("generate", gen.seed, samples[0].key)
                                                               % 2**63)
    out = model.generate(ids.to(device), vision.to(device), mask.to(device), max_new_tokens=gen.max_new_tokens,
                         eos_token_id=None if lockstep else EOS_ID, pad_token_id=PAD_ID, do_sample=gen.do_sample,
                         temperature=gen.temperature, top_k=gen.top_k, top_p=gen.top_p, generator=generator)
    return [split_at_eos(row) for row in out.cpu().tolist()]


@torch.no_grad()
def teacher_forced_loss(model, samples: Sequence[EvalSample], collate_cfg: CollateConfig,
                        device: torch.device | str = "cpu") -> tuple[float, int]:
    """(sum of per-token cross-entropies, number of learned tokens) over whole samples with their stored labels
    (unweighted: the trainer's keyword weights would make the number depend on the lexicon)."""
    ids, mask = pad_left([s.input_ids for s in samples])
    labels, _ = pad_left([s.labels for s in samples], pad_id=IGNORE_INDEX)
    vision = batch_vision(samples, collate_cfg)
    out = model(ids.to(device), mask.to(device), vision.to(device), labels=labels.to(device), loss_reduction="mean")
    n = int(out.n_tokens)
    return float(out.loss) * n, n


def add_generation_arguments(p) -> None:
    """The decoding options of ``train.evaluate`` and ``train.generate``."""
    g = GenerationConfig()
    p.add_argument("--max-new-tokens", type=int, default=g.max_new_tokens)
    p.add_argument("--do-sample", action="store_true", help="sample instead of greedy decoding")
    p.add_argument("--temperature", type=float, default=g.temperature)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=g.seed, help="sampling seed (with --do-sample)")


def generation_config(args) -> GenerationConfig:
    """``GenerationConfig`` from parsed ``add_generation_arguments`` options (``ValueError`` if invalid)."""
    return GenerationConfig(args.max_new_tokens, args.do_sample, args.temperature, args.top_k, args.top_p, args.seed)
