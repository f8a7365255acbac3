"""shards_spec.storage against a real S3 server: publication, listing, ranges, retries and their limits."""

from __future__ import annotations

import pytest

from shards_spec import storage
from shards_spec.layout import index_path, shard_path, stats_path


def test_locations_keep_urls_as_strings():
    tar = shard_path("s3://b/p", "mimic", "2d", "train", 3)
    assert tar == "s3://b/p/mimic/2d/train/mimic-train-2d-000003.tar"
    assert index_path(tar) == "s3://b/p/mimic/2d/train/mimic-train-2d-000003.index.json"
    assert stats_path(tar).endswith(".stats.json") and storage.relative(tar, "s3://b/p") == "mimic/2d/train/" + storage.name(tar)
    assert not storage.is_remote("/x/y") and not storage.is_remote("file:///x") and storage.is_remote("gs://b/k")


def test_write_list_range_delete(s3_server):
    s3_server.create_bucket("unit")
    data = bytes(range(256)) * 1000
    storage.write_bytes("s3://unit/a/b/x.bin", data)
    storage.write_bytes("s3://unit/a/y.bin", b"y")
    assert storage.listing("s3://unit/a") == {"s3://unit/a/b/x.bin": len(data), "s3://unit/a/y.bin": 1}
    assert storage.listing("s3://unit/a/b") == {"s3://unit/a/b/x.bin": len(data)}
    assert storage.read_range("s3://unit/a/b/x.bin", 1000, 300) == data[1000:1300]
    assert storage.read_bytes("s3://unit/a/y.bin") == b"y"
    storage.delete("s3://unit/a/y.bin")
    storage.delete("s3://unit/a/never-was")  # deleting nothing is fine
    assert not storage.exists("s3://unit/a/y.bin") and storage.exists("s3://unit/a/b/x.bin")
    with pytest.raises(FileNotFoundError, match="no such object"):
        storage.read_range("s3://unit/a/y.bin", 0, 10)


def test_put_503_is_retried_and_the_object_appears_whole(s3_server):
    s3_server.create_bucket("puts")
    before = storage.RETRIES.get("write", 0)
    s3_server.inject("503", count=2, method="PUT", contains="obj")
    storage.write_bytes("s3://puts/obj", b"z" * 100_000)
    assert storage.RETRIES["write"] - before == 2
    assert storage.read_bytes("s3://puts/obj") == b"z" * 100_000


def test_unknown_bucket_is_one_clear_error_without_retries(s3_server):
    before = dict(storage.RETRIES)
    with pytest.raises(OSError, match="s3://no-such-bucket"):
        storage.read_bytes("s3://no-such-bucket/k")
    assert storage.RETRIES == before


def test_backoff_grows_and_is_capped():
    policy = storage.RetryPolicy(attempts=10, first_delay_s=0.5, max_delay_s=4)
    delays = [policy.delay(a) for a in range(1, 8)]
    assert 0.25 <= delays[0] <= 0.5 and all(2 <= d <= 4 for d in delays[4:])


def test_parse_bytes():
    assert storage.parse_bytes("512M") == 512 << 20 and storage.parse_bytes("10GiB") == 10 << 30
    assert storage.parse_bytes("1000") == 1000
    with pytest.raises(ValueError):
        storage.parse_bytes("lots")


def test_indexed_reads_turn_a_mistyped_index_entry_into_one_value_error(demo_shards, tmp_path):
    """The index-driven reader (what inspect uses on object storage) never lets a hostile sidecar raise anything
    but ``ValueError`` (one line in inspect); it works on local paths too."""
    import json
    import shutil

    from shards_spec.layout import index_path
    from shards_spec.reader import iter_indexed_samples

    tar = sorted((demo_shards / "mimic").rglob("*.tar"))[0]
    copy = tmp_path / tar.name
    shutil.copy(tar, copy)
    index = json.loads(index_path(tar).read_text())
    index_path(copy).write_text(json.dumps(index))
    assert len(list(iter_indexed_samples(str(copy)))) == len(index["samples"])
    index["samples"][1]["members"]["labels.npy"] = ["0", "12"]
    index_path(copy).write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"samples\[1\] is not a valid index entry"):
        list(iter_indexed_samples(str(copy)))
    index_path(copy).write_text("[" * 100_000)
    with pytest.raises(ValueError):
        list(iter_indexed_samples(str(copy)))
