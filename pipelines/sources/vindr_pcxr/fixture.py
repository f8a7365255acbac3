"""The VinDr-PCXR demo fixture: paediatric DICOM radiographs under ``train/`` and ``test/`` (uncompressed MONOCHROME2
and RLE MONOCHROME1), ``image_labels_{train,test}.csv`` (one radiologist per image, ``1.0`` / ``0.0`` values, the
publisher's label spellings) and RadFM's ``pcxr_*`` files.

Planted faults: an empty DICOM, a label row cut short (too few fields).
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
from pipelines.sources.diagnosis import PCXR_FILES
from pipelines.sources.vindr_pcxr.source import FINDINGS

NORMAL = "No finding"
COLUMNS = (NORMAL, *FINDINGS)  # the publisher's order: No finding first
ACTIVE = ("Bronchitis", "Brocho-pneumonia", "Bronchiolitis", "Pneumonia", "Other disease")
FORMATS = (ImageFormat("dicom", "DX", "explicit", "MONOCHROME2", 12), ImageFormat("dicom", "DX", "rle", "MONOCHROME1", 12))


class VinDrPCXRFixture(XrayFixture):
    name = "vindr_pcxr"
    rng_stream = 14
    size_unit = "images"
    default_size = 14
    min_size = 8
    description = "VinDr-PCXR native layout (paediatric DICOM, one label row per image) + RadFM pcxr csvs (radfm/)"
    radfm_files = PCXR_FILES
    normal = NORMAL
    label_names = FINDINGS

    def plan(self, rng: np.random.Generator, size: int) -> list[XrayItem]:
        items = []
        for k, (split, findings) in enumerate(split_findings(rng, size, ACTIVE, ACTIVE[:2], test_normal_share=0.4)):
            key = hex_id(rng)
            view = "AP" if rng.random() < 0.6 else "PA"
            items.append(XrayItem(key, f"{split}/{key}.dicom", split, findings, view, FORMATS[k % 2],
                                  draw_view(rng, view, int(rng.integers(420, 560))),
                                  tags=radiograph_tags(rng, view, age=int(rng.integers(0, 11)), manufacturer="Philips")))
        items[2].fault = "empty_file"
        return items

    def write_tables(self, root: Path, items: list[XrayItem], rng: np.random.Generator, planted: list[dict]) -> dict[str, int]:
        rows: dict[str, list[list]] = {"train": [], "test": []}
        for item in items:
            present = set(item.findings) or {NORMAL}
            rows[item.split].append([item.key, f"R{int(rng.integers(1, 6))}", *(("1.0" if c in present else "0.0") for c in COLUMNS)])
        bad = int(rng.integers(len(rows["train"])))
        rows["train"][bad] = rows["train"][bad][:-3]
        planted.append(fault(self.name, "image_labels_train.csv", "bad_row", row=bad))
        header = ["image_id", "rad_ID", *COLUMNS]
        return {f"image_labels_{s}.csv": write_csv(root / f"image_labels_{s}.csv", header, rows[s]) for s in ("train", "test")}

    def radfm_path(self, item: XrayItem) -> str:
        return f"{RADFM_ROOT}VinDr-PCXR/process/{item.split}/{Path(item.rel).stem}.png"


FIXTURE = VinDrPCXRFixture()
