"""SIIM-ACR's rules (pipelines/sources/siim_acr): ``EncodedPixels`` ``-1`` is no pneumothorax, run-length masks (one row
each) are ``Pneumothorax``, ``-1`` beside a mask has no label; DICOMs are found in their study/series folders."""

from __future__ import annotations

from xray_helpers import by_image, csv_text, plan, raw_tree, rejected

IDS = [f"1.2.276.0.7230010.3.1.4.8323329.{k}.1517875162.{k}" for k in range(1, 6)]


def test_rle_rows_per_image(tmp_path):
    rows = [[IDS[0], "-1"], [IDS[1], "175349 7 1013 12"], [IDS[1], "407576 2 1021 7"], [IDS[2], "-1"],
            [IDS[2], "6 4"], [IDS[3], "12 x 4"], [IDS[4], "1 2 3"]]
    raw = raw_tree(tmp_path / "siim_acr", {
        "train-rle.csv": csv_text(["ImageId", " EncodedPixels"], rows),  # the publisher's header has the space
        **{f"dicom-images-train/1.2.{k}/1.3.{k}/{i}.dcm": b"" for k, i in enumerate(IDS)}})
    jobs, rejects = plan(raw, "siim_acr")
    found = {path.rsplit("/", 1)[1]: f for path, f in by_image(jobs).items()}
    assert found == {f"{IDS[0]}.dcm": (), f"{IDS[1]}.dcm": ("Pneumothorax",)}
    assert {j.spec.answer for j in jobs if j.spec.task == "diagnosis_open"} == {"No pneumothorax", "Pneumothorax"}
    (no_label,) = rejected(rejects, "no_label")
    assert IDS[2] in no_label.message
    bad = sorted(r.source_id for r in rejected(rejects, "bad_row"))
    assert bad == ["train-rle.csv:line7", "train-rle.csv:line8"]  # not numbers; an odd count of numbers
