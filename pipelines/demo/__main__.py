"""``python -m pipelines.demo --out DIR``: write the demo raw tree (every registered source's fixture).

``--list-builds`` prints one line per dataset, ``<dataset> <build arguments>``, for ``make demo`` to build.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from pipelines.demo import DemoSourceError, build_demo, fixtures


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/raw"), help="output root (default data/raw)")
    parser.add_argument("--seed", type=int, default=0)
    for f in fixtures():
        parser.add_argument(f"--{f.name}-{f.size_unit}", type=int, default=f.default_size, dest=f.size_option,
                            help=f"{f.size_unit} of {f.name} (default {f.default_size}, at least {f.min_size})")
    parser.add_argument("--image-size", type=int, default=None,
                        help="long side of the chest JPEGs (default: varied 1024-1400)")
    parser.add_argument("--list-builds", action="store_true", help="print '<dataset> <build args>' lines and exit")
    args = parser.parse_args(argv)
    if args.list_builds:
        for f in fixtures():
            print(" ".join((f.name, *f.shard_args)))
        return 0

    start = time.perf_counter()
    sizes = {f.size_option: getattr(args, f.size_option) for f in fixtures()}
    try:
        info = build_demo(args.out, args.seed, image_size=args.image_size, log=print, **sizes)
    except (DemoSourceError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - start
    print(f"demo raw tree: {args.out.resolve()} ({_tree_bytes(args.out) / 1e6:.1f} MB, {seconds:.1f} s)")
    for f in fixtures():
        counts = ", ".join(f"{v} {k}" for k, v in info[f.name].items() if isinstance(v, int))
        print(f"  {f.name}: {counts}; {sum(info[f.name]['rows'].values())} table rows / JSON entries")
    kinds = ", ".join(sorted({p["kind"] for p in info["planted"]}))
    print(f"  planted faults: {len(info['planted'])} ({kinds})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
