"""From a source's image paths to image references (pipelines.sources.images)."""

from __future__ import annotations

import numpy as np

from pipelines.paths import PathResolver
from pipelines.records import ImageRef, Reject
from pipelines.sources import BuildContext
from pipelines.sources.images import image_refs_for, resolve_volumes


def test_image_refs_expand_npy_series_and_series_folders(tmp_path):
    np.save(tmp_path / "case.npy", np.zeros((3, 3, 4, 4, 2), np.uint8))
    np.save(tmp_path / "vol.npy", np.zeros((4, 4, 2), np.uint8))
    for name in ("MRI_10", "MRI_2", "CT_0"):
        (tmp_path / "c1" / name).mkdir(parents=True)
    assert image_refs_for(tmp_path, "case.npy") == [ImageRef("case.npy", "npy", i) for i in range(3)]
    assert image_refs_for(tmp_path, "vol.npy") == [ImageRef("vol.npy", "npy", 0)]
    assert [r.path for r in image_refs_for(tmp_path, "c1")] == ["c1/CT_0", "c1/MRI_2", "c1/MRI_10"]
    assert image_refs_for(tmp_path, "c1/CT_0") == [ImageRef("c1/CT_0", "volume")]


def test_resolve_volumes_gives_refs_or_one_reject(tmp_path):
    np.save(tmp_path / "case.npy", np.zeros((2, 3, 4, 4, 2), np.uint8))
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    ctx = BuildContext(tmp_path, "radfm", tmp_path, PathResolver(tmp_path))
    refs = resolve_volumes(ctx, "ds", ["/cluster/data/case.npy"], "f.csv:row1")
    assert refs == (ImageRef("case.npy", "npy", 0), ImageRef("case.npy", "npy", 1))
    for paths, reason in ((["/cluster/none.npy"], "missing_file"), (["bad.npy"], "undecodable"), ([], "bad_row")):
        reject = resolve_volumes(ctx, "ds", paths, "f.csv:row2")
        assert isinstance(reject, Reject) and reject.reason == reason and reject.source_id == "f.csv:row2"
