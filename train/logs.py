"""Run logs: per-step JSON lines and the loss-curve PNG.

``<output>/log.jsonl`` (rank 0), one line per optimizer step::

    {"step": 12, "stream": "2d", "loss": 5.91, "lr": 0.001, "token_accuracy": 0.21,
     "tokens_per_s": 912.4, "samples_per_s": 7.9, "data_wait": 0.03, "step_time": 0.51,
     "n_tokens": 640, "samples": 4, "token_efficiency": 0.93,
     "keys": [["mimic_..", ...], ["mimic_..", ...]],        # per rank, micro-batches concatenated
     "micro": [{"stream": "2d", "loss": 5.91}],             # one entry per micro-batch (rank-averaged loss)
     "epochs": {"2d": 1, "3d": 0},                          # rank 0's current epoch per stream
     "bad_samples": {"2d": 0, "3d": 1}, "bad": [...],       # cumulative counts (all ranks); new ones this step
     "eval": {"loss": 2.3, "scores": {"mimic/report/text": 0.18, ...}, ...}}   # only on eval_every steps

``step`` counts optimizer steps from 1. ``loss`` is the mean over ranks and micro-batches of each micro-batch's
(weighted) loss, ``token_accuracy`` is token-weighted over ranks; ``tokens_per_s`` / ``samples_per_s`` count
real (unpadded) tokens / samples of all ranks per second of rank 0's step time; ``data_wait`` is the mean over
ranks of (time blocked waiting for batches) / step time; ``token_efficiency`` is real / processed tokens.

``eval`` (steps where ``eval_every`` divides the step): the held-out evaluation's summary
(``evaluation.during_training``): teacher-forced loss and the headline score of each dataset/task; its predictions
and metrics are in ``<output>/eval/step-NNNNNN/``.

``<output>/ranks/rank-NNN.jsonl``: every rank's own ``step``, ``stream`` and ``keys`` (for audits and tests).

On resume the logs are cut back to the checkpoint's step, so they always describe one consistent history.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

COLORS = {"2d": "tab:blue", "3d": "tab:orange"}


def _cut_jsonl(path: Path, keep_upto: int | None) -> None:
    """Keep only records with ``step <= keep_upto`` (``None``: start a new file)."""
    if keep_upto is None or not path.exists():
        path.write_text("")
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= keep_upto:
                kept.append(line)
        except json.JSONDecodeError:
            continue
    path.write_text("".join(k + "\n" for k in kept))


def read_jsonl(path: str | Path) -> list[dict]:
    out = []
    for line in Path(path).read_text().splitlines():
        if line.strip():
            out.append(json.loads(line))
    return out


class StepLogger:
    def __init__(self, output_dir: str | Path, rank: int, resume_step: int | None):
        self.rank = rank
        self.out = Path(output_dir)
        (self.out / "ranks").mkdir(parents=True, exist_ok=True)
        self.rank_path = self.out / "ranks" / f"rank-{rank:03d}.jsonl"
        _cut_jsonl(self.rank_path, resume_step)
        self._rank_fh = open(self.rank_path, "a")
        self.path = self.out / "log.jsonl"
        self._fh = None
        if rank == 0:
            _cut_jsonl(self.path, resume_step)
            self._fh = open(self.path, "a")

    def log_rank(self, record: dict) -> None:
        self._rank_fh.write(json.dumps(record) + "\n")
        self._rank_fh.flush()

    def log(self, record: dict) -> None:
        if self._fh is not None:
            self._fh.write(json.dumps(record) + "\n")
            self._fh.flush()

    def plot(self, path: str | Path | None = None) -> None:
        if self.rank == 0:
            plot_loss(self.path, path or self.out / "loss.png")

    def close(self) -> None:
        self._rank_fh.close()
        if self._fh is not None:
            self._fh.close()


def plot_loss(log_path: str | Path, png_path: str | Path) -> None:
    """Loss per micro-batch against the step, 2D and 3D in different colours, with a running mean; with periodic
    evaluation also the held-out loss (black) and, on a right-hand axis in [0, 1], each dataset/task's headline
    score (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_jsonl(log_path) if Path(log_path).exists() else []
    series: dict[str, tuple[list[float], list[float]]] = {}
    for r in records:
        micro = r.get("micro") or [{"stream": r.get("stream"), "loss": r.get("loss")}]
        for k, m in enumerate(micro):
            if m.get("loss") is None:
                continue
            xs, ys = series.setdefault(m["stream"], ([], []))
            xs.append(r["step"] + k / max(len(micro), 1))
            ys.append(m["loss"])
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for stream, (xs, ys) in sorted(series.items()):
        color = COLORS.get(stream, None)
        ax.scatter(xs, ys, s=10, alpha=0.5, color=color, label=f"{stream} batches ({len(xs)})")
        win = max(1, len(ys) // 20)
        if len(ys) >= 3 and win > 1:
            mean = [sum(ys[max(0, i - win + 1):i + 1]) / len(ys[max(0, i - win + 1):i + 1]) for i in range(len(ys))]
            ax.plot(xs, mean, color=color, linewidth=1.5)
    evals = [(r["step"], r["eval"]) for r in records if isinstance(r.get("eval"), dict)]
    held_out = [(step, e["loss"]) for step, e in evals if e.get("loss") is not None]
    if held_out:
        ax.plot(*zip(*held_out), color="black", marker="o", linewidth=1.5, label="held-out loss (eval)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.set_title(f"training loss ({len(records)} steps)" + (f", {len(evals)} evaluations" if evals else ""))
    handles, labels = ax.get_legend_handles_labels()
    scores: dict[str, tuple[list[int], list[float]]] = {}
    for step, e in evals:
        for name, value in (e.get("scores") or {}).items():
            xs, ys = scores.setdefault(name, ([], []))
            xs.append(step)
            ys.append(value)
    if scores:
        right = ax.twinx()
        for name, (xs, ys) in sorted(scores.items()):
            right.plot(xs, ys, linestyle="--", marker=".", linewidth=1, label=name)
        right.set_ylim(0, 1)
        right.set_ylabel("eval score (headline metric)")
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    if handles:
        ax.legend(handles, labels, fontsize="small")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = Path(png_path).with_name(f".{Path(png_path).name}.tmp-{os.getpid()}.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, png_path)
