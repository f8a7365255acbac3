"""Object-CXR's rules (pipelines/sources/object_cxr): a non-empty annotation is a foreign object, an empty one is
none; dev is the test split; an annotation that is not ``TYPE x y …`` groups is a ``bad_row``."""

from __future__ import annotations

from xray_helpers import by_image, csv_text, plan, raw_tree, rejected


def test_annotations_and_the_dev_split(tmp_path):
    train = [["00001.jpg", "0 100 200 300 400;1 50 60 70 80"], ["00002.jpg", ""], ["00003.jpg", "2 1 2 3 4 5 6"],
             ["00004.jpg", "box at 3,4"], ["", "0 1 2 3 4"]]
    raw = raw_tree(tmp_path / "object_cxr", {
        "train.csv": csv_text(["image_name", "annotation"], [[n, f'"{a}"' if "," in a else a] for n, a in train]),
        "dev.csv": csv_text(["image_name", "annotation"], [["08001.jpg", ""]]),
        **{f"train/0000{k}.jpg": b"" for k in range(1, 5)}, "dev/08001.jpg": b""})
    jobs, rejects = plan(raw, "object_cxr")
    assert by_image(jobs) == {"train/00001.jpg": ("Foreign object",), "train/00002.jpg": (),
                              "train/00003.jpg": ("Foreign object",), "dev/08001.jpg": ()}
    assert {j.record.split for j in jobs if j.record.images[0].path.startswith("dev/")} == {"test"}
    bad = {r.source_id: r.message for r in rejected(rejects, "bad_row")}
    assert set(bad) == {"train.csv:line5", "train.csv:line6"}
    assert "TYPE x y" in bad["train.csv:line5"] and "empty image_name" in bad["train.csv:line6"]
