"""Check shards, index sidecars and manifests against the spec.

    python -m shards_spec.validate PATH...

PATH is a shard ``.tar``, a dataset's ``manifest.json``, or a directory (every manifest
below it, and every tar no manifest covers). Prints one line per violation
(``<file>[#<key>]: <rule>: <detail>``) and exits 1 if there was any, else 0.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shards_spec import layout
from shards_spec.codec import DecodeError
from shards_spec.jsonio import read_json
from shards_spec.layout import (
    FIELD_INPUT_IDS,
    FIELD_LABELS,
    FIELD_LOSS_WEIGHT,
    FIELD_META,
    FIELD_VISION,
    FIELD_VISION_RAW,
    FIELDS,
    FIELDS_RAW,
    IGNORE_INDEX,
    IMAGE_SPAN_LEN,
    KEY_RE,
    MANIFEST_NAME,
    SHARD_RE,
    SPEC_VERSION,
    ImageTokenIds,
    index_path,
)
from shards_spec.reader import GroupingError, iter_raw_samples
from shards_spec.schema import IndexEntry, Manifest, SampleMeta, SchemaError
from shards_spec.tario import UnsafeTar
from shards_spec.tokenizer import BOS_ID, EOS_ID, PAD_ID, fingerprint_of

META_KEYS = {f.name for f in dataclasses.fields(SampleMeta)}


@dataclass
class Limits:
    """Values the manifest's build parameters fix (defaults when validating a lone tar)."""

    size_2d: int = layout.SIZE_2D
    size_3d: int = layout.SIZE_3D
    depth_multiple: int = layout.DEPTH_MULTIPLE
    min_depth: int = layout.MIN_DEPTH
    max_depth: int = layout.MAX_DEPTH
    max_length: int = layout.MAX_LENGTH
    keyword_weight: float = layout.WEIGHT_KEYWORD
    tokenizer: str | None = None

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> "Limits":
        cfg = manifest.get("build", {}).get("config", {})
        img, txt = cfg.get("image", {}), cfg.get("text", {})
        d = cls()
        return cls(
            img.get("size_2d", d.size_2d), img.get("size_3d", d.size_3d), img.get("depth_multiple", d.depth_multiple),
            img.get("min_depth", d.min_depth), img.get("max_depth", d.max_depth), txt.get("max_length", d.max_length),
            txt.get("keyword_weight", d.keyword_weight), fingerprint_of(manifest.get("tokenizer")),
        )


