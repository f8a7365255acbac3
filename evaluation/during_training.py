"""The trainer's periodic evaluation: every ``eval_every`` optimizer steps, on ``eval_shards``.

It is ``train.evaluate`` run inside the training processes: the same plan, batches and rank dealing
(``evaluation.data``; at most ``eval_limit`` samples per dataset and task; ``eval_batch_size`` 2D samples and
``batch_size_3d`` volumes per batch), the same generation (greedy,
``eval_max_new_tokens``) and metrics, with the training run's image geometry (its collate settings, without
augmentation). Each rank generates its batches with the model being trained (``engine.module``, switched to eval
mode and back), the records are gathered to rank 0, which writes ``<output_dir>/eval/step-NNNNNN/``
(``predictions.jsonl``, ``predictions.csv``, ``metrics.json``) and returns a summary that the trainer puts in the
step's ``log.jsonl`` record under ``"eval"``::

    {"loss": 2.31, "tokens": 812, "samples": 16, "errors": 0, "time_s": 12.4, "dir": "eval/step-000010",
     "scores": {"mimic/report/text": 0.18, "rad3d/modality/modality": 0.5, ...}}

``loss`` is the held-out teacher-forced loss (mean token cross-entropy of the answers, unweighted); ``scores`` the
headline metric of each (dataset, task, kind) (``evaluation.tasks.KINDS``). ``loss.png`` draws both.

With DeepSpeed ZeRO-3 every rank must call the model equally often (parameters are gathered inside each call):
the evaluation then decodes a fixed ``eval_max_new_tokens`` steps and ranks with fewer batches repeat one.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

from evaluation.data import eval_collate_config, make_batches, plan, rank_batches, resolve_shards
from evaluation.generation import GenerationConfig
from evaluation.loading import load_tokenizer_for
from evaluation.predictions import write_predictions
from evaluation.run import evaluate_batches
from evaluation.score import headline, score_records, write_metrics
from evaluation.tasks import check_tasks
from train.collate import CollateConfig
from train.sources import check_tokenizers


def collate_config_of(train_cfg) -> CollateConfig:
    """The training run's collate settings (every ``CollateConfig`` field the train config has), for test time."""
    values = {}
    for f in dataclasses.fields(CollateConfig):
        if hasattr(train_cfg, f.name):
            value = getattr(train_cfg, f.name)
            values[f.name] = tuple(value) if isinstance(value, list) else value
    return eval_collate_config(CollateConfig(**values))


class PeriodicEvaluation:
    def __init__(self, train_cfg, model_config, rank: int, world: int, output_dir: str | Path, zero_stage: int = 0):
        self.cfg, self.rank, self.world = train_cfg, rank, world
        self.out = Path(output_dir) / "eval"
        shards = resolve_shards(train_cfg.eval_shards, train_cfg.eval_splits)
        by_stream = {s: [x for x in shards if x.stream == s] for s in ("2d", "3d")}
        check_tokenizers(by_stream, model_config.vocab_size, model_config.tokenizer, train_cfg.allow_tokenizer_mismatch)
        self.collate_cfg = collate_config_of(train_cfg)
        items = plan(shards, self.collate_cfg, limit=train_cfg.eval_limit)
        if not items:
            raise ValueError(f"eval_shards {train_cfg.eval_shards} (splits {train_cfg.eval_splits}) hold no samples")
        check_tasks({i.task for i in items})
        self.batches = make_batches(items, train_cfg.eval_batch_size, train_cfg.batch_size_3d)
        self.mine = rank_batches(self.batches, rank, world)
        self.slots = math.ceil(len(self.batches) / world) if zero_stage == 3 else None
        self.gen = GenerationConfig(max_new_tokens=train_cfg.eval_max_new_tokens)
        self.samples = len(items)
        self._tok = None

    def run(self, model, step: int, device) -> dict[str, Any] | None:
        """Evaluate ``model`` on every rank; returns the summary on rank 0 (``None`` elsewhere)."""
        import torch.distributed as dist

        if self._tok is None:
            self._tok = load_tokenizer_for(model.config, self.cfg.tokenizer)
        started = time.perf_counter()
        was_training = model.training
        model.eval()
        records: list[dict] = []
        try:
            totals = evaluate_batches(model, self._tok, self.mine, self.collate_cfg, self.gen, records.extend,
                                      device=device, lockstep_slots=self.slots, with_loss=True,
                                      fallback=self.batches[0])
        finally:
            model.train(was_training)
        mine = (records, totals.loss_sum, totals.loss_tokens)
        if dist.is_initialized() and self.world > 1:
            gathered: list = [None] * self.world
            dist.all_gather_object(gathered, mine)
        else:
            gathered = [mine]
        if self.rank != 0:
            return None
        all_records = sorted((r for part in gathered for r in part[0]), key=lambda r: r["key"])
        loss_sum, tokens = sum(p[1] for p in gathered), sum(p[2] for p in gathered)
        folder = self.out / f"step-{step:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        write_predictions(folder, all_records)
        metrics = score_records(all_records, settings={"step": step, "samples": self.samples,
                                                       "generation": dataclasses.asdict(self.gen)})
        write_metrics(folder, metrics)
        return {"loss": loss_sum / tokens if tokens else None, "tokens": tokens, "samples": len(all_records),
                "errors": metrics["errors"], "time_s": time.perf_counter() - started,
                "dir": str(folder.relative_to(self.out.parent)), "scores": headline(metrics)}
