"""Hostile tars are refused without extracting anything (shards_spec.tario), also by inspect."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from pipelines.inspect import inspect as inspect_path
from shards_spec.tario import UnsafeTar, iter_members


def _hostile_tar(path: Path, kind: str) -> None:
    with tarfile.open(path, "w") as tar:
        if kind == "symlink":
            info = tarfile.TarInfo("k.meta.json")
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        elif kind == "traversal":
            data = b"{}"
            info = tarfile.TarInfo("../../evil.meta.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    if kind == "huge":
        data = b"x"
        with tarfile.open(path, "w") as tar:
            info = tarfile.TarInfo("k.vision.npy.zst")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        raw = bytearray(path.read_bytes())
        raw[124:136] = b"77777777777\0"  # declare an 8 GiB member
        chk = sum(raw[:148]) + 8 * 32 + sum(raw[156:512])
        raw[148:156] = f"{chk:06o}\0 ".encode()
        path.write_bytes(bytes(raw))


@pytest.mark.parametrize("kind", ["symlink", "traversal", "huge"])
def test_hostile_tars_are_refused_without_extraction(tmp_path, kind, monkeypatch):
    tar = tmp_path / "in" / "x.tar"
    tar.parent.mkdir()
    _hostile_tar(tar, kind)
    monkeypatch.chdir(tmp_path / "in")
    with pytest.raises((UnsafeTar, tarfile.TarError)):
        list(iter_members(tar, max_member_bytes=1 << 20))
    summary = inspect_path(tar)
    assert summary.errors and summary.samples == 0
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["in", "x.tar"]  # nothing extracted