@dataclass
class Report:
    violations: list[str] = field(default_factory=list)
    samples: int = 0
    shards: int = 0

    def add(self, where: str, rule: str, detail: str) -> None:
        self.violations.append(f"{where}: {rule}: {detail}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_sample(where: str, key: str, decoded: dict[str, Any], expect: dict[str, str], limits: Limits, report: Report) -> dict:
    """Rules on one decoded sample; returns a summary used to check the index."""
    raw_meta = decoded[FIELD_META]
    missing = META_KEYS - set(raw_meta)
    if missing:
        report.add(where, "meta-keys", f"missing {sorted(missing)}")
        return {}
    try:
        meta = SampleMeta.from_dict(raw_meta)
    except SchemaError as exc:
        report.add(where, "meta-types", str(exc))
        return {}
    for k, v in expect.items():
        if getattr(meta, k) != v:
            report.add(where, "meta-consistency", f"meta {k}={getattr(meta, k)!r}, shard says {v!r}")
    if meta.key != key:
        report.add(where, "meta-consistency", f"meta key {meta.key!r} != member key")
    if meta.spec_version != SPEC_VERSION:
        report.add(where, "spec-version", f"{meta.spec_version!r} != {SPEC_VERSION!r}")
    if limits.tokenizer and meta.tokenizer != limits.tokenizer:
        report.add(where, "tokenizer", f"fingerprint {meta.tokenizer} != manifest {limits.tokenizer}")

    ids, labels, weights = decoded[FIELD_INPUT_IDS], decoded[FIELD_LABELS], decoded[FIELD_LOSS_WEIGHT]
    vision = decoded[FIELD_VISION]
    n = ids.size
    if not (labels.size == weights.size == n):
        report.add(where, "token-lengths", f"input_ids {n}, labels {labels.size}, loss_weight {weights.size}")
        return {}
    if n > limits.max_length:
        report.add(where, "max-length", f"{n} tokens > {limits.max_length}")
    if meta.n_tokens != n:
        report.add(where, "meta-consistency", f"meta n_tokens {meta.n_tokens} != {n}")
    special = meta.special_ids
    tok_ids = ImageTokenIds(int(special["base_vocab"]))
    if (special.get("pad"), special.get("bos"), special.get("eos")) != (PAD_ID, BOS_ID, EOS_ID):
        report.add(where, "special-ids", f"pad/bos/eos {special.get('pad')}/{special.get('bos')}/{special.get('eos')}, "
                                         f"the layout has {PAD_ID}/{BOS_ID}/{EOS_ID}")
    eos = int(special["eos"])
    learned = labels != IGNORE_INDEX
    if np.any(learned & (labels != ids)):
        report.add(where, "labels", f"{int(np.sum(learned & (labels != ids)))} labels differ from input_ids")
    if np.any((ids >= tok_ids.base_vocab) & learned):
        report.add(where, "labels", "an image token is learned (label must be -100)")
    if n == 0 or ids[-1] != eos or labels[-1] != eos:
        report.add(where, "eos", f"last token must be EOS {eos} with label EOS")
    if np.any(weights[~learned] != 0):
        report.add(where, "loss-weight", "non-zero weight where the label is -100")
    bad_w = learned & ~np.isin(weights, [1.0, limits.keyword_weight])
    if np.any(bad_w):
        report.add(where, "loss-weight", f"weights {sorted(set(weights[bad_w].tolist()))} not in {{1, {limits.keyword_weight}}}")
    if special.get("bos") is not None and (n == 0 or ids[0] != special["bos"]):
        report.add(where, "bos", f"first token must be BOS {special['bos']}")
    nq = meta.n_question_tokens
    if np.any(learned[:nq]):
        report.add(where, "labels", "a question token is learned")

    # images
    if vision.ndim != 5:
        report.add(where, "vision-shape", f"expected [S,C,H,W,D], got {vision.shape}")
        return {}
    s, c, h, w, d = vision.shape
    if tuple(vision.shape) != meta.vision_shape:
        report.add(where, "meta-consistency", f"vision_shape {list(meta.vision_shape)} != {list(vision.shape)}")
    if c not in (1, 3):
        report.add(where, "vision-shape", f"{c} channels (must be 1 or 3)")
    size = limits.size_2d if meta.stream == "2d" else limits.size_3d
    if (h, w) != (size, size):
        report.add(where, "vision-shape", f"{h}x{w}, expected {size}x{size}")
    if meta.stream == "2d" and d != 1:
        report.add(where, "vision-shape", f"2D sample with depth {d}")
    if meta.stream == "3d" and (d % limits.depth_multiple or not limits.min_depth <= d <= limits.max_depth):
        report.add(where, "vision-shape", f"3D depth {d} not a multiple of {limits.depth_multiple} in [{limits.min_depth}, {limits.max_depth}]")
    spans = meta.image_spans
    if len(spans) != s or len(meta.images) != s:
        report.add(where, "image-spans", f"{len(spans)} spans / {len(meta.images)} images for {s} stored images")
    n_starts = int(np.sum(ids == tok_ids.start))
    if n_starts != s or int(np.sum(ids == tok_ids.end)) != s:
        report.add(where, "image-spans", f"{n_starts} <image> tokens for {s} images")
    if np.any(ids >= tok_ids.placeholder(32 * s)):
        report.add(where, "image-spans", "image placeholder beyond the sample's image count")
    for span in spans:
        i, t = span.image, span.token_start
        if ids[t : t + IMAGE_SPAN_LEN].tolist() != tok_ids.span(i):
            report.add(where, "image-spans", f"image {i}: tokens at {t} are not its 34-token span")
    return {"task": meta.task, "n_tokens": n, "n_images": s, "depth": d}


def check_tar(tar: Path, report: Report, limits: Limits, seen_keys: set[str] | None = None) -> dict[str, Any]:
    """Rules on one shard and its index; returns {samples, tasks} for manifest checks."""
    report.shards += 1
    where = str(tar)
    m = SHARD_RE.match(tar.name)
    expect: dict[str, str] = {}
    if not m:
        report.add(where, "shard-name", "not <dataset>-<split>-<stream>-NNNNNN.tar")
    else:
        expect = {"dataset": m["dataset"], "split": m["split"], "stream": m["stream"]}
        parts = tar.resolve().parts
        if parts[-4:-1] != (m["dataset"], m["stream"], m["split"]):
            report.add(where, "shard-path", f"expected under {m['dataset']}/{m['stream']}/{m['split']}/")
    summaries, tasks = [], Counter()
    try:
        for raw in iter_raw_samples(tar):
            sw = f"{where}#{raw.key}"
            report.samples += 1
            if not KEY_RE.match(raw.key) or (expect and not raw.key.startswith(expect["dataset"] + "_")):
                report.add(sw, "key", "key must be <dataset>_<20 hex> without dots")
            if seen_keys is not None:
                if raw.key in seen_keys:
                    report.add(sw, "key", "duplicate key in dataset")
                seen_keys.add(raw.key)
            fields = set(raw.members)
            expected = FIELDS_RAW if FIELD_VISION_RAW in fields else FIELDS
            if fields != set(expected):
                report.add(sw, "members", f"has {sorted(fields)}, expected {sorted(expected)}")
                summaries.append(None)
                continue
            by_offset = [f for f, mm in sorted(raw.members.items(), key=lambda kv: kv[1].header_offset)]
            if by_offset != sorted(expected):
                report.add(sw, "member-order", "members not in sorted field order")
            try:
                decoded = raw.decode()
            except DecodeError as exc:
                report.add(sw, "decode", str(exc))
                summaries.append(None)
                continue
            summary = check_sample(sw, raw.key, decoded, expect, limits, report)
            summary.update({"key": raw.key, "members": {f: [mm.data_offset, mm.size] for f, mm in raw.members.items()},
                            "offset": min(mm.header_offset for mm in raw.members.values())})
            summaries.append(summary)
            tasks[summary.get("task", "?")] += 1
    except (UnsafeTar, GroupingError, tarfile.TarError, OSError) as exc:
        report.add(where, "tar", str(exc))
        return {"samples": len(summaries), "tasks": dict(tasks)}
    check_index(tar, summaries, report)
    return {"samples": len(summaries), "tasks": dict(tasks)}


def check_index(tar: Path, summaries: list[dict | None], report: Report) -> None:
    idx_path = index_path(tar)
    where = str(idx_path)
    if not idx_path.exists():
        report.add(where, "index", "index sidecar missing")
        return
    try:
        index = read_json(idx_path)
    except (OSError, json.JSONDecodeError) as exc:
        report.add(where, "index", f"unreadable: {exc}")
        return
    if not isinstance(index, dict):
        report.add(where, "index", "top level must be an object")
        return
    if index.get("sha256") != _sha256(tar):
        report.add(where, "index", "sha256 does not match the tar")
    entries = index.get("samples", [])
    if not isinstance(entries, list) or len(entries) != len(summaries):
        n = len(entries) if isinstance(entries, list) else "no list of"
        report.add(where, "index", f"{n} entries for {len(summaries)} samples in the tar")
        return
    for i, (raw_entry, summary) in enumerate(zip(entries, summaries)):
        try:
            entry = IndexEntry.from_dict(raw_entry).to_dict()
        except SchemaError as exc:
            report.add(f"{where}#{i}", "index-types", str(exc))
            continue
        if not summary:
            continue
        for k in ("key", "offset", "task", "n_tokens", "n_images", "depth", "members"):
            got = entry[k] if k != "members" else {f: list(v) for f, v in entry[k].items()}
            if k in summary and got != summary[k]:
                report.add(f"{where}#{summary['key']}", "index", f"{k}: index says {got!r}, tar has {summary[k]!r}")
                break


def check_manifest(path: Path, report: Report) -> set[Path]:
    """Rules on a dataset manifest and every shard it lists; returns the shards checked."""
    where = str(path)
    try:
        raw_manifest = read_json(path)
    except (OSError, json.JSONDecodeError) as exc:
        report.add(where, "manifest", f"unreadable: {exc}")
        return set()
    root = path.parent
    if not isinstance(raw_manifest, dict) or raw_manifest.get("spec_version") != SPEC_VERSION:
        version = raw_manifest.get("spec_version") if isinstance(raw_manifest, dict) else None
        report.add(where, "spec-version", f"{version!r} != {SPEC_VERSION!r}")
    try:
        manifest = Manifest.from_dict(raw_manifest)
    except SchemaError as exc:
        report.add(where, "manifest-types", str(exc))
        return set()
    limits = Limits.from_manifest(raw_manifest)
    seen_keys: set[str] = set()
    checked: set[Path] = set()
    per_split, per_stream, per_task = Counter(), Counter(), Counter()
    for shard in manifest.shards:
        tar = (root / shard.path).resolve()
        checked.add(tar)
        if not tar.exists():
            report.add(where, "manifest", f"listed shard {shard.path} does not exist")
            continue
        if _sha256(tar) != shard.sha256:
            report.add(where, "manifest", f"{shard.path}: sha256 mismatch")
        got = check_tar(tar, report, limits, seen_keys)
        if got["samples"] != shard.samples:
            report.add(where, "manifest", f"{shard.path}: manifest says {shard.samples} samples, tar has {got['samples']}")
        if got["tasks"] != shard.tasks:
            report.add(where, "manifest", f"{shard.path}: task counts {shard.tasks} != tar {got['tasks']}")
        per_split[shard.split] += got["samples"]
        per_stream[shard.stream] += got["samples"]
        for task, n in got["tasks"].items():
            per_task[f"{shard.stream}/{shard.split}/{task}"] += n
    for name, counter in (("split", per_split), ("stream", per_stream), ("task", per_task)):
        if manifest.counts.get(name) != dict(counter):
            report.add(where, "manifest", f"counts.{name} {manifest.counts.get(name)} != shards {dict(counter)}")
    if manifest.samples != sum(per_stream.values()):
        report.add(where, "manifest", f"samples {manifest.samples} != {sum(per_stream.values())}")
    rejects = manifest.rejects
    rpath = root / rejects.file
    if not rpath.exists():
        report.add(where, "rejects", f"{rpath.name} missing")
    else:
        lines = [json.loads(line) for line in rpath.read_text("utf-8").splitlines() if line.strip()]
        if len(lines) != rejects.total:
            report.add(where, "rejects", f"manifest says {rejects.total} rejects, {rpath.name} has {len(lines)}")
        if dict(Counter(r.get("reason") for r in lines)) != rejects.by_reason:
            report.add(where, "rejects", "by_reason counts do not match the rejects file")
    on_disk = {p.resolve() for p in root.glob("*/*/*.tar")}
    for extra in sorted(on_disk - checked):
        report.add(str(extra), "manifest", "shard on disk is not listed in the manifest")
    return checked


def validate_paths(paths: list[str]) -> Report:
    report = Report()
    for arg in paths:
        p = Path(arg)
        if not p.exists():
            report.add(arg, "path", "does not exist")
        elif p.is_file() and p.name.endswith(".tar"):
            check_tar(p, report, Limits())
        elif p.is_file():
            check_manifest(p, report)
        else:
            covered: set[Path] = set()
            for manifest in sorted(p.rglob(MANIFEST_NAME)):
                covered |= check_manifest(manifest, report)
            for tar in sorted(t.resolve() for t in p.rglob("*.tar")):
                if tar not in covered:
                    check_tar(tar, report, Limits())
            if not covered and not any(p.rglob("*.tar")):
                report.add(arg, "path", "no manifest or shard found")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m shards_spec.validate", description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args(argv)
    report = validate_paths(args.paths)
    for line in report.violations:
        print(line)
    status = "FAIL" if report.violations else "OK"
    print(f"{status}: {report.shards} shards, {report.samples} samples, {len(report.violations)} violations", file=sys.stderr)
    return 1 if report.violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
