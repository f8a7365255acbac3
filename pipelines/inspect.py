"""Look inside shards.

    python -m pipelines.inspect PATH [--show N] [--montage out.png] [--validate]

PATH is a shard ``.tar``, a directory (all shards below it) or a ``manifest.json``; any of them may be an
object-store URL (``s3://bucket/prefix/mimic``), read sample by sample through the index sidecars (ranged reads,
never a whole shard; ``shards_spec.storage``).
Prints a summary (samples per stream and task, image shapes, grey and colour images, token
lengths, loss-weight statistics, bytes per member). ``--show N`` decodes N samples
(``--per-task``: N of every dataset and task), showing image spans as ``[IMG i]`` where they
sit in the tokens (inside the answer for interleaved text) and keyword-weighted tokens as
``*token*``; ``--montage`` writes a contact sheet PNG with a few tiles of every dataset,
labelled by dataset and task (3D: the middle slice of each volume; colour images in colour);
``--validate`` runs the validator.

Anything it cannot read is one line under ``problems:`` (``<file>[#<key>]: <what>``) and the
rest is still read: a sample with a missing or undecodable member, or a mistyped
``meta.json``, is skipped; a truncated or unsafe tar stops at that point; a manifest entry
that is mistyped or names a missing shard is skipped. A PATH that is no shard, manifest or
folder of shards (a README, a NIfTI volume) says what it is. Exit status: 0 when shards were
read without a problem, 1 when there was a problem or no shard at all, 2 for a usage error
(no such PATH, an unusable ``--tokenizer``).

Safe on hostile tars: nothing is extracted to disk, nothing is unpickled, member sizes and
counts are bounded (``shards_spec.tario``), and a manifest's paths must stay inside its folder.
"""

from __future__ import annotations

import argparse
import json
import sys
import tarfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from shards_spec import storage
from shards_spec.codec import DecodeError, decode_member
from shards_spec.jsonio import loads, read_json
from shards_spec.layout import (
    FIELD_INPUT_IDS,
    FIELD_LABELS,
    FIELD_LOSS_WEIGHT,
    FIELD_META,
    FIELD_VISION,
    FIELDS,
    FIELDS_BY_IMAGE,
    IGNORE_INDEX,
    IMAGE_FIELDS,
    MANIFEST_NAME,
    image_field,
    is_plain_relative,
)
from shards_spec.reader import file_kind, iter_indexed_samples, iter_raw_samples, read_as_tar, run_cli
from shards_spec.schema import SampleMeta, SchemaError, parse_manifest
from shards_spec.tokenizer import fingerprint_of

NOT_SHARDS = f"not a shard (.tar), a {MANIFEST_NAME} or a folder of shards"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


def _find_remote_tars(url: str) -> tuple[list[str], list[str]]:
    """:func:`find_tars` for an object-store URL: a shard, a manifest's shards, or every shard under a prefix."""
    if url.endswith(".tar"):
        return [url], []
    try:
        if url.endswith(".json"):
            return _manifest_tars(url, loads(storage.read_bytes(url)),
                                  lambda rel: str(storage.join(storage.parent(url), rel)))
        tars = sorted(loc for loc in storage.listing(url) if loc.endswith(".tar"))
    except (OSError, ValueError) as exc:
        return [], [f"{url}: unreadable: {_reason(exc)}"]
    return tars, ([] if tars else [f"{url}: no shards (*.tar) under this prefix"])


def find_tars(path: Path | str) -> tuple[list, list[str]]:
    """The shards ``path`` names (a tar, a manifest's shards, every tar below a folder, local or on object storage)
    and one problem line for each thing that is not readable as one."""
    if storage.is_remote(path):
        return _find_remote_tars(str(path).rstrip("/"))
    if path.is_dir():
        tars = sorted(path.rglob("*.tar"))
        if not tars:
            return [], [f"{path}: no shards (*.tar) below it; build some with `python -m pipelines.build` "
                        "(or `make demo`)"]
        return tars, []
    try:
        kind = file_kind(path)
    except OSError as exc:
        return [], [f"{path}: unreadable: {_reason(exc)}"]
    if read_as_tar(path, kind):
        return [path], []
    if kind != "json":
        return [], [f"{path}: {NOT_SHARDS}: {kind}"]
    try:
        raw = read_json(path)
    except UnicodeDecodeError:
        return [], [f"{path}: {NOT_SHARDS}: not UTF-8 text"]
    except json.JSONDecodeError as exc:
        return [], [f"{path}: {NOT_SHARDS}: not valid JSON ({exc})"]
    except (OSError, ValueError) as exc:
        return [], [f"{path}: unreadable: {_reason(exc)}"]
    return _manifest_tars(path, raw, lambda rel: path.parent / rel if (path.parent / rel).is_file() else None)


