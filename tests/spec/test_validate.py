"""The validator catching each kind of violation with one precise line (shards_spec.validate)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from shards_spec import codec
from shards_spec.jsonio import json_bytes
from shards_spec.layout import index_path
from shards_spec.reader import iter_raw_samples
from shards_spec.tario import TarSink
from shards_spec.validate import validate_paths


def first_tar(root: Path, stream: str) -> Path:
    """The first shard of the stream's reference dataset (MIMIC for 2D, Rad3D for 3D), whatever else was built."""
    return sorted((root / {"2d": "mimic", "3d": "rad3d"}[stream]).rglob(f"*-{stream}-*.tar"))[0]


def rewrite(src: Path, dst: Path, mutate=None, order=None) -> None:
    """Copy a shard sample by sample, letting ``mutate(key, members)`` change member bytes,
    and regenerate its index so that only the intended rule breaks."""
    samples = [(r.key, {f: m.data for f, m in r.members.items()}) for r in iter_raw_samples(src)]
    if mutate:
        samples = [mutate(k, dict(m)) for k, m in samples]
    dst.parent.mkdir(parents=True, exist_ok=True)
    entries = []
    buf = io.BytesIO()
    sink = TarSink(buf, 0)
    names = [(k, f) for k, members in samples for f in sorted(members)]
    if order:
        names = order(names)
    data = {k: m for k, m in samples}
    for k, f in names:
        rec = sink.add(f"{k}.{f}", data[k][f])
        entries.append((k, f, rec))
    sink.close()
    dst.write_bytes(buf.getvalue())
    old = json.loads(index_path(src).read_text())
    by_key = {e["key"]: e for e in old["samples"]}
    new_samples = []
    for k, _ in samples:
        recs = [r for kk, _, r in entries if kk == k]
        e = dict(by_key.get(k, {"key": k, "task": "report", "n_tokens": 0, "n_images": 0, "depth": 0}))
        e.update(key=k, offset=recs[0].header_offset, members={r.name.split(".", 1)[1]: [r.data_offset, r.size] for r in recs})
        new_samples.append(e)
    import hashlib
    index = {**old, "shard": dst.name, "sha256": hashlib.sha256(dst.read_bytes()).hexdigest(), "samples": new_samples}
    index_path(dst).write_bytes(json_bytes(index))


def violations_for(tmp_path: Path, src: Path, mutate=None, order=None) -> list[str]:
    dst = tmp_path / src.parent.parent.parent.name / src.parent.parent.name / src.parent.name / src.name
    rewrite(src, dst, mutate, order)
    return validate_paths([str(dst)]).violations


def test_untouched_copy_is_valid(demo_shards, tmp_path):
    assert violations_for(tmp_path, first_tar(demo_shards, "2d")) == []


TOKEN_FIELDS = ("input_ids.npy", "labels.npy", "loss_weight.npy")


def _edit(field, fn):
    """Change one member of the first sample; a token array is changed inside ``tokens.npy`` (spec 1.4), or, when
    the change makes the arrays' lengths differ (which one member cannot hold), written as the 1.0-1.3 members."""
    def mutate(key, members):
        if key == mutate.target or mutate.target is None:
            mutate.target = key
            if field in TOKEN_FIELDS:
                arrays = codec.decode_sample({"tokens.npy": members.pop("tokens.npy")})
                arrays[field] = codec.decode_member(field, fn(arrays[field], members))
                if len({a.shape for a in arrays.values()}) == 1:
                    members["tokens.npy"] = codec.encode_tokens(*(arrays[f] for f in TOKEN_FIELDS))
                else:
                    members.update({f: codec.npy_bytes(arrays[f]) for f in TOKEN_FIELDS})
            else:
                members[field] = fn(codec.decode_member(field, members[field]), members)
        return key, members
    mutate.target = None
    return mutate


@pytest.mark.parametrize("field,fn,rule", [
    ("labels.npy", lambda a, m: codec.npy_bytes(np.where(a == -100, a, a + 1).astype(np.int32)), "labels"),
    ("loss_weight.npy", lambda a, m: codec.npy_bytes(np.full_like(a, 1.0)), "loss-weight"),
    ("loss_weight.npy", lambda a, m: codec.npy_bytes(np.where(a > 0, 2.0, 0).astype(np.float32)), "loss-weight"),
    ("input_ids.npy", lambda a, m: codec.npy_bytes(a[:-1]), "token-lengths"),
    ("vision.npy.zst", lambda a, m: codec.encode_vision(np.concatenate([a, a])), "image-spans"),
    ("vision.npy.zst", lambda a, m: codec.encode_vision(a[:, :, :256, :256]), "vision-shape"),
    ("vision.npy.zst", lambda a, m: b"not zstd", "decode"),
    ("meta.json", lambda a, m: codec.encode_meta({**a, "stream": "3d"}), "meta-consistency"),
    ("meta.json", lambda a, m: codec.encode_meta({k: v for k, v in a.items() if k != "image_spans"}), "meta-keys"),
])
def test_validator_catches_sample_violations(demo_shards, tmp_path, field, fn, rule):
    found = violations_for(tmp_path, first_tar(demo_shards, "2d"), _edit(field, fn))
    assert found and all(": " in v for v in found)
    assert any(f": {rule}: " in v for v in found), found


