"""Look inside shards.

    python -m pipelines.inspect PATH [--show N] [--montage out.png] [--validate]

PATH is a shard ``.tar``, a directory (all shards below it) or a ``manifest.json``; any of them may be an
object-store URL (``s3://bucket/prefix/mimic``), read sample by sample through the index sidecars (ranged reads,
never a whole shard; ``shards_spec.storage``).
Prints a summary (samples per stream and task, image shapes, token lengths, loss-weight
statistics, bytes per member). ``--show N`` decodes N samples, showing image spans as
``[IMG i]`` and keyword-weighted tokens as ``*token*``; ``--montage`` writes a contact
sheet PNG (3D: the middle slice of each volume); ``--validate`` runs the validator.

Safe on hostile tars: nothing is extracted to disk, nothing is unpickled, member sizes and
counts are bounded (``shards_spec.tario``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from shards_spec import storage
from shards_spec.codec import DecodeError
from shards_spec.jsonio import read_json
from shards_spec.layout import (
    FIELD_INPUT_IDS,
    FIELD_LABELS,
    FIELD_LOSS_WEIGHT,
    FIELD_META,
    FIELD_VISION,
    IGNORE_INDEX,
)
from shards_spec.reader import GroupingError, iter_indexed_samples, iter_raw_samples
from shards_spec.schema import Manifest, SampleMeta, SchemaError
from shards_spec.tario import UnsafeTar
from shards_spec.tokenizer import fingerprint_of


def find_tars(path: Path | str) -> list[Path] | list[str]:
    if storage.is_remote(path):
        url = str(path).rstrip("/")
        if url.endswith(".tar"):
            return [url]
        if url.endswith(".json"):
            manifest = Manifest.from_dict(json.loads(storage.read_bytes(url)))
            return [str(storage.join(storage.parent(url), s.path)) for s in manifest.shards]
        return sorted(loc for loc in storage.listing(url) if loc.endswith(".tar"))
    if path.is_file() and path.name.endswith(".tar"):
        return [path]
    if path.is_file():  # a manifest
        manifest = Manifest.from_dict(read_json(path))
        return [path.parent / s.path for s in manifest.shards]
    return sorted(path.rglob("*.tar"))


def _stats(values: list[float]) -> str:
    if not values:
        return "-"
    a = np.asarray(values, dtype=np.float64)
    return f"min {a.min():.0f}  p50 {np.percentile(a, 50):.0f}  mean {a.mean():.1f}  p95 {np.percentile(a, 95):.0f}  max {a.max():.0f}"


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return str(n)


class Summary:
    def __init__(self) -> None:
        self.tasks: Counter[tuple[str, str]] = Counter()
        self.shapes: Counter[tuple[str, tuple]] = Counter()
        self.lengths: dict[str, list[int]] = defaultdict(list)
        self.learned = self.keyword = self.tokens = 0
        self.member_bytes: Counter[str] = Counter()
        self.samples = 0
        self.shards = 0
        self.errors: list[str] = []

    def add(self, meta: SampleMeta, decoded: dict[str, Any], sizes: dict[str, int]) -> None:
        stream = meta.stream
        self.samples += 1
        self.tasks[(stream, meta.task)] += 1
        shape = tuple(decoded[FIELD_VISION].shape)
        self.shapes[(stream, (shape[0],) + shape[1:])] += 1
        self.lengths[stream].append(int(decoded[FIELD_INPUT_IDS].size))
        labels, weights = decoded[FIELD_LABELS], decoded[FIELD_LOSS_WEIGHT]
        self.tokens += labels.size
        self.learned += int(np.sum(labels != IGNORE_INDEX))
        self.keyword += int(np.sum(weights > 1))
        for field, n in sizes.items():
            self.member_bytes[field] += n

    def render(self) -> str:
        lines = [f"shards: {self.shards}   samples: {self.samples}"]
        lines.append("\nsamples per stream / task:")
        for (stream, task), n in sorted(self.tasks.items()):
            lines.append(f"  {stream:3s} {task:12s} {n:8d}")
        lines.append("\nimage arrays [S, C, H, W, D]:")
        for (stream, shape), n in sorted(self.shapes.items()):
            lines.append(f"  {stream:3s} {str(list(shape)):28s} {n:8d}")
        lines.append("\ntokens per sample:")
        for stream, values in sorted(self.lengths.items()):
            lines.append(f"  {stream:3s} {_stats(values)}")
        if self.tokens:
            lines.append(
                f"\nloss weights: {self.learned / self.tokens:.1%} of tokens learned; "
                f"{self.keyword / max(self.learned, 1):.1%} of learned tokens keyword-weighted"
            )
        total = sum(self.member_bytes.values())
        lines.append(f"\nbytes (payload): {_human(total)} total, {_human(total / max(self.samples, 1))} per sample")
        for field, n in sorted(self.member_bytes.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {field:18s} {_human(n / max(self.samples, 1)):>12s} per sample")
        if self.errors:
            lines.append(f"\nunreadable: {len(self.errors)}")
            lines.extend(f"  {e}" for e in self.errors[:20])
        return "\n".join(lines)


def render_tokens(meta: SampleMeta, decoded: dict[str, Any], tokenizer) -> str:
    """The sample's tokens as ``Tokenizer.render`` shows them (``|`` between tokens, image spans as ``[IMG i]``,
    BOS + question in ``⟦…⟧``, keyword-weighted tokens as ``*token*``); plain ids when ``tokenizer`` is not the
    one the shard was built with."""
    ids = decoded[FIELD_INPUT_IDS]
    if tokenizer is None or tokenizer.fingerprint != fingerprint_of(meta.tokenizer):
        why = "no tokenizer" if tokenizer is None else f"--tokenizer is {tokenizer.fingerprint}, the shard's {meta.tokenizer}"
        return " ".join(map(str, ids.tolist())) + f"   (ids: {why})"
    return tokenizer.render(ids, decoded[FIELD_LABELS], decoded[FIELD_LOSS_WEIGHT], meta.n_question_tokens)


def montage(images: list[tuple[str, np.ndarray]], out: Path, tile: int = 160, cols: int = 6) -> None:
    from PIL import Image, ImageDraw

    rows = max(1, -(-len(images) // cols))
    sheet = Image.new("L", (cols * tile, rows * (tile + 14)), 0)
    draw = ImageDraw.Draw(sheet)
    for n, (label, vol) in enumerate(images):
        c, h, w, d = vol.shape
        plane = vol[:, :, :, d // 2]
        img = Image.fromarray(plane[0] if c == 1 else plane.transpose(1, 2, 0)).convert("L").resize((tile, tile))
        x, y = (n % cols) * tile, (n // cols) * (tile + 14)
        sheet.paste(img, (x, y + 14))
        draw.text((x + 2, y + 1), label[: tile // 6], fill=255)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)


def inspect(path: Path, show: int = 0, montage_path: Path | None = None, montage_max: int = 36, tokenizer=None) -> Summary:
    summary = Summary()
    shown = 0
    tiles: dict[str, list[tuple[str, np.ndarray]]] = defaultdict(list)  # per stream
    for tar in find_tars(path):
        summary.shards += 1
        try:
            for raw in (iter_indexed_samples(tar) if storage.is_remote(tar) else iter_raw_samples(tar)):
                try:
                    decoded = raw.decode()
                    meta = SampleMeta.from_dict(decoded.get(FIELD_META))
                except (DecodeError, SchemaError) as exc:
                    summary.errors.append(f"{storage.name(tar)}#{raw.key}: {exc}")
                    continue
                summary.add(meta, decoded, {f: m.size for f, m in raw.members.items()})
                if shown < show:
                    shown += 1
                    print(f"--- {raw.key}  [{meta.dataset} {meta.split} {meta.stream} {meta.task}/{meta.variant}]"
                          f"  vision {list(decoded[FIELD_VISION].shape)}  tokens {meta.n_tokens}"
                          f"  sources {', '.join(meta.source_paths)}")
                    print(render_tokens(meta, decoded, tokenizer))
                stream_tiles = tiles[meta.stream]
                if montage_path is not None and len(stream_tiles) < montage_max:
                    for i, vol in enumerate(decoded[FIELD_VISION][: montage_max - len(stream_tiles)]):
                        stream_tiles.append((f"{meta.stream} {meta.task} #{i}", vol))
        except (UnsafeTar, GroupingError, OSError, Exception) as exc:  # report and go on to the next shard
            summary.errors.append(f"{tar}: {type(exc).__name__}: {exc}")
    if montage_path is not None and tiles:
        # an equal share of the sheet for every stream present
        share = max(1, montage_max // len(tiles))
        montage([t for stream in sorted(tiles) for t in tiles[stream][:share]], montage_path)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.inspect", description=__doc__.split("\n\n")[0])
    ap.add_argument("path")
    ap.add_argument("--show", type=int, default=0, metavar="N", help="decode and print N samples")
    ap.add_argument("--montage", type=Path, metavar="PNG", help="write a contact sheet of the images")
    ap.add_argument("--validate", action="store_true", help="also run python -m shards_spec.validate on PATH")
    ap.add_argument("--tokenizer", default="default", help="the shards' tokenizer folder, for --show (default: the build default)")
    args = ap.parse_args(argv)
    path = args.path if storage.is_remote(args.path) else Path(args.path)
    if not storage.is_remote(path) and not path.exists():
        print(f"{path}: does not exist", file=sys.stderr)
        return 2
    if args.validate and storage.is_remote(path):
        print("error: --validate checks local shard files; inspect the remote shards without it (or validate a local "
              "copy)", file=sys.stderr)
        return 2
    tokenizer = None
    if args.show:
        from shards_spec.tokenizer import TokenizerError, load_tokenizer

        try:
            tokenizer = load_tokenizer(args.tokenizer)
        except TokenizerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    summary = inspect(path, args.show, args.montage, tokenizer=tokenizer)
    print(summary.render())
    if args.montage:
        print(f"\nmontage: {args.montage}")
    status = 0
    if args.validate:
        from shards_spec.validate import validate_paths

        report = validate_paths([str(path)])
        for line in report.violations:
            print(line)
        print(f"\nvalidate: {'OK' if not report.violations else 'FAIL'} ({len(report.violations)} violations)")
        status = 1 if report.violations else 0
    return 1 if summary.errors else status


if __name__ == "__main__":
    raise SystemExit(main())