def _manifest_tars(where, raw, locate) -> tuple[list, list[str]]:
    """The shards a parsed manifest lists, located by ``locate(relative path)`` (None: missing), and one problem
    line per bad entry; a path leaving the manifest's folder is never located."""
    _, entries, problems = parse_manifest(raw)
    problems = [f"{where}: {p}" for p in problems]
    tars = []
    for i, entry in entries:
        if not is_plain_relative(entry.path):
            problems.append(f"{where}: shards[{i}].path {entry.path!r} leaves the manifest's folder; not read")
        elif (found := locate(entry.path)) is None:
            problems.append(f"{where}: listed shard {entry.path} does not exist")
        else:
            tars.append(found)
    return tars, problems


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


#: Problems listed in full in the summary.
MAX_LISTED = 50


class Summary:
    def __init__(self) -> None:
        self.tasks: Counter[tuple[str, str]] = Counter()
        self.shapes: Counter[tuple[str, tuple]] = Counter()
        self.images: Counter[tuple[str, str]] = Counter()  # (stream, "grey" | "colour") -> stored images
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
        self.images[(stream, "colour" if shape[1] == 3 else "grey")] += shape[0]
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
        lines.append("\nimages stored (grey: C = 1, colour: C = 3):")
        for stream in sorted({st for st, _ in self.images}):
            lines.append(f"  {stream:3s} grey {self.images[(stream, 'grey')]:8d}   colour {self.images[(stream, 'colour')]:8d}")
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
            lines.append(f"\nproblems: {len(self.errors)}")
            lines.extend(f"  {e}" for e in self.errors[:MAX_LISTED])
            if len(self.errors) > MAX_LISTED:
                lines.append(f"  ... and {len(self.errors) - MAX_LISTED} more (python -m shards_spec.validate lists every one)")
        return "\n".join(lines)


def render_tokens(meta: SampleMeta, decoded: dict[str, Any], tokenizer) -> str:
    """The sample's tokens as ``Tokenizer.render`` shows them (``|`` between tokens, image spans as ``[IMG i]``,
    BOS + question in ``⟦…⟧``, keyword-weighted tokens as ``*token*``); plain ids when ``tokenizer`` is not the
    one the shard was built with."""
    ids = decoded[FIELD_INPUT_IDS]
    why = ""
    if tokenizer is None:
        why = "no tokenizer"
    elif tokenizer.fingerprint != fingerprint_of(meta.tokenizer):
        why = f"--tokenizer is {tokenizer.fingerprint}, the shard's {meta.tokenizer}"
    elif ids.size and int(ids.min()) < 0:
        why = "negative ids"
    elif not (decoded[FIELD_LABELS].size == decoded[FIELD_LOSS_WEIGHT].size == ids.size):
        why = "labels or loss weights of another length"
    if why:
        return " ".join(map(str, ids.tolist())) + f"   (ids: {why})"
    return tokenizer.render(ids, decoded[FIELD_LABELS], decoded[FIELD_LOSS_WEIGHT], meta.n_question_tokens)


#: most tiles kept per (stream, dataset) while reading; the sheet then gives every group an equal share
MONTAGE_PER_DATASET = 6


