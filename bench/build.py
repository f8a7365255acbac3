"""Build throughput and storage, side by side with RadFM's way, in one run.

    python bench/build.py [--studies 40] [--keep DIR]

2D: full-size chest X-ray JPEGs (2500x3000, made by ``pipelines.demo`` from pydicom-data's
real CR radiograph). *Ours* is the shard worker on one core: JPEG draft-mode decode and
resize to 512, tokenization, keyword weights, zstd encoding and tar writing, i.e. a
finished sample on disk. *RadFM-style* is what RadFM does per sample and per epoch in
``__getitem__`` for the image alone: full decode, ``convert("RGB")``, bicubic random
resized crop to 512x512 and a float tensor. Both run in this process, single-threaded.

The 2D section also splits our per-sample time into stages (decode, resize, the rest of image loading, text, image
member, meta and token arrays, tar write), each timed alone with the real functions on the same samples, against
the floor (the JPEG draft decode alone), and times the alternatives for the costly stages (other zstd levels, the
stored member, cheaper resize kernels) that would change the stored bytes.

3D: bytes per volume in our shards against RadFM's storage (``.npy`` of uint8
3x512x512xD per volume, as ``nii2npy_for_radiopaedio.py`` writes them, one per series).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.report import machine, table, write_section  # noqa: E402
from pipelines.build import plan_jobs  # noqa: E402
from pipelines.config import BuildConfig  # noqa: E402
from pipelines.demo import build_demo  # noqa: E402
from pipelines.imaging.planes import FILTER, REDUCING_GAP  # noqa: E402
from pipelines.paths import PathResolver  # noqa: E402
from pipelines.sources import BuildContext, get_source  # noqa: E402
from pipelines.text import encode_text  # noqa: E402
from pipelines.worker import ShardPlan, WorkerEnv, _matcher, _tokenizer, build_sample, build_shard, load_images  # noqa: E402
from shards_spec.codec import encode_vision, npy_bytes  # noqa: E402
from shards_spec.layout import image_field  # noqa: E402
from shards_spec.reader import iter_raw_samples  # noqa: E402

torch.set_num_threads(1)
ROUNDS = 3
STAGE_ROUNDS = 5  # the stages are short: more rounds for steadier medians


def radfm_style(path: Path, rng: random.Random) -> torch.Tensor:
    """RadFM's 2D preprocessing: RGB, RandomResizedCrop(512, scale 0.8-1, bicubic), ToTensor, depth axis."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    for _ in range(10):  # torchvision's RandomResizedCrop parameter search
        area = w * h * rng.uniform(0.8, 1.0)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        cw, ch = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        if 0 < cw <= w and 0 < ch <= h:
            x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
            break
    else:
        x, y, cw, ch = 0, 0, w, h
    img = img.crop((x, y, x + cw, y + ch)).resize((512, 512), Image.Resampling.BICUBIC)  # as torchvision's resized_crop
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1).unsqueeze(-1)


def decode_only(paths: list[Path], draft: bool) -> float:
    """Seconds to decode the JPEGs alone: libjpeg's draft mode at the smallest DCT scale still >= 512 (what the
    builder does before resizing), or a full-size decode."""
    t0 = time.process_time()
    for p in paths:
        if p.stat().st_size <= 1000:
            continue
        try:
            with Image.open(p) as im:
                if draft:
                    im.draft("L", (512, 512))
                im.load()
        except OSError:
            pass
    return time.process_time() - t0


def _cpu_ms(stages: dict[str, tuple], rounds: int = STAGE_ROUNDS) -> dict[str, float]:
    """Per stage ``name: (fn, items)``, the median over ``rounds`` of the CPU milliseconds per item of ``fn`` over
    ``items``; the stages take turns within each round, so a change of load hits them all alike."""
    times: dict[str, list[float]] = {name: [] for name in stages}
    for _ in range(rounds):
        for name, (fn, items) in stages.items():
            t0 = time.process_time()
            for item in items:
                fn(item)
            times[name].append(time.process_time() - t0)
    return {name: 1e3 * statistics.median(times[name]) / max(len(stages[name][1]), 1) for name in stages}


def _draft_decode(path: Path, size: int) -> Image.Image:
    with Image.open(path) as im:
        im.draft("L", (size, size))
        im.load()
        return im.copy() if im.mode == "L" else im.convert("L")


