"""Bounded memory: peak RSS of a Ray worker building 3D shards of large CT volumes, of a trainer loader worker
reading them, and the build driver's planning memory per million records.

    python bench/memory.py [--volumes 4] [--shape 512 512 300] [--records 1000000] [--no-docs]

* **Build worker.** The bench writes ``--volumes`` CT series of ``--shape`` voxels (int16 NIfTI, smooth anatomy-like
  intensities plus noise; 512x512x300 is 150 MiB of voxels each), plans one 3D shard of them and runs the shard
  task (``pipelines.worker.build_shard``, the function the build runs per shard) as a Ray task on a local Ray with
  one CPU. The task reports its process's peak RSS (``ru_maxrss``) and its RSS before the shard; the bound to
  compare with is a few times one volume (the decoded int16 volume, its float resampling, the uint8 result and
  its compressed bytes), independent of how many samples the shard holds.
* **Loader worker.** A fresh process reads the shard back through ``train.stream.StreamDataset`` (batches of 1,
  as RadFM trains 3D) and reports its peak RSS, and the same after imports only; one DataLoader worker is one such
  process.
  The same task's CPU time per volume is the **3D build rate per core** (docs/scaling.md's 3D core-hours).
* **Planning**, before and after the plan was streamed, on the same ``--records`` MIMIC-shaped records (one image,
  a report, one caption sample each: :func:`mimic_like`), each side in a fresh process: *whole plan in memory* makes
  the ``Job`` objects the driver held before (record, sample spec, key) and partitions their keys; *streamed plan*
  runs the build's own planning (``pipelines.build.read_dataset`` into a spool, ``pipelines.plan.derive_plan``,
  ``plan_shards`` with every shard's fingerprint, then every shard read back as its task would be submitted). The
  peak RSS growth per million records, and its projection to RadFM's 16M, is what the build driver needs for a
  plan; the streamed side also prints its spool bytes on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MiB = 1 << 20
GiB = 1 << 30


def rss_now() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    """This process's peak RSS: ``VmHWM``, which starts afresh at ``exec`` (``ru_maxrss`` keeps the high-water mark
    of the process that forked it, e.g. this bench's own 150 MiB in a planning child)."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) * 1024  # kB
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


# ------------------------------------------------------------------------------------------------ data
def write_volumes(raw: Path, n: int, shape: tuple[int, int, int], seed: int = 0) -> list[str]:
    import nibabel as nib
    import numpy as np

    rng = np.random.default_rng(seed)
    x, y = np.meshgrid(np.linspace(-1, 1, shape[0], dtype=np.float32), np.linspace(-1, 1, shape[1], dtype=np.float32),
                       indexing="ij")
    body = (x ** 2 + y ** 2 < 0.8).astype(np.float32)
    names = []
    for i in range(n):
        vol = np.empty(shape, dtype=np.int16)
        for z in range(shape[2]):
            organ = ((x - 0.3 * np.sin(z / 40 + i)) ** 2 + y ** 2 < 0.1).astype(np.float32)
            vol[:, :, z] = (-1000 + body * 1040 + organ * 60 + rng.normal(0, 8, shape[:2]).astype(np.float32)).astype(np.int16)
        name = f"ct{i:03d}.nii"
        nib.save(nib.Nifti1Image(vol, np.diag([0.7, 0.7, 1.25, 1.0])), raw / name)
        names.append(name)
    return names


def shard_plan(raw: Path, out: Path, names: list[str]):
    from pipelines.config import BuildConfig
    from pipelines.records import ImagePlacement, ImageRef, Job, Record, RecordFields, SampleSpec
    from pipelines.worker import ShardPlan, WorkerEnv
    from shards_spec.hashing import sample_key
    from shards_spec.layout import shard_path

    jobs = []
    for name in names:
        record = Record(dataset="bench", source_id=name, split="train", stream="3d",
                        images=(ImageRef(name, "volume"),), fields=RecordFields(), modality="CT")
        spec = SampleSpec(task="caption", variant="caption", question="Describe this CT scan.",
                          answer="An abdominal CT with a rounded soft-tissue structure.",
                          placements=(ImagePlacement("question", 0),), image_indices=(0,))
        jobs.append(Job(sample_key("bench", name, "caption", "caption"), record, spec))
    jobs.sort(key=lambda j: j.key)
    plan = ShardPlan("bench", "train", "3d", 0, str(shard_path(out, "bench", "3d", "train", 0)), "bench", tuple(jobs))
    return plan, WorkerEnv(str(raw), BuildConfig(), "default", "lexicon")


