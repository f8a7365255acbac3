"""The step schedule: which stream (2D or 3D) feeds each micro-batch, identical on every rank.

RadFM never mixes 2D and 3D samples in a batch, and under ZeRO-3 every rank must call the same modules
the same number of times per step (DeepSpeed #7998), so all ranks must take a 2D batch or all a 3D batch
at the same micro-step. RadFM's sampler relied on the global ``random`` state agreeing across processes;
here the choice is a pure function of ``(seed, micro_step)``:

    stream(m) = "2d" if u(seed, m) < p_2d else "3d",   u = BLAKE2b(seed, m) / 2**64  (uniform in [0, 1))

A counter-based draw needs no state: a resumed run, any rank, and any tool reading the log can recompute
the schedule, and the number of batches each stream has delivered after ``m`` micro-steps is just a count.

``p_2d`` defaults to the share of 2D batches in one pass over both streams,
``b_2d / (b_2d + b_3d)`` with ``b = sum(weight * samples) / batch_size`` per stream (RadFM's sampler produced
exactly these batch counts per epoch); ``stream_ratio_2d`` in the config overrides it.
"""

from __future__ import annotations

from dataclasses import dataclass

from shards_spec.hashing import seed_from, unit_hash

STREAM_2D, STREAM_3D = "2d", "3d"

__all__ = ["STREAM_2D", "STREAM_3D", "StepSchedule", "default_ratio_2d", "seed_from", "unit_hash"]


def default_ratio_2d(samples_2d: float, samples_3d: float, batch_size_2d: int, batch_size_3d: int) -> float:
    """Fraction of 2D micro-batches: 2D batches / all batches of one pass over both streams."""
    b2, b3 = samples_2d / batch_size_2d, samples_3d / batch_size_3d
    if b2 <= 0 and b3 <= 0:
        raise ValueError("both streams are empty")
    return b2 / (b2 + b3)


@dataclass(frozen=True)
class StepSchedule:
    seed: int
    ratio_2d: float

    def stream(self, micro_step: int) -> str:
        if self.ratio_2d >= 1.0:
            return STREAM_2D
        if self.ratio_2d <= 0.0:
            return STREAM_3D
        return STREAM_2D if unit_hash("schedule", self.seed, micro_step) < self.ratio_2d else STREAM_3D

    def streams(self, start: int, stop: int) -> list[str]:
        return [self.stream(m) for m in range(start, stop)]

    def consumed(self, micro_steps: int) -> dict[str, int]:
        """Batches each stream has delivered after ``micro_steps`` micro-steps."""
        n2 = sum(1 for m in range(micro_steps) if self.stream(m) == STREAM_2D)
        return {STREAM_2D: n2, STREAM_3D: micro_steps - n2}