def stage_breakdown(jobs: list, env: WorkerEnv, ours_ms: float, floor: float) -> tuple[list, list, dict]:
    """Where the per-sample time of our path goes, each stage timed alone on the samples that build (the real
    functions on the same inputs; decode and resize split with Pillow calls equal to the reader's), and what the
    costly stages would cost done another way (measured here; each changes the stored bytes)."""
    tok, matcher, cfg = _tokenizer(env), _matcher(env), env.config
    ok = []
    for job in jobs:
        try:
            build_sample(job, env)
            ok.append(job)
        except Exception:  # the planted bad inputs: rejects, timed within the whole path only
            pass
    size = cfg.image.size_2d
    paths = [Path(env.raw) / job.record.images[i].path for job in ok for i in job.spec.image_indices]
    per = len(paths) / max(len(ok), 1)  # images per sample
    decoded = [_draft_decode(p, size) for p in paths]
    visions = [load_images(job, env) for job in ok]
    level = cfg.shard.zstd_level

    def member(lvl: int):
        return lambda v: encode_vision(v, lvl) if lvl else npy_bytes(v)

    def resize(flt):
        return lambda im: im.resize((size, size), flt, reducing_gap=REDUCING_GAP)

    alt_levels = [lvl for lvl in (1, -1, 0) if lvl != level]
    kernels = {"bilinear": Image.Resampling.BILINEAR, "box": Image.Resampling.BOX}
    m = _cpu_ms({
        "decode": (lambda p: _draft_decode(p, size), paths),
        "resize": (resize(FILTER), decoded),
        "load": (lambda job: load_images(job, env), ok),
        "text": (lambda job: encode_text(tok, matcher, job.spec.question, job.spec.answer, list(job.spec.placements),
                                         cfg.text), ok),
        "vision": (member(level), visions),
        "sample": (lambda job: build_sample(job, env), ok),
        **{f"level {lvl}": (member(lvl), visions) for lvl in alt_levels},
        **{f"kernel {name}": (resize(flt), decoded) for name, flt in kernels.items()},
    })
    for key in ("decode", "resize", *(f"kernel {name}" for name in kernels)):
        m[key] *= per
    stages = [
        ("JPEG draft decode (the floor)", m["decode"]),
        ("resize to 512² (Pillow bicubic, antialiased, uint8)", m["resize"]),
        ("rest of image loading (path checks, sniff, EXIF, intensity and channel checks, stacking)",
         m["load"] - m["decode"] - m["resize"]),
        ("text: tokenization, image spans, labels, keyword weights", m["text"]),
        (f"image member: npy + zstd level {level}" if level else "image member: npy (stored)", m["vision"]),
        ("meta.json, token arrays, rest of the sample", m["sample"] - m["load"] - m["text"] - m["vision"]),
        ("tar write, SHA-256, index and marker, rejected inputs", ours_ms - m["sample"]),
    ]
    rows = [[name, f"{ms:.2f} ms", f"{ms / floor:.3f}"] for name, ms in stages]
    rows.append(["**whole path** (build_shard, per sample)", f"**{ours_ms:.2f} ms**", f"**{ours_ms / floor:.3f}**"])

    def member_kib(lvl: int) -> str:
        return f"{statistics.mean(len(member(lvl)(v)) for v in visions) / 1024:.0f} KiB"

    alts = [[f"image member: zstd level {level} (default, as built)" if level else "image member: stored (as built)",
             f"{m['vision']:.2f} ms", member_kib(level), f"{ours_ms / floor:.3f}"]]
    for lvl in alt_levels:
        what = f"zstd level {lvl}" if lvl else "stored `vision.npy` (`--zstd-level 0`)"
        ms = m[f"level {lvl}"]
        alts.append([f"image member: {what}", f"{ms:.2f} ms", member_kib(lvl), f"{(ours_ms - m['vision'] + ms) / floor:.3f}"])
    for name in kernels:
        ms = m[f"kernel {name}"]
        alts.append([f"resize: Pillow {name} instead of bicubic", f"{ms:.2f} ms", "(not measured)",
                     f"{(ours_ms - m['resize'] + ms) / floor:.3f}"])
    return rows, alts, {"stage_samples": len(ok), "stages": dict(stages)}


def _floor_verdict(info: dict) -> str:
    """The goal's status in words, every figure from this run's stage table."""
    stages, floor = info["stages"], info["draft_ms"]
    ratio = info["ours_ms"] / info["draft_ms"]
    resize = next(ms for name, ms in stages.items() if name.startswith("resize"))
    member = next(ms for name, ms in stages.items() if name.startswith("image member"))
    met = "met" if ratio <= 1.15 else "NOT met"
    return (f"Goal (whole path <= 1.15x the floor): **{met}** at {ratio:.2f}x. Of the stages above the floor, the resize "
            f"({resize / floor:.3f}x) and the image member ({member / floor:.3f}x) together are {(resize + member) / floor:.3f}x "
            f"the floor; both are fixed by what is stored (Pillow's antialiased bicubic kernel, the zstd level), and "
            f"every other stage together is {(info['ours_ms'] - floor - resize - member) / floor:.3f}x.")


