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
from shards_spec.index_bin import decode_index, entries_of
from shards_spec.jsonio import loads, read_json
from shards_spec.layout import (
    FIELD_INPUT_IDS,
    FIELD_LABELS,
    FIELD_LOSS_WEIGHT,
    FIELD_META,
    FIELD_SLICES,
    FIELD_SLICES_RAW,
    FIELD_TOKENS,
    FIELD_VISION,
    FIELD_VISION_RAW,
    IGNORE_INDEX,
    IMAGE_SPAN_LEN,
    KEY_RE,
    MANIFEST_NAME,
    SHARD_RE,
    SPEC_VERSION,
    ImageTokenIds,
    image_field,
    index_bin_path,
    index_path,
    is_plain_relative,
    sample_fields,
)
from shards_spec.reader import file_kind, iter_raw_samples, read_as_tar, run_cli
from shards_spec.schema import IndexEntry, RejectSummary, SampleMeta, SchemaError, ShardIndex, parse_manifest
from shards_spec.tokenizer import BOS_ID, EOS_ID, PAD_ID, fingerprint_of

#: keys every meta.json has (keys with a default are optional: a minor version added them)
META_KEYS = {f.name for f in dataclasses.fields(SampleMeta)
             if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}


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
        """The limits a manifest's build parameters fix; a value that is missing or not a number keeps the
        spec default (the manifest's own checks report it)."""
        def section(d: Any, key: str) -> dict:
            value = d.get(key) if isinstance(d, dict) else None
            return value if isinstance(value, dict) else {}

        cfg = section(section(manifest, "build"), "config")
        img, txt = section(cfg, "image"), section(cfg, "text")
        d = cls()

        def num(sec: dict, key: str, default):
            v = sec.get(key, default)
            return v if isinstance(v, (int, float)) and not isinstance(v, bool) else default

        tok = manifest.get("tokenizer") if isinstance(manifest, dict) else None
        fingerprint = fingerprint_of(tok) if isinstance(tok, (str, dict)) or tok is None else None
        return cls(
            num(img, "size_2d", d.size_2d), num(img, "size_3d", d.size_3d), num(img, "depth_multiple", d.depth_multiple),
            num(img, "min_depth", d.min_depth), num(img, "max_depth", d.max_depth), num(txt, "max_length", d.max_length),
            num(txt, "keyword_weight", d.keyword_weight), fingerprint if isinstance(fingerprint, str) else None,
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


SLICES_FIELDS = (FIELD_SLICES, FIELD_SLICES_RAW)


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
    if not set(meta.findings) <= set(meta.label_set):
        report.add(where, "findings", f"findings {sorted(set(meta.findings) - set(meta.label_set))} not in the label set")

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
            image = image_field(fields)
            expected = sample_fields(fields)
            if (image is not None and expect and FIELD_TOKENS in fields
                    and (image in SLICES_FIELDS) != (expect["stream"] == "3d")):
                report.add(sw, "image-member", f"{expect['stream']} sample stores its image as {image}; spec "
                           f"{SPEC_VERSION} stores 3D images as {FIELD_SLICES} / {FIELD_SLICES_RAW}, 2D as "
                           f"{FIELD_VISION} / {FIELD_VISION_RAW}")
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
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:  # UnsafeTar and GroupingError are ValueErrors
        report.add(where, "tar", _reason(exc))
        return {"samples": len(summaries), "tasks": dict(tasks)}
    check_index(tar, summaries, report)
    return {"samples": len(summaries), "tasks": dict(tasks)}


def check_index(tar: Path, summaries: list[dict | None], report: Report) -> None:
    idx_path = index_path(tar)
    where = str(idx_path)
    if not idx_path.exists():
        report.add(where, "index", "index sidecar missing")
        return
    index = _read_json(idx_path, where, "index", report)
    if index is None:
        return
    if not isinstance(index, dict):
        report.add(where, "index", f"top level must be an object, got {_kind(index)}")
        return
    try:
        ShardIndex.from_dict({**index, "samples": []})
    except SchemaError as exc:
        report.add(where, "index-types", str(exc))
    if index.get("shard") not in (None, tar.name):
        report.add(where, "index", f"shard {index.get('shard')!r}, the tar is {tar.name!r}")
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
    check_index_bin(tar, entries, report)


def check_index_bin(tar: Path, entries: list, report: Report) -> None:
    """Spec 1.4 §4.2: the binary index sidecar, when present, holds exactly the JSON index's entries (without
    ``task``). Its absence is no violation: readers then use the JSON sidecar."""
    path = index_bin_path(tar)
    if not path.exists():
        return
    where = str(path)
    try:
        binary = entries_of(decode_index(path.read_bytes()))
    except (OSError, ValueError) as exc:
        report.add(where, "index-bin", _reason(exc))
        return
    if len(binary) != len(entries):
        report.add(where, "index-bin", f"{len(binary)} entries, the JSON index has {len(entries)}")
        return
    for i, (b, j) in enumerate(zip(binary, entries)):
        want = {k: j.get(k) for k in b} if isinstance(j, dict) else None
        if want is not None and isinstance(want.get("members"), dict):
            want["members"] = {f: list(v) if isinstance(v, (list, tuple)) else v for f, v in want["members"].items()}
        if b != want:
            report.add(f"{where}#{i}", "index-bin", f"entry {b.get('key')!r} differs from the JSON index")
            return


def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "null"


def _reason(exc: BaseException) -> str:
    """An exception as the rest of a violation line: its message, or its type when it has none."""
    text = str(exc).strip()
    return text if text else type(exc).__name__


def _read_json(path: Path, where: str, rule: str, report: Report) -> Any:
    """The parsed JSON file, or ``None`` after reporting why it cannot be read."""
    try:
        return read_json(path)
    except UnicodeDecodeError:
        report.add(where, rule, f"unreadable: not UTF-8 text ({file_kind(path)})")
    except json.JSONDecodeError as exc:
        report.add(where, rule, f"unreadable: not JSON ({exc})")
    except (OSError, ValueError) as exc:
        report.add(where, rule, f"unreadable: {_reason(exc)}")
    return None


def check_manifest(path: Path, report: Report) -> set[Path]:
    """Rules on a dataset manifest and every shard it lists; returns the shards checked. A mistyped or unsafe
    shard entry is one violation and the other entries are still checked."""
    where = str(path)
    raw_manifest = _read_json(path, where, "manifest", report)
    if raw_manifest is None:
        return set()
    root = path.parent
    if not isinstance(raw_manifest, dict) or raw_manifest.get("spec_version") != SPEC_VERSION:
        version = raw_manifest.get("spec_version") if isinstance(raw_manifest, dict) else None
        report.add(where, "spec-version", f"{version!r} != {SPEC_VERSION!r}")
    manifest, entries, problems = parse_manifest(raw_manifest)
    for problem in problems:
        report.add(where, "manifest-types", problem)
    if not isinstance(raw_manifest, dict):
        return set()
    limits = Limits.from_manifest(raw_manifest)
    seen_keys: set[str] = set()
    checked: set[Path] = set()
    per_split, per_stream, per_task = Counter(), Counter(), Counter()
    for i, shard in entries:
        if not is_plain_relative(shard.path):
            report.add(where, "manifest", f"shards[{i}].path {shard.path!r} is not a relative path inside the "
                                          "dataset directory; not read")
            continue
        tar = (root / shard.path).resolve()
        checked.add(tar)
        if not tar.is_file():
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
    if manifest is not None and not problems:  # totals only mean something when every entry was read
        for name, counter in (("split", per_split), ("stream", per_stream), ("task", per_task)):
            if manifest.counts.get(name) != dict(counter):
                report.add(where, "manifest", f"counts.{name} {manifest.counts.get(name)} != shards {dict(counter)}")
        if manifest.samples != sum(per_stream.values()):
            report.add(where, "manifest", f"samples {manifest.samples} != {sum(per_stream.values())}")
    if manifest is not None:
        check_rejects(path, manifest.rejects, report)
    on_disk = {p.resolve() for p in root.glob("*/*/*.tar")}
    for extra in sorted(on_disk - checked):
        report.add(str(extra), "manifest", "shard on disk is not listed in the manifest")
    return checked


def check_rejects(manifest_file: Path, rejects: RejectSummary, report: Report) -> None:
    """The rejects file a manifest names: one JSON object per line, as many as the manifest counts."""
    where = str(manifest_file)
    if not is_plain_relative(rejects.file):
        report.add(where, "rejects", f"rejects.file {rejects.file!r} is not a relative path inside the dataset "
                                     "directory; not read")
        return
    rpath = manifest_file.parent / rejects.file
    if not rpath.is_file():
        report.add(where, "rejects", f"{rejects.file} missing")
        return
    reasons: Counter[str] = Counter()
    lines = 0
    try:
        with open(rpath, encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                lines += 1
                try:
                    record = loads(line)
                except json.JSONDecodeError as exc:
                    report.add(f"{rpath}:{number}", "rejects", f"not a JSON line ({exc})")
                    continue
                if not isinstance(record, dict) or not isinstance(record.get("reason"), str):
                    report.add(f"{rpath}:{number}", "rejects", "not an object with a string 'reason'")
                    continue
                reasons[record["reason"]] += 1
    except UnicodeDecodeError:
        report.add(str(rpath), "rejects", "unreadable: not UTF-8 text")
        return
    except OSError as exc:
        report.add(str(rpath), "rejects", f"unreadable: {_reason(exc)}")
        return
    if lines != rejects.total:
        report.add(where, "rejects", f"manifest says {rejects.total} rejects, {rpath.name} has {lines}")
    if dict(reasons) != rejects.by_reason:
        report.add(where, "rejects", "by_reason counts do not match the rejects file")


def validate_paths(paths: list[str]) -> Report:
    """Every rule on every path: a shard ``.tar``, a ``manifest.json``, or a directory (every manifest below it,
    and every tar no manifest lists). Anything else (a README, a volume, a folder without shards) is one
    ``path`` violation saying what it is."""
    report = Report()
    for arg in paths:
        p = Path(arg)
        if not p.exists():
            report.add(arg, "path", "does not exist")
        elif p.is_file():
            try:
                kind = file_kind(p)
            except OSError as exc:
                report.add(arg, "path", f"unreadable: {_reason(exc)}")
                continue
            if read_as_tar(p, kind):
                check_tar(p, report, Limits())
            elif kind == "json":
                check_manifest(p, report)
            else:
                report.add(arg, "path", f"not a shard (.tar) or a {MANIFEST_NAME}: {kind}")
        elif p.is_dir():
            covered: set[Path] = set()
            for manifest in sorted(p.rglob(MANIFEST_NAME)):
                covered |= check_manifest(manifest, report)
            tars = sorted(t.resolve() for t in p.rglob("*.tar"))
            for tar in tars:
                if tar not in covered:
                    check_tar(tar, report, Limits())
            if not covered and not tars and not any(p.rglob(MANIFEST_NAME)):
                report.add(arg, "path", f"no {MANIFEST_NAME} or shard (.tar) below it")
        else:
            report.add(arg, "path", "not a file or a directory")
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
    run_cli(main)