# ------------------------------------------------------------------------------------------------ measurements
def measure_build(raw: Path, out: Path, names: list[str]) -> dict:
    import ray

    plan, env = shard_plan(raw, out, names)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        @ray.remote(num_cpus=1, max_retries=0)
        def task(plan, env):
            from pipelines.worker import build_shard
            from shards_spec.layout import index_path

            before = rss_now()
            t0, c0 = time.perf_counter(), time.process_time()
            stats = build_shard(plan, env)
            return {"rss_before": before, "peak": peak_rss(), "seconds": time.perf_counter() - t0,
                    "cpu": time.process_time() - c0,
                    "samples": stats["samples"], "rejects": stats["rejects"], "bytes": stats["bytes"],
                    "index": str(index_path(plan.tar_path))}

        # a warm-up task on a tiny volume is not needed: the worker's imports happen in the task (counted in rss_before)
        result = ray.get(task.remote(plan, env))
    finally:
        ray.shutdown()
    if result["rejects"]:
        raise SystemExit(f"the bench shard rejected samples: {result['rejects'][:1]}")
    return result


_LOADER = r"""
import json, resource, sys, os
sys.path.insert(0, sys.argv[1])
from bench.memory import rss_now, peak_rss
from train.collate import CollateConfig
from train.config import SourceConfig
from train.sources import resolve_source
from train.stream import StreamConfig, StreamDataset
shards = resolve_source(SourceConfig(sys.argv[2], splits=["train"]))
after_imports = rss_now()
cfg = StreamConfig(name="3d", batch_size=1, block_size=8, interleave=2, seed=0, collate=CollateConfig())
it = StreamDataset(shards, cfg).batches(0, 1)
shapes = [tuple(next(it)["vision_x"].shape) for _ in range(int(sys.argv[3]))]
print(json.dumps({"after_imports": after_imports, "peak": peak_rss(), "shape": shapes[0]}))
"""

def mimic_like(i: int):
    """The ``i``-th MIMIC-shaped record and its caption sample (what both planning sides are given)."""
    from pipelines.records import ImagePlacement, ImageRef, Record, RecordFields, SampleSpec

    sid = f"p1{i % 10}/p1{i:07d}/s5{i:07d}"
    record = Record(dataset="mimic", source_id=sid, split="train", stream="2d",
                    images=(ImageRef(f"files/{sid}/{i:08x}-{i:08x}-{i:08x}.jpg", "image2d"),), fields=RecordFields(),
                    modality="X-ray")
    spec = SampleSpec(task="caption", variant="findings", question=f"Describe the chest X-ray {i}.",
                      answer="The lungs are clear. No pleural effusion or pneumothorax. Heart size is normal." + str(i),
                      placements=(ImagePlacement("question", 0),), image_indices=(0,))
    return record, spec


_PLAN_IN_MEMORY = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from bench.memory import mimic_like, peak_rss, rss_now
from pipelines.incremental import partition
from pipelines.records import Job
from shards_spec.hashing import sample_key
n = int(sys.argv[2])
before = rss_now()
jobs = []
for i in range(n):
    record, spec = mimic_like(i)
    jobs.append(Job(sample_key("mimic", record.source_id, spec.task, spec.variant), record, spec))
shards = partition([j.key for j in jobs], 1000)
print(json.dumps({"before": before, "peak": peak_rss(), "shards": len(shards), "disk": 0}))
"""

_PLAN_STREAMED = r"""
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from bench.memory import mimic_like, peak_rss, rss_now
from pipelines.build import make_context, read_dataset
from pipelines.plan import Spool, derive_plan, plan_shards
from pipelines.sources import Source

