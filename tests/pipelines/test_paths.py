"""Mapping RadFM's absolute cluster paths onto the raw root (pipelines.paths)."""

from __future__ import annotations

import pytest

from pipelines.paths import PathResolver, UnresolvedPath, parse_path_maps


def test_path_resolver_longest_suffix_learns_prefix(tmp_path):
    (tmp_path / "files/p10/p1/s5").mkdir(parents=True)
    (tmp_path / "files/p10/p1/s5/a.jpg").write_bytes(b"x")
    r = PathResolver(tmp_path)
    assert r.resolve("/gpfs/home/x/MIMIC-CXR/files/p10/p1/s5/a.jpg") == "files/p10/p1/s5/a.jpg"
    assert r.learned_prefixes() == {"/gpfs/home/x/MIMIC-CXR": ""}
    # later paths with the learned prefix map without touching the file system
    assert r.resolve("/gpfs/home/x/MIMIC-CXR/files/p11/p2/s6/b.jpg") == "files/p11/p2/s6/b.jpg"
    with pytest.raises(UnresolvedPath):
        r.resolve("/elsewhere/nothing/here.jpg")
    with pytest.raises(UnresolvedPath):
        r.resolve("  ")


def test_path_map_overrides(tmp_path):
    r = PathResolver(tmp_path, parse_path_maps(["/mnt/data/mimic=jpg"]))
    assert r.resolve("/mnt/data/mimic/files/a.jpg") == "jpg/files/a.jpg"
    with pytest.raises(ValueError):
        parse_path_maps(["no-equals-sign"])
