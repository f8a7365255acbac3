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
* **Planning.** ``--records`` jobs shaped like a MIMIC plan (record, sample spec, key) are made in a fresh process,
  then partitioned into shards (``pipelines.incremental.partition``); its RSS growth per million records, and the
  projection to RadFM's 16M, is what the build driver holds for a plan.
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


def rss_now() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
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
            t0 = time.perf_counter()
            stats = build_shard(plan, env)
            return {"rss_before": before, "peak": peak_rss(), "seconds": time.perf_counter() - t0,
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

_PLAN = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from bench.memory import rss_now
from pipelines.incremental import partition
from pipelines.records import ImagePlacement, ImageRef, Job, Record, RecordFields, SampleSpec
from shards_spec.hashing import sample_key
n = int(sys.argv[2])
before = rss_now()
jobs = []
for i in range(n):
    sid = f"p1{i % 10}/p1{i:07d}/s5{i:07d}"
    rec = Record(dataset="mimic", source_id=sid, split="train", stream="2d",
                 images=(ImageRef(f"files/{sid}/{i:08x}-{i:08x}-{i:08x}.jpg", "image2d"),), fields=RecordFields(),
                 modality="X-ray")
    spec = SampleSpec(task="caption", variant="findings", question=f"Describe the chest X-ray {i}.",
                      answer="The lungs are clear. No pleural effusion or pneumothorax. Heart size is normal." + str(i),
                      placements=(ImagePlacement("question", 0),), image_indices=(0,))
    jobs.append(Job(sample_key("mimic", sid, "caption", "findings"), rec, spec))
planned = rss_now()
shards = partition([j.key for j in jobs], 1000)
print(json.dumps({"before": before, "jobs": planned, "partitioned": rss_now(), "shards": len(shards)}))
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
    print(f"planning {args.records:,} records ...", flush=True)
    plan = run_child(_PLAN, str(args.records))

    per_million = (plan["partitioned"] - plan["before"]) / args.records * 1e6
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
        ["build driver, plan", f"{args.records:,} MIMIC-shaped jobs + partition ({plan['shards']:,} shards)",
         f"{plan['before'] / MiB:,.0f}", f"{plan['partitioned'] / MiB:,.0f}",
         f"{per_million / MiB:,.0f} per million records; 16M: {16 * per_million / 2**30:,.1f} GiB"],
    ]
    from bench.report import machine, table, write_section

    body = (f"`python bench/memory.py --volumes {args.volumes} --shape {' '.join(map(str, shape))} --records "
            f"{args.records} --batches {args.batches}` on {machine()}. Resident set sizes (RSS); a Ray worker's "
            "baseline includes Ray's and the project's imports.\n\n"
            + table(["process", "work", "RSS before (MiB)", "peak RSS (MiB)", "growth"], rows)
            + f"\n\nThe shard task built {build['samples']} samples ({build['bytes'] / MiB:,.0f} MiB of tar) in "
            f"{build['seconds']:.1f} s. A shard of {args.volumes} volumes grows the worker by {grow_all / grow_one:.2f}x what a "
            "shard of one volume does: samples are written to the tar as they are made, so the bound is per volume, "
            f"not per shard: **a build worker needs about {build['rss_before'] / MiB:,.0f} MiB + "
            f"{max(grow_one, grow_all) / volume_mib:.1f} x the largest input volume's voxel bytes**; a loader "
            f"worker about {loader['peak'] / MiB:,.0f} MiB at batch 1 of 3D. The planning figure is the driver's "
            f"whole plan in memory: {16 * per_million / 2**30:,.1f} GiB for RadFM's 16M records (a head node with "
            "32 GiB or more holds it; the plan is not streamed).")
    print(body)
    if not args.no_docs:
        write_section("Memory: build worker, loader worker, planning", body)


if __name__ == "__main__":
    main()