class Mimic(Source):
    name, modes, default_mode = "mimic", ("bench",), "bench"
    def records(self, ctx):
        for i in range(int(sys.argv[2])):
            yield mimic_like(i)[0]
    def samples(self, record, vocab, ctx):
        return [mimic_like(int(record.source_id.rsplit("s5", 1)[1]))[1]]

with tempfile.TemporaryDirectory() as tmp:
    raw = Path(tmp, "raw")
    raw.mkdir()
    source = Mimic()
    ctx = make_context(source, raw)
    before = rss_now()
    records, vocab, rejects = read_dataset(source, ctx, into=Spool(Path(tmp, "records.spool")))
    plan = derive_plan(source, ctx, records, vocab, None, tmp)
    shards = plan_shards(plan, Path(tmp, "out"), "mimic", 1000, 1000, "env", raw, "stat")
    submitted = sum(len(plan.materialise(s).jobs) for s in shards)
    assert submitted == len(plan) == int(sys.argv[2]) and not rejects and not plan.rejects
    disk = records.nbytes + plan.specs.nbytes
    print(json.dumps({"before": before, "peak": peak_rss(), "shards": len(shards), "disk": disk}))
"""


def run_child(code: str, *args: str) -> dict:
    res = subprocess.run([sys.executable, "-c", code, str(ROOT), *args], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=3600)
    if res.returncode:
        raise SystemExit(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--volumes", type=int, default=4)
    p.add_argument("--shape", type=int, nargs=3, default=[512, 512, 300])
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--batches", type=int, default=8)
    p.add_argument("--no-docs", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    shape = tuple(args.shape)
    load = os.getloadavg()
    voxels = shape[0] * shape[1] * shape[2]
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp, "raw"), Path(tmp, "out")
        raw.mkdir()
        print(f"writing {args.volumes} volumes of {shape} ...", flush=True)
        names = write_volumes(raw, args.volumes, shape)
        print("building a 3D shard of one volume, then one of all, each in a fresh Ray worker ...", flush=True)
        one = measure_build(raw, Path(tmp, "one"), names[:1])
        build = measure_build(raw, out, names)
        manifest_dir = out / "bench"
        # a manifest-free source: the brace pattern of the one shard
        tar = next(manifest_dir.rglob("*.tar"))
        print("reading it back in a loader process ...", flush=True)
        loader = run_child(_LOADER, str(tar), str(args.batches))
    # each side at N/4 and N records: the slope is the memory per record, the rest a fixed cost (imports made while
    # planning, allocator arenas); the 16M projection is fixed + 16M x slope
    small = args.records // 4
    planning, per_million, fixed = {}, {}, {}
    for side, code in (("whole plan in memory (before)", _PLAN_IN_MEMORY), ("streamed plan (pipelines.plan)", _PLAN_STREAMED)):
        runs = []
        for n in (small, args.records):
            print(f"planning {n:,} records: {side} ...", flush=True)
            t0 = time.perf_counter()
            runs.append({**run_child(code, str(n)), "seconds": time.perf_counter() - t0, "growth": 0})
            runs[-1]["growth"] = runs[-1]["peak"] - runs[-1]["before"]
        planning[side] = runs[1]
        per_million[side] = (runs[1]["growth"] - runs[0]["growth"]) / (args.records - small) * 1e6
        fixed[side] = max(0.0, runs[1]["growth"] - per_million[side] * args.records / 1e6)
    projected = {side: fixed[side] + 16 * per_million[side] for side in planning}
    old, new = projected.values()
    volume_mib = voxels * 2 / MiB
    grow_one, grow_all = (one["peak"] - one["rss_before"]) / MiB, (build["peak"] - build["rss_before"]) / MiB
    rows = [
        ["build worker (Ray task, 3D shard)", f"1 CT series {shape[0]}x{shape[1]}x{shape[2]} int16",
         f"{one['rss_before'] / MiB:,.0f}", f"{one['peak'] / MiB:,.0f}",
         f"{grow_one:,.0f} ({grow_one / volume_mib:.1f} volumes)"],
        ["build worker (Ray task, 3D shard)", f"{args.volumes} CT series {shape[0]}x{shape[1]}x{shape[2]} int16 "
         f"({volume_mib:.0f} MiB of voxels each)", f"{build['rss_before'] / MiB:,.0f}", f"{build['peak'] / MiB:,.0f}",
         f"{(build['peak'] - build['rss_before']) / MiB:,.0f} ({(build['peak'] - build['rss_before']) / MiB / volume_mib:.1f} volumes)"],
        ["loader worker (StreamDataset, batch 1)", f"{args.batches} batches, vision {list(loader['shape'])}",
         f"{loader['after_imports'] / MiB:,.0f}", f"{loader['peak'] / MiB:,.0f}",
         f"{(loader['peak'] - loader['after_imports']) / MiB:,.0f}"],
    ] + [
        [f"build driver, {side}", f"{args.records:,} MIMIC-shaped records, {p['shards']:,} shards",
         f"{p['before'] / MiB:,.0f}", f"{p['peak'] / MiB:,.0f}",
         f"{p['growth'] / MiB:,.0f}: {per_million[side] / MiB:,.0f} per million records + {fixed[side] / MiB:,.0f} fixed; "
         f"16M: {projected[side] / GiB:,.2f} GiB"]
        for side, p in planning.items()
    ]
    new_disk = list(planning.values())[1]["disk"] / args.records * 1e6
    streamed_s = list(planning.values())[1]["seconds"] / args.records * 1e6
    from bench.report import machine, table, write_section

    body = (f"`python bench/memory.py --volumes {args.volumes} --shape {' '.join(map(str, shape))} --records "
            f"{args.records} --batches {args.batches}` on {machine()}. Resident set sizes (RSS); a Ray worker's "
            "baseline includes Ray's and the project's imports.\n\n"
            + table(["process", "work", "RSS before (MiB)", "peak RSS (MiB)", "growth"], rows)
            + f"\n\nThe shard task built {build['samples']} samples ({build['bytes'] / MiB:,.0f} MiB of tar) in "
            f"{build['seconds']:.1f} s wall, {build['cpu']:.1f} s of CPU: **3D build rate {build['cpu'] / build['samples']:.2f} "
            f"s of CPU per {shape[0]}x{shape[1]}x{shape[2]} volume, {build['samples'] / build['cpu']:.3f} samples/s per core** "
            f"(the shard task of one Ray worker with one CPU; the one-volume shard: {one['cpu']:.2f} s). A shard of {args.volumes} volumes grows the worker by {grow_all / grow_one:.2f}x what a "
            "shard of one volume does: samples are written to the tar as they are made, so the bound is per volume, "
            f"not per shard: **a build worker needs about {build['rss_before'] / MiB:,.0f} MiB + "
            f"{max(grow_one, grow_all) / volume_mib:.1f} x the largest input volume's voxel bytes**; a loader "
            f"worker about {loader['peak'] / MiB:,.0f} MiB at batch 1 of 3D.\n\n"
            f"**Planning** (peak RSS growth; per million records = the slope between {small:,} and {args.records:,} "
            f"records). The driver held the whole plan as objects: {old / GiB:,.1f} GiB for RadFM's 16M records. "
            f"The streamed plan (`pipelines.plan`) needs {per_million[list(planning)[1]] / MiB:,.0f} MiB per million records, "
            f"**{new / GiB:,.2f} GiB for 16M** ({old / new:,.1f}x less; the whole planning, fingerprints and "
            "submission included): per sample it holds its 80-bit key, group and spool "
            "positions in numpy arrays, and one shard's jobs at a time. Its spools take "
            f"{new_disk / 1e6:,.0f} MB per million records on the local disk (`--plan-dir`, default TMPDIR); the whole "
            f"planning took {streamed_s:,.0f} s per million records (text hygiene, path confinement, fingerprints). 1-minute load average {load[0]:.2f} at the start, {os.getloadavg()[0]:.2f} at the end (other jobs "
            "disturb the times, not the memory figures).")
    print(body)
    if not args.no_docs:
        write_section("Memory: build worker, loader worker, planning", body)


if __name__ == "__main__":
    main()
