"""``python -m train.evaluate``: generate answers for test-split shards and score them.

    python -m train.evaluate --checkpoint runs/demo-cpu/final --shards data/shards --out runs/eval
    torchrun --nproc_per_node 4 -m train.evaluate --checkpoint ... --shards ... --out ...   (or deepspeed --module)

Steps: resolve the shards (``--split``, default ``test``) and check their tokenizer against the model's ->
plan the samples and batches (``evaluation.data``) -> load the model -> generate this rank's batches, appending
each batch's records to ``OUT/parts/rank-NNN.jsonl`` (a rerun with the same ``--out`` skips what is there) ->
wait for every rank -> rank 0 merges the parts in key order into ``predictions.jsonl`` / ``predictions.csv``,
scores them (``metrics.json``, printed table) and writes ``report.md``.

``OUT/run.json`` records the settings that decide the predictions (checkpoint, shards, samples, batching,
geometry, decoding, dtype, tokenizer); a rerun with other settings is refused unless ``--overwrite``.
Several processes: each is one rank (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` from the launcher), on its own GPU when
there are GPUs; they synchronise with gloo and share ``--out`` (one machine or shared storage).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
from datetime import timedelta
from pathlib import Path

from evaluation import data as data_mod
from evaluation.generation import add_generation_arguments, generation_config
from evaluation.loading import CheckpointError, checkpoint_config, load_model, load_tokenizer_for, pick_device, pick_dtype
from evaluation.predictions import PARTS, append_batch, part_path, read_parts, repair, write_predictions
from evaluation.run import evaluate_batches
from evaluation.score import add_score_arguments, format_table, read_labels, score_records, write_metrics
from evaluation.tasks import UnknownTask, check_tasks
from shards_spec.tokenizer import TokenizerError
from train.collate import CollateConfig
from train.sources import SourceError, check_tokenizers


class EvaluationError(ValueError):
    """A problem the user fixes (the message says how)."""


OUTPUTS = ("predictions.jsonl", "predictions.csv", "metrics.json", "report.md", "run.json")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="a save_pretrained folder (e.g. runs/demo-cpu/final), a training output_dir, or RadFM's "
                        "pytorch_model.bin")
    p.add_argument("--shards", nargs="+", required=True, metavar="PATH",
                   help="dataset dirs, a dir of them, manifest.json files, or tar paths / brace patterns")
    p.add_argument("--out", required=True, help="output directory (resumable: rerun the same command to continue)")
    p.add_argument("--split", nargs="+", default=list(data_mod.DEFAULT_SPLITS), help="splits read from manifests")
    p.add_argument("--tasks", nargs="+", default=None, help="only these tasks (meta.json task: report, vqa, ...)")
    p.add_argument("--datasets", nargs="+", default=None, help="only these datasets")
    p.add_argument("--limit", type=int, default=None, help="at most N samples per dataset and task (first keys)")
    p.add_argument("--batch-size", type=int, default=4, help="2D samples per generate() call (RadFM's 2D batch)")
    p.add_argument("--batch-size-3d", type=int, default=1, help="3D samples per generate() call (RadFM's 3D batch)")
    add_generation_arguments(p)
    p.add_argument("--model", default="radfm-13b", help="preset sizes for RadFM's pytorch_model.bin")
    p.add_argument("--tokenizer", default=None, help="tokenizer folder (default: the one the model records)")
    p.add_argument("--allow-tokenizer-mismatch", action="store_true",
                   help="evaluate shards built with another tokenizer than the model's (experiments only)")
    p.add_argument("--device", default="auto", help="auto (the rank's GPU, else CPU), cpu, cuda, cuda:1 ...")
    p.add_argument("--dtype", default="auto", help="auto (bfloat16 on GPU, float32 on CPU), float32, bfloat16, float16")
    p.add_argument("--image-size", type=int, default=None, help="force H = W of every image (default: the trainer's rules)")
    p.add_argument("--resize-mode", default="trilinear", choices=("trilinear", "nearest"))
    p.add_argument("--overwrite", action="store_true", help="discard an earlier evaluation in --out")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--local_rank", "--local-rank", type=int, default=None, help=argparse.SUPPRESS)  # deepspeed's
    add_score_arguments(p)
    return p


def _dist():
    """(rank, world, torch.distributed or None) from the launcher's environment."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, None
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=timedelta(hours=24))
    return dist.get_rank(), dist.get_world_size(), dist


def _barrier(dist) -> None:
    if dist is not None:
        dist.barrier()


def _check_run_file(out: Path, settings: dict) -> None:
    path = out / "run.json"
    if not path.exists():
        return
    old = json.loads(path.read_text())
    changed = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
    if changed:
        first = changed[0]
        raise EvaluationError(f"{out} holds an evaluation with other settings ({', '.join(changed)}; e.g. {first}: "
                          f"{old.get(first)!r} -> {settings.get(first)!r}); pass --overwrite or another --out")