def bench_2d(raw: Path, work: Path) -> tuple[list, dict]:
    source = get_source("mimic")
    cfg = BuildConfig()
    ctx = BuildContext(raw / "mimic", "radfm", raw / "mimic" / "radfm", PathResolver(raw / "mimic"), 0, cfg.image)
    jobs, _ = plan_jobs(source, ctx, None)
    env = WorkerEnv(str(raw / "mimic"), cfg, "default", "lexicon")
    _tokenizer(env), _matcher(env)  # load once, outside the timing (a worker keeps them)
    paths = [raw / "mimic" / j.record.images[0].path for j in jobs]
    good = [p for p in paths if p.exists() and p.stat().st_size > 0]
    ours_times, radfm_times, draft_times, full_times = [], [], [], []
    for round_ in range(ROUNDS):  # alternate the sides so drift hits all of them
        plan = ShardPlan("mimic", "bench", "2d", round_, str(work / f"mimic-bench-2d-{round_:06d}.tar"), "bench", tuple(jobs))
        t0 = time.process_time()
        stats = build_shard(plan, env)
        ours_times.append(time.process_time() - t0)
        n_ours = stats["samples"]
        rng = random.Random(round_)
        ok, t0 = 0, time.process_time()
        for p in good:
            try:
                radfm_style(p, rng)
                ok += 1
            except OSError:
                pass  # the planted corrupt JPEG; RadFM would substitute noise
        radfm_times.append(time.process_time() - t0)
        draft_times.append(decode_only(good, draft=True))
        full_times.append(decode_only(good, draft=False))
    ours_s, radfm_s = statistics.median(ours_times), statistics.median(radfm_times)
    n_dec = max(1, sum(1 for p in good if p.stat().st_size > 1000))
    draft_ms, full_ms = 1e3 * statistics.median(draft_times) / n_dec, 1e3 * statistics.median(full_times) / n_dec
    sizes = [Image.open(p).size for p in good[:3] if p.stat().st_size > 1000]
    ours_rate, radfm_rate = n_ours / ours_s, ok / radfm_s
    tar_bytes = Path(plan.tar_path).stat().st_size
    src_bytes = sum(p.stat().st_size for p in good)
    rows = [
        ["ours: decode+resize+tokenize+weights+zstd+tar write", n_ours, f"{ours_s:.2f} s", f"{ours_rate:.1f}", f"{1e3 / ours_rate:.1f} ms"],
        ["RadFM-style: full decode, RGB, bicubic RandomResizedCrop 512, float tensor", ok, f"{radfm_s:.2f} s", f"{radfm_rate:.1f}", f"{1e3 / radfm_rate:.1f} ms"],
    ]
    info = {"ratio": ours_rate / radfm_rate, "sizes": sizes, "tar_per_sample": tar_bytes / max(n_ours, 1),
            "ours_ms": 1e3 / ours_rate, "draft_ms": draft_ms, "full_ms": full_ms,
            "jpeg_per_sample": src_bytes / max(len(good), 1), "rejects": len(stats["rejects"])}
    info["stage_rows"], info["alt_rows"], more = stage_breakdown(list(jobs), env, info["ours_ms"], draft_ms)
    info.update(more)
    return rows, info


def bench_ray(raw: Path, work: Path) -> tuple[int, float]:
    """End-to-end `python -m pipelines.build` with a local Ray on all cores (startup included)."""
    shutil.rmtree(work / "ray", ignore_errors=True)  # a kept output would make the build an incremental no-op
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipelines.build", "--dataset", "mimic", "--raw", str(raw / "mimic"), "--out",
                    str(work / "ray"), "--executor", "ray", "--samples-per-shard-2d", "16", "--quiet"],
                   check=True, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t0
    manifest = json.loads((work / "ray" / "mimic" / "manifest.json").read_text())
    return manifest["samples"], elapsed


