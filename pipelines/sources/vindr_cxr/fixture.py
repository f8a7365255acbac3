"""The VinDr-CXR demo fixture: DICOM radiographs under ``train/`` and ``test/`` (MONOCHROME1 and MONOCHROME2, 12 and
14 bits, uncompressed and JPEG 2000), ``annotations/image_labels_{train,test}.csv`` with three radiologists per
training image (who sometimes disagree) and the consensus row per test image, and RadFM's shared chest files.

Planted faults: a truncated DICOM, a training label row with a value that is neither 0 nor 1. One training image has
no majority (each reader marks another finding): a ``no_label`` reject (``info["no_majority"]``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.demo.faults import fault
from pipelines.demo.writers import write_csv
from pipelines.demo.xray import (
    RADFM_ROOT,
    ImageFormat,
    XrayFixture,
    XrayItem,
    draw_view,
    hex_id,
    radiograph_tags,
    split_findings,
)
from pipelines.sources.diagnosis import CHEST_FILES
from pipelines.sources.vindr_cxr.source import FINDINGS

NORMAL = "No finding"
COLUMNS = (*FINDINGS, NORMAL)
ACTIVE = ("Aortic enlargement", "Cardiomegaly", "Lung Opacity", "Nodule/Mass", "Pleural effusion", "Pulmonary fibrosis")
FORMATS = (ImageFormat("dicom", "DX", "explicit", "MONOCHROME2", 14), ImageFormat("dicom", "DX", "explicit", "MONOCHROME1", 12),
           ImageFormat("dicom", "DX", "j2k", "MONOCHROME2", 12))
READERS = tuple(f"R{k}" for k in range(8, 18))


class VinDrCXRFixture(XrayFixture):
    name = "vindr_cxr"
    rng_stream = 13
    size_unit = "images"
    default_size = 18
    min_size = 8
    description = "VinDr-CXR native layout (DICOM, 3 readers per training image) + RadFM chest csvs (radfm/)"
    radfm_files = CHEST_FILES
    normal = NORMAL
    label_names = FINDINGS

    def plan(self, rng: np.random.Generator, size: int) -> list[XrayItem]:
        items = []
        for k, (split, findings) in enumerate(split_findings(rng, size, ACTIVE, ACTIVE[:3])):
            key = hex_id(rng)
            items.append(XrayItem(key, f"{split}/{key}.dicom", split, findings, "PA", FORMATS[k % len(FORMATS)],
                                  draw_view(rng, "PA", int(rng.integers(560, 720))),
                                  tags=radiograph_tags(rng, "PA", manufacturer="GE Healthcare")))
        items[1].fault = "corrupt_file"
        return items

    def write_tables(self, root: Path, items: list[XrayItem], rng: np.random.Generator, planted: list[dict]) -> dict[str, int]:
        train_rows, test_rows, agreed = [], [], []
        disagree = next(i for i in items[2:] if i.split == "train")
        unanimous = next(i for i in items if i.split == "train" and i.fault is None and i is not disagree)
        for item in items:
            if item.split == "test":
                test_rows.append([item.key, *self.flags(item.findings)])
                continue
            readers = [READERS[int(j)] for j in rng.choice(len(READERS), 3, replace=False)]
            if item is disagree:
                votes = [{ACTIVE[0]}, {ACTIVE[1]}, {ACTIVE[2]}]
            else:
                votes = [set(item.findings) or {NORMAL} for _ in readers]
                if item is not unanimous and rng.random() < 0.6:  # one reader differs: adds a finding, or misses one
                    odd, extra = int(rng.integers(3)), ACTIVE[int(rng.integers(len(ACTIVE)))]
                    votes[odd] = (votes[odd] - {NORMAL}) | {extra} if rng.random() < 0.5 else (votes[odd] - {extra} or {NORMAL})
                elif item.fault is None:
                    agreed.append(len(train_rows))  # a row whose loss leaves two agreeing readers
            train_rows += [[item.key, reader, *self.flags(tuple(v))] for reader, v in zip(readers, votes)]
        self.disagree = disagree.rel
        bad = agreed[int(rng.integers(len(agreed)))]
        train_rows[bad][2 + COLUMNS.index(ACTIVE[3])] = 2
        planted.append(fault(self.name, "annotations/image_labels_train.csv", "bad_row", row=bad))
        header = ["image_id", "rad_ID", *COLUMNS]
        return {
            "annotations/image_labels_train.csv": write_csv(root / "annotations/image_labels_train.csv", header, train_rows),
            "annotations/image_labels_test.csv": write_csv(root / "annotations/image_labels_test.csv",
                                                           ["image_id", *COLUMNS], test_rows),
        }

    def write(self, root, rng, size, options):
        info, planted = super().write(root, rng, size, options)
        info["no_majority"] = self.disagree
        return info, planted

    @staticmethod
    def flags(findings: tuple[str, ...]) -> list[int]:
        present = set(findings) or {NORMAL}
        return [int(c in present) for c in COLUMNS]

    def radfm_path(self, item: XrayItem) -> str:
        return f"{RADFM_ROOT}VinDr-CXR/process/{item.split}/{Path(item.rel).stem}.png"


FIXTURE = VinDrCXRFixture()
