"""Stable shard membership, input identities and the code version (pipelines.incremental)."""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.incremental import code_version, partition, path_identity
from shards_spec.hashing import sample_key


def _keys(n: int, tag: str = "row") -> list[str]:
    return [sample_key("ds", f"{tag}{i}", "report", "report") for i in range(n)]


def _shards(keys: list[str], per_shard: int) -> dict[int, tuple[str, ...]]:
    return {number: tuple(members) for number, members in partition(keys, per_shard)}


def test_partition_is_a_function_of_the_key_set():
    keys = _keys(1000)
    shards = _shards(keys, 100)
    assert _shards(list(reversed(keys)), 100) == shards
    assert sorted(k for members in shards.values() for k in members) == sorted(keys)
    assert all(0 < len(members) <= 100 for members in shards.values())
    assert 10 <= len(shards) <= 40  # leaves fill between half and all of a shard, on average ~0.7
    for members in shards.values():
        assert list(members) == sorted(members, key=lambda k: int(k[-20:], 16))


def test_one_new_row_changes_at_most_two_shards():
    keys = _keys(1000)
    per_shard = max(len(m) for m in _shards(keys, 100).values())  # the same partition, with a full leaf
    before = _shards(keys, per_shard)
    assert before == _shards(keys, 100)
    worst = 0
    for extra in _keys(200, "new"):
        after = _shards(keys + [extra], per_shard)
        rebuilt = {n for n in after if before.get(n) != after[n]}  # written anew (a split leaf's file is removed)
        worst = max(worst, len(rebuilt))
        assert len(rebuilt) <= 2
    assert worst == 2  # a row landing in the full leaf splits it into two shards
    assert _shards(_keys(1000), 1000) == {0: tuple(sorted(_keys(1000), key=lambda k: int(k[-20:], 16)))}
    assert len(_shards(_keys(1001), 1000)) == 2


def test_path_identity_sees_size_mtime_content_and_folder_contents(tmp_path):
    f = tmp_path / "a.jpg"
    f.write_bytes(b"abc")
    os.utime(f, ns=(1_000_000_000, 1_000_000_000))
    stat, content = path_identity(tmp_path, "a.jpg", "stat"), path_identity(tmp_path, "a.jpg", "content")
    f.write_bytes(b"abd")  # same size
    os.utime(f, ns=(1_000_000_000, 1_000_000_000))  # same mtime: only the content hash sees it
    assert path_identity(tmp_path, "a.jpg", "stat") == stat
    assert path_identity(tmp_path, "a.jpg", "content") != content
    os.utime(f, ns=(2_000_000_000, 2_000_000_000))
    assert path_identity(tmp_path, "a.jpg", "stat") != stat
    assert path_identity(tmp_path, "none.jpg", "stat") == "missing"
    (tmp_path / "series").mkdir()
    (tmp_path / "series" / "0.jpg").write_bytes(b"x")
    folder = path_identity(tmp_path, "series", "stat")
    (tmp_path / "series" / "1.jpg").write_bytes(b"y")
    assert path_identity(tmp_path, "series", "stat") != folder


def test_code_version_ignores_docstrings_and_comments(tmp_path, monkeypatch):
    import pipelines.incremental as inc

    version = code_version()
    assert version.startswith("sha256:") and len(version) == 23
    src = Path(inc.ROOT / "pipelines/imaging/intensity.py").read_text()
    copy = tmp_path / "pipelines/imaging"
    copy.mkdir(parents=True)
    (copy / "intensity.py").write_text(src)
    monkeypatch.setattr(inc, "ROOT", tmp_path)
    monkeypatch.setattr(inc, "SAMPLE_CODE", ("pipelines/imaging",))
    inc.code_version.cache_clear()
    try:
        base = inc.code_version()
        (copy / "intensity.py").write_text('"""Another docstring."""\n# a comment\n' + src.split('"""', 2)[2])
        inc.code_version.cache_clear()
        assert inc.code_version() == base
        (copy / "intensity.py").write_text(src.replace("GREY_TOLERANCE = 2", "GREY_TOLERANCE = 3"))
        inc.code_version.cache_clear()
        assert inc.code_version() != base
    finally:
        inc.code_version.cache_clear()