def test_uncompressed_image_member_is_valid_and_both_members_are_not(demo_shards, tmp_path):
    """Spec 1.3: ``vision.npy`` (``--zstd-level 0``) instead of ``vision.npy.zst`` is valid; both at once are not."""
    def raw(key, members):
        members["vision.npy"] = codec.npy_bytes(codec.decode_member("vision.npy.zst", members.pop("vision.npy.zst")))
        return key, members
    assert violations_for(tmp_path / "raw", first_tar(demo_shards, "2d"), raw) == []

    def both(key, members):
        members["vision.npy"] = codec.npy_bytes(codec.decode_member("vision.npy.zst", members["vision.npy.zst"]))
        return key, members
    assert any(": members: " in v for v in violations_for(tmp_path / "both", first_tar(demo_shards, "2d"), both))


def test_validator_catches_3d_depth(demo_shards, tmp_path):
    fn = lambda a, m: codec.encode_image(np.repeat(a[..., :1], 6, axis=-1), slices=True)["slices.npy.zst"]  # depth 6
    found = violations_for(tmp_path, first_tar(demo_shards, "3d"), _edit("slices.npy.zst", fn))
    assert any(": vision-shape: 3D depth 6" in v for v in found), found


def test_validator_wants_3d_images_slices_contiguous(demo_shards, tmp_path):
    """Spec 1.4: a 3D sample stores its image as ``slices.npy(.zst)``; the 1.3 member in a 1.4 3D shard is reported."""
    def old_layout(key, members):
        vision = codec.decode_member("slices.npy.zst", members.pop("slices.npy.zst"))
        members.update(codec.encode_image(vision, 3))
        return key, members
    assert violations_for(tmp_path / "same", first_tar(demo_shards, "3d"), None) == []
    found = violations_for(tmp_path / "old", first_tar(demo_shards, "3d"), old_layout)
    assert found and all(": image-member: " in v for v in found), found


def test_validator_catches_layout_violations(demo_shards, tmp_path):
    src = first_tar(demo_shards, "2d")
    # a missing member
    def drop(key, members):
        if drop.done is None:
            drop.done = key
            members.pop("tokens.npy")
        return key, members
    drop.done = None
    assert any(": members: " in v for v in violations_for(tmp_path / "a", src, drop))
    # a key with a dot
    dotted = violations_for(tmp_path / "b", src, lambda k, m: (k.replace("_", ".", 1) if k.endswith("0") else k, m))
    assert any(": key: " in v or ": tar: " in v or ": members: " in v for v in dotted), dotted
    # members of one key not adjacent
    def interleave(names):
        names = list(names)
        names[0], names[len(names) // 2] = names[len(names) // 2], names[0]
        return names
    assert any(": tar: " in v and "contiguous" in v for v in violations_for(tmp_path / "c", src, order=interleave))


def test_validator_catches_index_and_manifest_violations(demo_shards, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(demo_shards / "mimic", root / "mimic")
    tar = sorted(root.rglob("*.tar"))[0]
    idx = json.loads(index_path(tar).read_text())
    idx["samples"][0]["members"]["meta.json"][0] += 1
    index_path(tar).write_bytes(json_bytes(idx))
    manifest = json.loads((root / "mimic" / "manifest.json").read_text())
    manifest["shards"][1]["samples"] += 1
    (root / "mimic" / "manifest.json").write_bytes(json_bytes(manifest))
    (root / "mimic" / "rejects.jsonl").write_text("")
    shutil.copy(tar, tar.with_name("mimic-train-2d-000099.tar"))
    found = validate_paths([str(root)]).violations
    assert any(": index: members:" in v for v in found), found
    assert any("manifest says" in v and "samples" in v for v in found), found
    assert any(": rejects: " in v for v in found), found
    assert any("not listed in the manifest" in v for v in found), found


def test_validate_cli_exit_codes(demo_shards, tmp_path):
    ok = subprocess.run([sys.executable, "-m", "shards_spec.validate", str(demo_shards)], cwd=ROOT, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout == ""
    bad = tmp_path / "mimic" / "2d" / "train" / "mimic-train-2d-000000.tar"
    rewrite(first_tar(demo_shards, "2d"), bad, _edit("labels.npy", lambda a, m: codec.npy_bytes(a * 0)))
    res = subprocess.run([sys.executable, "-m", "shards_spec.validate", str(bad)], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 1
    lines = res.stdout.strip().splitlines()
    assert lines and all(line.startswith(str(bad)) for line in lines)



def test_mistyped_meta_and_index_entries_are_violations_not_crashes(demo_shards, tmp_path):
    def retype(key, members):
        if retype.done is None:
            retype.done = key
            meta = codec.decode_member("meta.json", members["meta.json"])
            members["meta.json"] = codec.encode_meta({**meta, "n_tokens": str(meta["n_tokens"])})
        return key, members
    retype.done = None
    src = first_tar(demo_shards, "2d")
    dst = tmp_path / src.parent.parent.parent.name / src.parent.parent.name / src.parent.name / src.name
    rewrite(src, dst, retype)
    index = json.loads(index_path(dst).read_text())
    index["samples"][1]["depth"] = "one"
    index_path(dst).write_bytes(json_bytes(index))
    found = validate_paths([str(dst)]).violations
    assert any(": meta-types: n_tokens: expected int, got str" in v for v in found), found
    assert any(": index-types: depth: expected int, got str" in v for v in found), found