def bench_3d(raw: Path, work: Path) -> tuple[list, float]:
    subprocess.run([sys.executable, "-m", "pipelines.build", "--dataset", "rad3d", "--raw", str(raw / "rad3d"), "--out",
                    str(work / "3d"), "--executor", "serial", "--quiet"], check=True, cwd=ROOT, stderr=subprocess.DEVNULL)
    ours = radfm = volumes = 0
    per_depth: dict[int, list[float]] = {}
    for tar in sorted((work / "3d").rglob("*.tar")):
        for raw_sample in iter_raw_samples(tar):
            s, c, h, w, d = json.loads(raw_sample.members["meta.json"].data)["vision_shape"]
            size = raw_sample.members[image_field(raw_sample.members)].size  # spec 1.4: slices.npy.zst
            volumes += s
            ours += size
            radfm += s * (3 * h * w * d + 128)
            per_depth.setdefault(d, []).append(size / s)
    rows = [[d, len(v), f"{np.mean(v) / 1024:.0f} KiB", f"{(3 * 512 * 512 * d + 128) / 1024:.0f} KiB",
             f"{np.mean(v) / (3 * 512 * 512 * d + 128):.3f}"] for d, v in sorted(per_depth.items())]
    rows.append(["all", volumes, f"{ours / volumes / 1024:.0f} KiB", f"{radfm / volumes / 1024:.0f} KiB", f"**{ours / radfm:.3f}**"])
    return rows, ours / radfm


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--studies", type=int, default=40, help="demo MIMIC studies (1-3 full-size images each)")
    ap.add_argument("--keep", type=Path, help="keep the generated data here")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench_build_"))
    raw = work / "raw"
    if not (raw / "mimic").exists():
        print("generating full-size demo data ...", file=sys.stderr)
        build_demo(raw, seed=0, mimic_studies=args.studies, rad3d_cases=6, image_size=(2500, 3000))
    load0 = os.getloadavg()[0]
    rows2d, info = bench_2d(raw, work)
    ray_samples, ray_s = bench_ray(raw, work)
    rows3d, ratio3d = bench_3d(raw, work)
    print(info, ray_samples, ray_s, ratio3d, file=sys.stderr)
    body = f"""Machine: {machine()}; run of {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, 1-minute load
average {load0:.2f} at the start and {os.getloadavg()[0]:.2f} at the end. Script: `python bench/build.py` (one run;
every side measured in it).

### 2D build throughput, full-size chest X-ray JPEGs

Images: {info['sizes'][0][0]}x{info['sizes'][0][1]} JPEGs derived from pydicom-data's real chest CR (`pipelines.demo
--image-size`). One process, one thread each side; CPU time of the process (other jobs on the machine disturb it far
less than wall time); median of {ROUNDS} alternating rounds.

{table(["path", "samples", "time", "samples/s per core", "per sample"], rows2d)}

**Ours / RadFM-style = {info['ratio']:.1f}x** per core. This is a **design comparison, not the same work or the same
output**: ours writes a finished grey uint8 512² sample once (decode, resize, tokenize, keyword weights, zstd, tar),
RadFM-style produces a three-channel float crop and repeats that every epoch. The floor of our path, measured in
this run on the same files: the JPEG decode alone takes {info['draft_ms']:.1f} ms per image in draft mode (libjpeg's
DCT scaling to the smallest size still >= 512) and {info['full_ms']:.1f} ms at full size, against {info['ours_ms']:.1f} ms
for our whole per-sample path: **{info['ours_ms'] / info['draft_ms']:.2f}x the draft-decode floor** (goal <= 1.15x).

Where the per-sample time goes: each stage of our path timed alone in this run ({info['stage_samples']} samples that
build; the real functions on the same inputs, CPU time, median of {STAGE_ROUNDS} rounds); the last stage is the whole path
less the sample itself, so the rows add up to it. "x floor" is the stage over the floor above ({info['draft_ms']:.2f} ms,
timed in turns with the whole path; the decode row is the same decode timed again among the stages).

{table(["stage", "per sample", "x floor"], info["stage_rows"])}

What the costly stages would cost done another way, measured in this run on the same images (each of these changes
the stored bytes, so none is the default; "whole path / floor" is the whole path with only that stage swapped):

{table(["alternative", "per sample", "image member", "whole path / floor"], info["alt_rows"])}

{_floor_verdict(info)}

End to end, `python -m pipelines.build --executor ray` on all {os.cpu_count()} cores (a local Ray started for the run,
planning, {ray_samples} samples, manifest) took {ray_s:.1f} s; at this size Ray's start-up dominates, so that is a
smoke figure, not a throughput one.

Storage: {info['tar_per_sample'] / 1024:.0f} KiB per 2D sample in the shard (image, tokens, weights, meta), against
{info['jpeg_per_sample'] / 1024:.0f} KiB per source JPEG that RadFM reads every epoch.

### 3D bytes per volume

Rad3D demo shards (real MRI/CT volumes, `python -m pipelines.build --dataset rad3d`), against RadFM's `.npy` storage
of uint8 3x512x512xD per volume.

{table(["depth D", "volumes", "ours per volume", "RadFM per volume", "ours / RadFM"], rows3d)}

**3D bytes per volume: {ratio3d:.3f} of RadFM's** (target <= 0.25): one grey channel instead of three copies, then
zstd. Caveat: the demo volumes are small fixtures upsampled to 512x512, which compress unusually well; this is not a
figure for native-resolution CT or MR series."""
    write_section("Build (bench/build.py)", body)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
