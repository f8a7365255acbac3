"""Prove that a change keeps the demo's bytes: build the demo raw tree and its shards with two checkouts of
the code, then compare every file.

    python tools/demo_identity.py build --code DIR --out OUT     # one checkout's demo tree and shards
    python tools/demo_identity.py compare OUT_A OUT_B            # every file of both, byte for byte
    python tools/demo_identity.py batches --code DIR --shards OUT/shards   # the trainer's batches, as keys

``build`` runs only the public commands (``python -m pipelines.demo``, ``python -m pipelines.build``) with
``PYTHONPATH=DIR``, so it works for any revision that has them: the raw tree goes to ``OUT/raw``, the shards to
``OUT/shards`` (MIMIC in RadFM mode with ``make demo``'s shard size, Rad3D likewise) and ``OUT/native`` (MIMIC
in native mode), all with the serial executor.

``compare`` lists every file under both trees and compares its bytes, except what is not the data itself: the
completion markers ``*.stats.json`` are compared without ``duration_s`` (a timing) and ``fingerprint`` (the hash
of the build plan, which covers the code's own record structure, so renaming a field changes it and makes an
old build rebuild once; how many differ is printed), and messages that name the absolute output root are
compared with that root replaced by a placeholder. Prints one line per difference and a summary; exits 1 when
anything differs.

``batches`` prints, with one checkout's trainer, the sample keys of the first 40 global batches of both streams
for one and two lanes (``train.plan.global_batch_keys``; the order does not depend on world size or workers):
equal output from two checkouts (on byte-identical shards) means the same batches in training. (Checkouts from
before the elastic order lack ``global_batch_keys``.)

To compare a branch with the commit it started from::

    git archive BASE | tar -x -C /tmp/base
    python tools/demo_identity.py build --code /tmp/base --out /tmp/id/base
    python tools/demo_identity.py build --code . --out /tmp/id/new
    python tools/demo_identity.py compare /tmp/id/base /tmp/id/new
    diff <(python tools/demo_identity.py batches --code /tmp/base --shards /tmp/id/base/shards) \
         <(python tools/demo_identity.py batches --code . --shards /tmp/id/new/shards)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

BUILDS = (
    # (output folder, dataset, extra build arguments)
    ("shards", "mimic", ["--samples-per-shard-2d", "8"]),
    ("shards", "rad3d", ["--samples-per-shard-3d", "6"]),
    ("native", "mimic", ["--mode", "native", "--samples-per-shard-2d", "8"]),
)


def run(code: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(code.resolve()), "RAY_AUTH_MODE": "disabled"}
    print("+", " ".join(a if "\n" not in a else "<script>" for a in args), file=sys.stderr, flush=True)
    subprocess.run([sys.executable, *args], cwd=code, env=env, check=True)


def build(code: Path, out: Path) -> None:
    out = out.resolve()
    run(code, "-m", "pipelines.demo", "--out", str(out / "raw"))
    for folder, dataset, extra in BUILDS:
        run(code, "-m", "pipelines.build", "--dataset", dataset, "--raw", str(out / "raw" / dataset),
            "--out", str(out / folder), "--executor", "serial", "--quiet", *extra)


BATCH_KEYS = r"""
import json, sys
from train.config import SourceConfig
from train.sources import resolve_sources
from train.stream import StreamConfig, global_batch_keys
shards = resolve_sources([SourceConfig(sys.argv[1], splits=["train", "validate", "test"])])
out = {}
for stream, batch in (("2d", 4), ("3d", 1)):
    for lanes in (1, 2):
        cfg = StreamConfig(stream, batch * lanes, block_size=8, seed=3, lanes=lanes)
        out[f"{stream} global batch {batch * lanes} in {lanes} lanes"] = global_batch_keys(shards[stream], cfg, 1, 40)
print(json.dumps(out, indent=1, sort_keys=True))
"""


def batch_keys(code: Path, shards: Path) -> None:
    run(code, "-c", BATCH_KEYS, str(shards.resolve()))


def normalised(path: Path, root: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".stats.json"):
        stats = json.loads(data)
        stats.pop("duration_s", None)
        stats.pop("fingerprint", None)
        data = json.dumps(stats, sort_keys=True).encode()
    return data.replace(str(root.resolve()).encode(), b"<OUT>")


def fingerprint(path: Path) -> str | None:
    return json.loads(path.read_bytes()).get("fingerprint") if path.name.endswith(".stats.json") else None


def files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def compare(a: Path, b: Path) -> int:
    fa, fb = files(a), files(b)
    problems = [f"only in {a}: {name}" for name in sorted(fa.keys() - fb.keys())]
    problems += [f"only in {b}: {name}" for name in sorted(fb.keys() - fa.keys())]
    same = 0
    fingerprints = 0
    digest = hashlib.sha256()
    for name in sorted(fa.keys() & fb.keys()):
        da, db = normalised(fa[name], a), normalised(fb[name], b)
        if da != db:
            problems.append(f"differs: {name} ({len(da)} vs {len(db)} bytes)")
        else:
            same += 1
            digest.update(name.encode() + b"\0" + hashlib.sha256(da).digest())
        fingerprints += fingerprint(fa[name]) != fingerprint(fb[name])
    for line in problems:
        print(line)
    kinds = {}
    for name in fa.keys() & fb.keys():
        kind = "tar" if name.endswith(".tar") else Path(name).name.split(".", 1)[-1] if "/" in name else "other"
        kinds[kind] = kinds.get(kind, 0) + 1
    top = {k: v for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])[:8]}
    print(f"{'DIFFERENT' if problems else 'IDENTICAL'}: {same} of {len(fa.keys() | fb.keys())} files equal "
          f"(most common kinds: {top}); digest of all equal files {digest.hexdigest()[:16]}; "
          f"plan fingerprints differing: {fingerprints}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build")
    b.add_argument("--code", type=Path, required=True)
    b.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("compare")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    k = sub.add_parser("batches")
    k.add_argument("--code", type=Path, required=True)
    k.add_argument("--shards", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.command == "build":
        build(args.code, args.out)
        return 0
    if args.command == "batches":
        batch_keys(args.code, args.shards)
        return 0
    return compare(args.a, args.b)


if __name__ == "__main__":
    raise SystemExit(main())