def run(args: argparse.Namespace) -> int:
    rank, world, dist = _dist()
    out = Path(args.out)
    device = pick_device(args.device)
    dtype = pick_dtype(args.dtype, device)

    # ---- shards and plan (cheap; errors before the model is loaded)
    shards = data_mod.resolve_shards(args.shards, args.split)
    config = checkpoint_config(args.checkpoint, args.model)
    by_stream = {s: [x for x in shards if x.stream == s] for s in ("2d", "3d")}
    check_tokenizers(by_stream, config.vocab_size, config.tokenizer, args.allow_tokenizer_mismatch)
    collate_cfg = data_mod.eval_collate_config(CollateConfig(image_size=args.image_size, resize_mode=args.resize_mode))
    items = data_mod.plan(shards, collate_cfg, args.tasks, args.datasets, args.limit)
    if not items:
        raise SourceError(f"no samples to evaluate in {', '.join(args.shards)} (split {args.split}, tasks "
                          f"{args.tasks or 'all'}, datasets {args.datasets or 'all'})")
    check_tasks({i.task for i in items})
    batches = data_mod.make_batches(items, args.batch_size, args.batch_size_3d)
    gen = generation_config(args)
    settings = {
        "checkpoint": str(Path(args.checkpoint).resolve()), "model": args.model,
        "shards": sorted(s.path for s in shards), "splits": list(args.split), "tasks": args.tasks,
        "datasets": args.datasets, "limit": args.limit, "samples": len(items), "batch_size": args.batch_size,
        "batch_size_3d": args.batch_size_3d,
        "generation": dataclasses.asdict(gen), "collate": dataclasses.asdict(collate_cfg), "dtype": str(dtype),
        "tokenizer": (config.tokenizer or {}).get("fingerprint"),
    }
    settings = json.loads(json.dumps(settings))  # as run.json holds them (tuples become lists)

    # ---- output directory: resume or start over
    if args.overwrite and rank == 0:
        shutil.rmtree(out / PARTS, ignore_errors=True)
        for name in OUTPUTS:
            (out / name).unlink(missing_ok=True)
    _barrier(dist)
    _check_run_file(out, settings)
    _barrier(dist)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / "run.json").write_text(json.dumps(settings, indent=1, sort_keys=True) + "\n")
    mine = data_mod.rank_batches(batches, rank, world)
    own = part_path(out, rank)
    own.parent.mkdir(parents=True, exist_ok=True)
    repair(own)
    done = set(read_parts(out))

    # ---- model, tokenizer, generation
    model = load_model(args.checkpoint, args.model, device, dtype)
    tok = load_tokenizer_for(model.config, args.tokenizer)
    bar = None
    if rank == 0 and not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(len(b) for _, b in mine), desc=f"evaluate (rank 0 of {world})", unit="sample",
                   dynamic_ncols=True)
    totals = evaluate_batches(model, tok, mine, collate_cfg, gen, lambda records: append_batch(own, records),
                              device=device, done=done, progress=bar.update if bar else None)
    if bar is not None:
        bar.close()
    print(f"[evaluate] rank {rank}: {totals.batches} batches generated, {totals.skipped} already done, "
          f"{totals.errors} unreadable samples", file=sys.stderr, flush=True)
    _barrier(dist)

    # ---- rank 0: merge, score, report
    if rank == 0:
        from evaluation.report import write_report

        found = read_parts(out)
        missing = [i.key for i in items if i.key not in found]
        if missing:
            raise RuntimeError(f"{len(missing)} planned samples have no prediction (e.g. {missing[:3]}); rerun to "
                               "complete the evaluation")
        records = [found[i.key] for i in items]
        write_predictions(out, records)
        metrics = score_records(records, read_labels(args.labels), args.bertscore_model, settings=settings)
        write_metrics(out, metrics)
        write_report(out, metrics, records, examples=args.examples)
        print(format_table(metrics))
        print(f"[evaluate] {len(records)} predictions: {out / 'predictions.csv'}; metrics: {out / 'metrics.json'}; "
              f"report: {out / 'report.md'}", flush=True)
    _barrier(dist)
    if dist is not None:
        dist.destroy_process_group()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if min(args.batch_size, args.batch_size_3d) < 1 or (args.limit is not None and args.limit < 1):
        p.error("--batch-size, --batch-size-3d and --limit must be >= 1")
    try:
        generation_config(args)
    except ValueError as exc:
        p.error(str(exc))
    try:
        return run(args)
    except (EvaluationError, SourceError, CheckpointError, TokenizerError, UnknownTask) as exc:
        print(f"[evaluate] error: {exc}", file=sys.stderr, flush=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
