"""The format's JSON records as types (shards_spec.schema): what the build writes parses back to equal values,
and a mistyped record is refused with the path of the first problem."""

from __future__ import annotations

import json

import pytest

from shards_spec.codec import decode_member
from shards_spec.jsonio import json_bytes, read_json
from shards_spec.layout import FIELD_META, SPEC_VERSION, index_path
from shards_spec.reader import iter_raw_samples
from shards_spec.schema import IndexEntry, Manifest, SampleMeta, SchemaError, ShardIndex


def test_written_records_round_trip(demo_shards):
    for dataset in ("mimic", "rad3d"):
        raw = read_json(demo_shards / dataset / "manifest.json")
        manifest = Manifest.from_dict(raw)
        assert json_bytes(manifest.to_dict()) == (demo_shards / dataset / "manifest.json").read_bytes()
        tar = demo_shards / dataset / manifest.shards[0].path
        index = ShardIndex.from_dict(read_json(index_path(tar)))
        assert json_bytes(index.to_dict()) == index_path(tar).read_bytes()
        for entry, sample in zip(index.samples, iter_raw_samples(tar)):
            meta_bytes = sample.members[FIELD_META].data
            meta = SampleMeta.from_dict(decode_member(FIELD_META, meta_bytes))
            assert meta.key == entry.key == sample.key and meta.task == entry.task and meta.n_tokens == entry.n_tokens
            assert json.dumps(meta.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode() == meta_bytes


def _meta(demo_shards) -> dict:
    """A 3D sample's meta with one image (the cases below edit its first image and span)."""
    metas = (raw.decode()[FIELD_META] for tar in sorted((demo_shards / "rad3d").rglob("*.tar")) for raw in iter_raw_samples(tar))
    return next(m for m in metas if len(m["image_spans"]) == 1)


@pytest.mark.parametrize("change, message", [
    (lambda m: m.update(n_tokens="12"), "n_tokens: expected int, got str"),
    (lambda m: m.update(truncated=0), "truncated: expected bool, got int"),
    (lambda m: m["images"][0].update(series=None), "images[0].series: expected int, got null"),
    (lambda m: m["image_spans"].append(3), "image_spans[1]: expected an object, got int"),
    (lambda m: m.pop("question"), "question: missing"),
    (lambda m: m["special_ids"].pop("eos"), "special_ids.eos: missing"),
    (lambda m: m.update(prompt_id=7), "prompt_id: expected str or null, got int"),
])
def test_mistyped_meta_is_refused_with_its_path(demo_shards, change, message):
    meta = _meta(demo_shards)
    assert SampleMeta.from_dict(meta).spec_version == SPEC_VERSION
    meta.update(unknown_new_key=1)  # a minor version may add keys: ignored
    SampleMeta.from_dict(meta)
    change(meta)
    with pytest.raises(SchemaError, match=message.replace("[", r"\[").replace("]", r"\]")):
        SampleMeta.from_dict(meta)


def test_mistyped_index_entries_are_refused():
    good = {"key": "mimic_" + "0" * 20, "offset": 0, "size": 10, "members": {"meta.json": [512, 10]}, "task": "report",
            "n_tokens": 5, "n_images": 1, "depth": 1}
    assert IndexEntry.from_dict(good).members == {"meta.json": (512, 10)}
    for bad, message in (({**good, "members": {"meta.json": [512]}}, "expected 2 values"),
                         ({**good, "offset": 1.5}, "offset: expected int"),
                         ({**good, "members": []}, "members: expected an object"),
                         ("not an object", "expected an object")):
        with pytest.raises(SchemaError, match=message):
            IndexEntry.from_dict(bad)
