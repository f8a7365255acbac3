"""Mapping RadFM's absolute cluster paths onto the raw root (pipelines.paths)."""

from __future__ import annotations

import pytest

from pipelines.paths import OutsideRoot, PathResolver, UnresolvedPath, confine, confine_tree, parse_path_maps


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


def test_confine_normalises_and_refuses_paths_that_leave_the_root(tmp_path):
    raw = tmp_path / "raw"
    (raw / "files").mkdir(parents=True)
    (raw / "files" / "a.jpg").write_bytes(b"x")
    (tmp_path / "outside.jpg").write_bytes(b"x")
    (raw / "files" / "out.jpg").symlink_to(tmp_path / "outside.jpg")
    (raw / "files" / "in.jpg").symlink_to(raw / "files" / "a.jpg")
    assert confine(raw, "files/./x/../a.jpg") == "files/a.jpg"
    assert confine(raw, "files/in.jpg") == "files/in.jpg"  # a link that stays inside is fine
    for rel in ("../outside.jpg", "files/../../outside.jpg", "/etc/passwd", "C:/x.jpg", "files/out.jpg"):
        with pytest.raises(OutsideRoot):
            confine(raw, rel)
    assert confine(raw, "files/out.jpg", follow_symlinks_outside=True) == "files/out.jpg"
    with pytest.raises(OutsideRoot):  # '..' is refused even when links may leave the root
        confine(raw, "../outside.jpg", follow_symlinks_outside=True)
    with pytest.raises(UnresolvedPath):
        confine(raw, "files/..")


def test_confine_tree_checks_a_slice_folders_files(tmp_path):
    raw = tmp_path / "raw"
    (raw / "series").mkdir(parents=True)
    (raw / "series" / "0.jpg").write_bytes(b"x")
    assert confine_tree(raw, "series") == "series"
    (raw / "series" / "1.jpg").symlink_to(tmp_path)
    with pytest.raises(OutsideRoot, match="1.jpg"):
        confine_tree(raw, "series")
    assert confine_tree(raw, "series", follow_symlinks_outside=True) == "series"


def test_resolver_results_never_leave_the_root(tmp_path):
    (tmp_path / "raw/files/p10").mkdir(parents=True)
    (tmp_path / "raw/files/p10/a.jpg").write_bytes(b"x")
    (tmp_path / "secret.jpg").write_bytes(b"x")
    r = PathResolver(tmp_path / "raw")
    assert r.resolve("/gpfs/x/files/p10/a.jpg") == "files/p10/a.jpg"  # learns /gpfs/x
    for path in ("/gpfs/x/files/../../secret.jpg",  # a learned prefix followed by '..'
                 "/gpfs/y/files/../../../secret.jpg",  # '..' in a path to search suffixes of
                 "../secret.jpg"):
        with pytest.raises(OutsideRoot):
            r.resolve(path)
    mapped = PathResolver(tmp_path / "raw", parse_path_maps(["/data=files"]))
    with pytest.raises(OutsideRoot):
        mapped.resolve("/data/../../secret.jpg")
