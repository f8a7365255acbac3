"""Model + test shards -> prediction records, on one process or several; resumable.

``evaluate_batches`` is the loop shared by ``python -m train.evaluate`` (``evaluation.cli``) and the trainer's
periodic evaluation (``evaluation.during_training``): for every batch dealt to this rank it reads the samples
(a sample that cannot be read becomes an error record), generates, and hands the batch's records to ``sink``
(the CLI appends them to its part file; the trainer keeps them in memory and gathers them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evaluation.data import BadSample, EvalSample, FileCache, PlanItem, read_sample
from evaluation.generation import Generated, GenerationConfig, generate_batch, teacher_forced_loss
from evaluation.predictions import compact_text
from evaluation.tasks import belong_to
from shards_spec.tokenizer import Tokenizer
from train.collate import CollateConfig


def prediction_record(sample: EvalSample, out: Generated, tok: Tokenizer) -> dict:
    """The record of one generated answer (fields: ``evaluation.predictions``)."""
    meta, item = sample.meta, sample.item
    return {
        "key": meta.key, "dataset": meta.dataset, "split": meta.split, "stream": meta.stream, "task": meta.task,
        "variant": meta.variant, "prompt_id": meta.prompt_id, "modality": meta.modality, "shard": item.shard,
        "images": list(meta.source_paths), "belong_to": belong_to(meta.dataset, meta.task),
        "question": meta.question, "truth": meta.answer,
        "question_compact": compact_text(meta.question, meta.image_spans, "question"),
        "truth_compact": compact_text(meta.answer, meta.image_spans, "answer"),
        "pred": tok.decode(out.ids, skip_special_tokens=True).strip(),
        "n_prompt_tokens": int(meta.n_question_tokens), "n_new_tokens": len(out.ids), "stopped": out.stopped,
    }


def error_record(item: PlanItem, reason: str) -> dict:
    return {"key": item.key, "dataset": item.dataset, "split": item.split, "stream": item.stream, "task": item.task,
            "shard": item.shard, "belong_to": belong_to(item.dataset, item.task), "question": "", "truth": "",
            "pred": "", "error": reason}


@dataclass
class LoopTotals:
    batches: int = 0  # batches generated (skipped ones not counted)
    skipped: int = 0  # batches already done (resume)
    samples: int = 0
    errors: int = 0
    loss_sum: float = 0.0  # teacher-forced, summed over tokens
    loss_tokens: int = 0


def evaluate_batches(
    model,
    tok: Tokenizer,
    batches: Sequence[tuple[int, list[PlanItem]]],
    collate_cfg: CollateConfig,
    gen: GenerationConfig,
    sink: Callable[[list[dict]], None],
    *,
    device="cpu",
    done: set[str] | None = None,
    lockstep_slots: int | None = None,
    with_loss: bool = False,
    progress: Callable[[int], None] | None = None,
    fallback: Sequence[PlanItem] = (),
) -> LoopTotals:
    """Generate for ``batches`` (this rank's ``(index, items)``) and pass each batch's records to ``sink``.

    ``done``: keys already predicted; a batch whose keys are all done is skipped. ``lockstep_slots``: call the
    model exactly this many times per kind of call (padding with repeats of a batch whose results are dropped) and
    decode a fixed number of steps (``generation.generate_batch``), for ZeRO-3. ``with_loss``: also sum the
    teacher-forced loss. ``progress(n)`` is told how many samples each batch covered. ``fallback``: samples to
    keep in step with when this rank has no readable sample of its own (lockstep only).
    """
    files = FileCache(4)
    try:
        return _loop(model, tok, batches, collate_cfg, gen, sink, files, device, done or set(), lockstep_slots,
                     with_loss, progress, fallback)
    finally:
        files.close()


def _loop(model, tok, batches, collate_cfg, gen, sink, files, device, done, lockstep_slots, with_loss, progress,
          fallback) -> LoopTotals:
    totals = LoopTotals()
    last_good: list[EvalSample] | None = None
    lockstep = lockstep_slots is not None
    for _, items in batches:
        if all(item.key in done for item in items):
            totals.skipped += 1
            if progress:
                progress(len(items))
            continue
        samples, records = [], []
        for item in items:
            try:
                samples.append(read_sample(item, files))
            except BadSample as exc:
                records.append(error_record(item, str(exc)))
        totals.errors += len(records)
        if lockstep and not samples:
            samples_for_call = last_good or _first_readable(fallback, files)
        else:
            samples_for_call = samples
        if samples_for_call:
            outs = generate_batch(model, samples_for_call, collate_cfg, gen, device, lockstep=lockstep)
            if with_loss:
                loss_sum, n = teacher_forced_loss(model, samples_for_call, collate_cfg, device)
                if samples:
                    totals.loss_sum, totals.loss_tokens = totals.loss_sum + loss_sum, totals.loss_tokens + n
            if samples:
                records.extend(prediction_record(s, o, tok) for s, o in zip(samples, outs))
                last_good = samples
        totals.batches += 1
        totals.samples += len(items)
        sink(sorted(records, key=lambda r: r["key"]))
        if progress:
            progress(len(items))
    if lockstep:
        for _ in range(lockstep_slots - totals.batches):
            if last_good is None:
                last_good = _first_readable(fallback, files)
            generate_batch(model, last_good, collate_cfg, gen, device, lockstep=True)
            if with_loss:
                teacher_forced_loss(model, last_good, collate_cfg, device)
    return totals


def _first_readable(items: Sequence[PlanItem], files: FileCache) -> list[EvalSample]:
    for item in items:
        try:
            return [read_sample(item, files)]
        except BadSample:
            continue
    raise RuntimeError("lockstep evaluation: no readable sample to keep the ranks in step with")
