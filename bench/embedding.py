"""Benchmark: image-token embedding by gather/scatter vs RadFM's one-hot matmul.

Both variants map ``input_ids [B, L]`` to ``[B, L, hidden]`` from the text table ``[32000, hidden]``, the two
figure rows and per-sample image rows ``[B, 32*S, hidden]`` (the vision tower's output, identical for both, so it
is not timed). Defaults are RadFM's real sizes: hidden 5120, L 2048, B 4, vocabulary 32002 + 32*S.

Each (variant, S) runs in a fresh subprocess. Time: median of ``--reps`` calls after one warm-up call.
Memory: peak resident set size during the calls minus the resident size just before them (the inputs are
already allocated), read from ``VmHWM`` after resetting it through ``/proc/self/clear_refs``.

Usage::

    python bench/embedding.py                       # bf16, S = 1,2,4,7,10, 3 reps; updates docs/benchmarks.md
    python bench/embedding.py --no-docs             # print the table only
    python bench/embedding.py --dtype fp32 --images 1,10
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADING = "Image-token embedding (bench/embedding.py)"
BASE_VOCAB = 32000
TOKENS_PER_IMAGE = 32


# ------------------------------------------------------------------------------------------------ worker
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker(args: argparse.Namespace) -> dict:
    import torch

    sys.path.insert(0, str(ROOT))
    from model.embedding import embed_image_tokens, one_hot_embed_image_tokens
    from shards_spec.layout import ImageTokenIds

    torch.set_num_threads(args.threads)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[args.dtype]
    fn = {"gather": embed_image_tokens, "one-hot": one_hot_embed_image_tokens}[args.variant]
    b, length, hidden, s = args.batch, args.seq_len, args.hidden, args.images
    gen = torch.Generator().manual_seed(0)

    # Inputs, initialised in place (no float32 temporaries).
    text = torch.empty(BASE_VOCAB, hidden, dtype=dtype).normal_(generator=gen)
    figure = torch.empty(2, hidden, dtype=dtype).normal_(generator=gen)
    images = torch.empty(b, TOKENS_PER_IMAGE * s, hidden, dtype=dtype).normal_(generator=gen)
    tok = ImageTokenIds(BASE_VOCAB)
    ids = torch.randint(3, BASE_VOCAB, (b, length), generator=gen)
    for row in range(b):  # every sample references all S of its images, spans after a short question
        span = torch.tensor([t for i in range(s) for t in tok.span(i)])
        ids[row, 8 : 8 + len(span)] = span

    times = []
    with torch.no_grad():
        fn(ids, text, figure, images)  # warm-up
        base_kib = _status_kib("VmRSS")
        reset = _reset_peak()
        for _ in range(args.reps):
            t0 = time.perf_counter()
            out = fn(ids, text, figure, images)
            times.append(time.perf_counter() - t0)
            del out
        peak_kib = _status_kib("VmHWM")
    if not reset:
        import resource

        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "variant": args.variant,
        "images": s,
        "vocab_rows": BASE_VOCAB + 2 + TOKENS_PER_IMAGE * s,
        "median_s": statistics.median(times),
        "times_s": times,
        "peak_extra_bytes": max(0, peak_kib - base_kib) * 1024,
        "peak_reset": reset,
    }


# ------------------------------------------------------------------------------------------------ driver
def run_one(args: argparse.Namespace, variant: str, images: int) -> dict:
    cmd = [
        sys.executable, __file__, "--worker", "--variant", variant, "--images", str(images),
        "--dtype", args.dtype, "--seq-len", str(args.seq_len), "--batch", str(args.batch),
        "--hidden", str(args.hidden), "--reps", str(args.reps), "--threads", str(args.threads),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} S={images} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def markdown(args: argparse.Namespace, rows: list[tuple[dict, dict]], wall_s: float, load: tuple[float, float]) -> str:
    import torch

    full = (args.batch, args.seq_len, args.hidden) == (4, 2048, 5120)
    worst = max(o["peak_extra_bytes"] for _, o in rows)
    sizes_note = (
        f"RadFM's full sizes; no length reduction was needed (the one-hot side peaks at {_gib(worst)})."
        if full else "Reduced sizes (see above), not RadFM's B = 4, L = 2048, hidden = 5120."
    )
    lines = [
        f"Forward lookup `input_ids [B, L] -> [B, L, hidden]` with B = {args.batch}, L = {args.seq_len}, "
        f"hidden = {args.hidden}, {args.dtype}; vocabulary rows = 32002 + 32·S (RadFM's extended matrix). "
        "*gather* is `model.embedding.embed_image_tokens` (gather + two masked scatters); *one-hot* is RadFM's "
        "`F.one_hot(ids, V)` cast to the dtype, matmul with the per-sample `[B, V, hidden]` table "
        "(`model.embedding.one_hot_embed_image_tokens`). The vision tower is not included (same for both). "
        "Memory: peak RSS during the calls minus RSS before them (inputs excluded), each variant in a fresh "
        f"process. CPU time: median of {args.reps} calls after a warm-up.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores ({args.threads} torch threads), "
        f"torch {torch.__version__}, no GPU. {sizes_note} Run of "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {wall_s:.0f} s; 1-minute load average "
        f"{load[0]:.2f} at the start and {load[1]:.2f} at the end (other jobs on the cores disturb the timings, "
        "not the memory figures; ratios are of medians).",
        "",
        "| S | vocab rows | gather peak mem | one-hot peak mem | **memory ratio one-hot / gather** | "
        "CPU time gather, median (min) | CPU time one-hot, median (min) | CPU time ratio, medians (minima) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for g, o in rows:
        lines.append(
            f"| {g['images']} | {g['vocab_rows']:,} | {_gib(g['peak_extra_bytes'])} | {_gib(o['peak_extra_bytes'])} | "
            f"**{o['peak_extra_bytes'] / max(g['peak_extra_bytes'], 1):.0f}x** | "
            f"{g['median_s'] * 1e3:.1f} ms ({min(g['times_s']) * 1e3:.1f}) | "
            f"{o['median_s']:.2f} s ({min(o['times_s']):.2f}) | "
            f"{o['median_s'] / g['median_s']:,.0f}x ({min(o['times_s']) / min(g['times_s']):,.0f}x) |"
        )
    mem = [o["peak_extra_bytes"] / max(g["peak_extra_bytes"], 1) for g, o in rows]
    tokens = args.batch * args.seq_len
    flops = [2 * tokens * g["vocab_rows"] * args.hidden for g, _ in rows]
    step = 2 * 13e9 * tokens  # forward FLOPs of a 13B-parameter model on the same tokens (2 per parameter and token)
    lines += [
        "",
        f"* **Memory (the headline, independent of the device): the one-hot form needs {min(mem):.0f}–{max(mem):.0f}x "
        "the gather's extra memory** in this run; it materialises a `[B, L, V]` one-hot and a `[B, V, hidden]` table.",
        f"* Time is **CPU only**: a {args.dtype} matmul on this CPU, where the one-hot product is slow. It is not a GPU "
        f"figure: the one-hot forward is {min(flops) / 1e12:.2f}–{max(flops) / 1e12:.2f} TFLOP (2·B·L·V·hidden), "
        f"{100 * min(flops) / step:.1f}–{100 * max(flops) / step:.1f} % of a 13B model's forward on the same "
        f"{tokens:,} tokens (2·13e9·B·L FLOP), which a GPU runs at matmul speed.",
    ]
    lines += [
        "",
        "Backward (training) is not timed; for the one-hot form it is a second matmul of the same size plus a "
        "`[B, V, hidden]` gradient of the repeated table, so the training-step gap is larger still.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16")
    p.add_argument("--images", default="1,2,4,7,10", help="comma-separated S values (worker: one value)")
    p.add_argument("--seq-len", type=int, default=2048)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--hidden", type=int, default=5120)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--no-docs", action="store_true", help="print the table only; do not update docs/benchmarks.md")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--variant", choices=("gather", "one-hot"), help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.worker:
        args.images = int(args.images)
        print(json.dumps(worker(args)))
        return

    start, load_start = time.perf_counter(), os.getloadavg()[0]
    rows = []
    for s in (int(x) for x in args.images.split(",")):
        g = run_one(args, "gather", s)
        o = run_one(args, "one-hot", s)
        print(f"S={s}: gather {g['median_s'] * 1e3:.1f} ms {_gib(g['peak_extra_bytes'])}, "
              f"one-hot {o['median_s']:.2f} s {_gib(o['peak_extra_bytes'])}", file=sys.stderr, flush=True)
        rows.append((g, o))
    section = markdown(args, rows, time.perf_counter() - start, (load_start, os.getloadavg()[0]))
    print(section)
    if not args.no_docs:
        sys.path.insert(0, str(ROOT))
        from bench.report import write_section

        write_section(HEADING, section)


if __name__ == "__main__":
    main()
