"""The ChestX-ray14 demo fixture: 8-bit PNGs in ``images_001/images/`` and ``images_002/images/``, the 2017
``Data_Entry_2017.csv`` (its bracketed header split by the commas inside it, every line ending in a comma),
``train_val_list.txt`` / ``test_list.txt`` split by patient, and RadFM's shared chest files.

Planted faults: a truncated PNG, a row naming a finding that is not one of the 14. One image is in neither split list
(``info["unlisted"]``: a ``no_split`` reject).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.demo.faults import fault
from pipelines.demo.writers import write_csv, write_text
from pipelines.demo.xray import RADFM_ROOT, ImageFormat, XrayFixture, XrayItem, assign_findings, draw_view
from pipelines.sources.diagnosis import CHEST_FILES
from pipelines.sources.nih_cxr14.source import NAMES

PUBLISHED = {v: k for k, v in NAMES.items()}  # "Pleural Thickening" -> "Pleural_Thickening"
ACTIVE = ("Atelectasis", "Effusion", "Infiltration", "Cardiomegaly", "Pleural Thickening")
HEADER = ["Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age", "Patient Gender", "View Position",
          "OriginalImage[Width", "Height]", "OriginalImagePixelSpacing[x", "y]", ""]
PNG = ImageFormat("png")


class NihFixture(XrayFixture):
    name = "nih_cxr14"
    rng_stream = 17
    size_unit = "images"
    default_size = 20
    min_size = 10
    description = "NIH ChestX-ray14 native layout (PNG folders, Data_Entry_2017.csv, split lists) + RadFM chest csvs (radfm/)"
    radfm_files = CHEST_FILES
    normal = "No Finding"
    label_names = tuple(NAMES.values())

    def plan(self, rng: np.random.Generator, size: int) -> list[XrayItem]:
        patients = sorted({int(v) for v in rng.integers(1, 30805, size // 2 + 1)})
        owners = sorted(patients + [patients[int(i)] for i in rng.integers(0, len(patients), size - len(patients))])
        test_patients = set(patients[-max(2, len(patients) // 4):])
        followup: dict[int, int] = {}
        items = []
        findings = iter(assign_findings(rng, size, ACTIVE))
        for k, patient in enumerate(owners):
            number = followup[patient] = followup.get(patient, -1) + 1
            key = f"{patient:08d}_{number:03d}.png"
            view = "AP" if rng.random() < 0.4 else "PA"
            items.append(XrayItem(key, f"images_{1 + k * 2 // size:03d}/images/{key}", "test" if patient in test_patients
                                  else "train", next(findings), view, PNG, draw_view(rng, view, 512),
                                  extra={"patient": patient, "followup": number, "age": int(rng.integers(1, 90)),
                                         "sex": "M" if rng.random() < 0.56 else "F"}))
        for item in items:  # NIH's PNGs are square
            item.params = type(item.params)(**{**item.params.__dict__, "out_w": 512, "out_h": 512})
        items[2].fault = "corrupt_file"
        return items

    def write_tables(self, root: Path, items: list[XrayItem], rng: np.random.Generator, planted: list[dict]) -> dict[str, int]:
        rows = []
        for item in items:
            labels = "|".join(PUBLISHED[f] for f in item.findings) or "No Finding"
            spacing = f"{rng.choice([0.143, 0.168, 0.139]):.3f}"
            rows.append([item.key, labels, item.extra["followup"], item.extra["patient"], item.extra["age"], item.extra["sex"],
                         item.view, int(rng.integers(2000, 3056)), int(rng.integers(2000, 3056)), spacing, spacing, ""])
        bad = next(k for k, item in enumerate(items) if item.fault is None and item.split == "train" and k > 2)
        rows[bad][1] = "Pneumonitis|" + rows[bad][1]
        planted.append(fault(self.name, "Data_Entry_2017.csv", "bad_row", row=bad))
        unlisted = next(item for k, item in enumerate(items) if k > bad and item.fault is None and item.split == "train")
        self.unlisted = unlisted.rel
        lists = {split: "".join(f"{i.key}\n" for i in items if i.split == split and i is not unlisted) for split in ("train", "test")}
        write_text(root / "train_val_list.txt", lists["train"])
        write_text(root / "test_list.txt", lists["test"])
        return {"Data_Entry_2017.csv": write_csv(root / "Data_Entry_2017.csv", HEADER, rows),
                "train_val_list.txt": lists["train"].count("\n"), "test_list.txt": lists["test"].count("\n")}

    def write(self, root, rng, size, options):
        info, planted = super().write(root, rng, size, options)
        info["unlisted"] = self.unlisted
        return info, planted

    def radfm_path(self, item: XrayItem) -> str:
        return f"{RADFM_ROOT}ChestXray14/{item.rel}"


FIXTURE = NihFixture()
