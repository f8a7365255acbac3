"""NLM-TB's rules (pipelines/sources/nlm_tb): the label is the file name's suffix (``_1`` tuberculosis, ``_0`` normal),
a name without it is rejected; the split is a stable hash of the name, the same for every seed."""

from __future__ import annotations

from xray_helpers import by_image, plan, raw_tree

from pipelines.sources.diagnosis import hashed_split


def test_suffix_labels_and_the_seed_independent_split(tmp_path):
    names = {f"MontgomerySet/CXR_png/MCUCXR_{k:04d}_{k % 2}.png": b"" for k in range(1, 11)}
    names.update({f"ChinaSet_AllFiles/CXR_png/CHNCXR_{k:04d}_{k % 2}.png": b"" for k in range(1, 11)})
    names["ChinaSet_AllFiles/CXR_png/CHNCXR_0011.png"] = b""  # no label suffix
    names["MontgomerySet/ClinicalReadings/MCUCXR_0001_1.txt"] = "Sex: M\nAge: 40\nactive TB\n"
    raw = raw_tree(tmp_path / "nlm_tb", names)
    jobs, rejects = plan(raw, "nlm_tb")
    found = by_image(jobs)
    assert len(found) == 20
    for path, findings in found.items():
        assert findings == (("Tuberculosis",) if path.endswith("_1.png") else ())
    (bad,) = rejects
    assert bad.reason == "bad_row" and bad.file.endswith("CHNCXR_0011.png") and "_0.png" in bad.message
    splits = {j.record.images[0].path: j.record.split for j in jobs}
    assert set(splits.values()) == {"train", "test"}
    assert all(s == hashed_split("nlm_tb", p.rsplit("/", 1)[1]) for p, s in splits.items())
    again, _ = plan(raw, "nlm_tb", seed=7)
    assert {j.record.images[0].path: j.record.split for j in again} == splits
    # no PNG at all: one reject that says where it looked
    (_, rejects) = plan(raw_tree(tmp_path / "empty", {"readme.txt": "x"}), "nlm_tb")
    assert [r.reason for r in rejects] == ["missing_file"] and "CXR_png" in rejects[0].message