def montage(images: list[tuple[str, np.ndarray]], out: Path, tile: int = 160, cols: int = 6) -> None:
    from PIL import Image, ImageDraw

    rows = max(1, -(-len(images) // cols))
    sheet = Image.new("RGB", (cols * tile, rows * (tile + 14)), 0)
    draw = ImageDraw.Draw(sheet)
    for n, (label, vol) in enumerate(images):
        c, h, w, d = vol.shape
        plane = np.ascontiguousarray(vol[:, :, :, d // 2])
        # colour (C = 3) stays colour; grey (C = 1, or any other count: its first channel) is drawn grey
        img = Image.fromarray(plane.transpose(1, 2, 0)) if c == 3 else Image.fromarray(plane[0])
        img = img.convert("RGB").resize((tile, tile))
        x, y = (n % cols) * tile, (n // cols) * (tile + 14)
        sheet.paste(img, (x, y + 14))
        draw.text((x + 2, y + 1), label[: tile // 6], fill=(255, 255, 255))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)


def _decode(raw) -> tuple[SampleMeta, dict[str, Any]]:
    """A complete sample's members, decoded, and its typed meta (raises ``DecodeError`` / ``SchemaError``)."""
    fields = _fields(raw)
    decoded = {(FIELD_VISION if field in IMAGE_FIELDS else field): decode_member(field, raw.members[field].data or b"")
               for field in fields}  # the image as [S, C, H, W, D] under FIELD_VISION, whichever member held it
    return SampleMeta.from_dict(decoded[FIELD_META]), decoded


def _fields(raw) -> tuple[str, ...]:
    """The member set a sample should have, by its image member (``vision.npy.zst`` when it has none or several)."""
    return FIELDS_BY_IMAGE.get(image_field(raw.members), FIELDS)


def inspect(path: Path, show: int = 0, montage_path: Path | None = None, montage_max: int = 48, tokenizer=None,
            per_task: bool = False) -> Summary:
    """Read every shard ``path`` names into a :class:`Summary`, printing ``show`` decoded samples (``per_task``: that
    many of every dataset and task) and collecting a few montage tiles of every dataset; whatever cannot be read is
    one line in ``Summary.errors`` and reading goes on (see the module docstring)."""
    summary = Summary()
    shown: Counter[tuple[str, str]] = Counter()
    tiles: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = defaultdict(list)  # per (stream, dataset)
    tars, summary.errors = find_tars(path)
    for tar in tars:
        summary.shards += 1
        try:
            for raw in (iter_indexed_samples(tar) if storage.is_remote(tar) else iter_raw_samples(tar)):
                where = f"{tar}#{raw.key}"
                fields = _fields(raw)
                missing = [f for f in fields if f not in raw.members]
                if missing:
                    summary.errors.append(f"{where}: missing members {missing}; skipped")
                    continue
                extra = sorted(set(raw.members) - set(fields))
                if extra:
                    summary.errors.append(f"{where}: unexpected members {extra} (ignored)")
                try:
                    meta, decoded = _decode(raw)
                except (DecodeError, SchemaError) as exc:
                    summary.errors.append(f"{where}: {exc}; skipped")
                    continue
                summary.add(meta, decoded, {(FIELD_VISION if f in IMAGE_FIELDS else f): raw.members[f].size for f in fields})
                group = (meta.dataset, meta.task) if per_task else ("", "")
                printed = shown[group] < show
                if printed:
                    shown[group] += 1
                    print(f"--- {raw.key}  [{meta.dataset} {meta.split} {meta.stream} {meta.task}/{meta.variant}]"
                          f"  vision {list(decoded[FIELD_VISION].shape)}  tokens {meta.n_tokens}"
                          f"  sources {', '.join(meta.source_paths)}")
                    print(render_tokens(meta, decoded, tokenizer))
                dataset_tiles = tiles[(meta.stream, meta.dataset)]
                if montage_path is not None and len(dataset_tiles) < MONTAGE_PER_DATASET and (printed or not per_task):
                    for i, vol in enumerate(decoded[FIELD_VISION][: MONTAGE_PER_DATASET - len(dataset_tiles)]):
                        dataset_tiles.append((f"{meta.dataset} {meta.task} #{i}", vol))
        except (tarfile.TarError, OSError, EOFError, ValueError) as exc:  # UnsafeTar, GroupingError: ValueErrors
            summary.errors.append(f"{tar}: {_reason(exc)}; the rest of this shard is not read")
    if montage_path is not None and tiles:
        # an equal share of the sheet for every dataset of every stream present (at least one tile each)
        share = max(1, montage_max // len(tiles))
        montage([t for group in sorted(tiles) for t in tiles[group][:share]], montage_path)
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pipelines.inspect", description=__doc__.split("\n\n")[0])
    ap.add_argument("path")
    ap.add_argument("--show", type=int, default=0, metavar="N", help="decode and print N samples")
    ap.add_argument("--per-task", action="store_true", help="--show N samples of every dataset and task")
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
    summary = inspect(path, args.show, args.montage, tokenizer=tokenizer, per_task=args.per_task)
    if summary.shards == 0:  # nothing to summarise: say why, in one line each
        for line in summary.errors or [f"{path}: no shards found"]:
            print(line)
        return 1
    print(summary.render())
    if args.montage and summary.samples:
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
    run_cli(main)
