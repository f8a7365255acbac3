"""The VinDr-SpineXR demo fixture: spine DICOMs under ``train_images/`` and ``test_images/`` (JPEG 2000 and
uncompressed MONOCHROME1), ``annotations/{train,test}.csv`` with one row per lesion box (one ``No finding`` row with
empty coordinates for a normal image), and RadFM's ``spinexr_*`` files.

Planted faults: an annotated image whose DICOM is not in the download, a lesion row without its box.
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
from pipelines.sources.diagnosis import SPINEXR_FILES
from pipelines.sources.vindr_spinexr.source import FINDINGS

NORMAL = "No finding"
ACTIVE = ("Osteophytes", "Disc space narrowing", "Surgical implant", "Foraminal stenosis")
FORMATS = (ImageFormat("dicom", "DX", "j2k", "MONOCHROME2", 12), ImageFormat("dicom", "DX", "explicit", "MONOCHROME1", 12))


class VinDrSpineXRFixture(XrayFixture):
    name = "vindr_spinexr"
    rng_stream = 15
    size_unit = "images"
    default_size = 14
    min_size = 8
    description = "VinDr-SpineXR native layout (spine DICOM, one row per lesion box) + RadFM spinexr csvs (radfm/)"
    radfm_files = SPINEXR_FILES
    normal = NORMAL
    label_names = FINDINGS

    def plan(self, rng: np.random.Generator, size: int) -> list[XrayItem]:
        items = []
        for k, (split, findings) in enumerate(split_findings(rng, size, ACTIVE, ACTIVE[:2])):
            key = hex_id(rng)
            tags = radiograph_tags(rng, "SPINE", body_part="LSPINE" if rng.random() < 0.6 else "CSPINE",
                                   manufacturer="Siemens")
            items.append(XrayItem(key, f"{split}_images/{key}.dicom", split, findings, "SPINE", FORMATS[k % 2],
                                  draw_view(rng, "SPINE", int(rng.integers(560, 720))), tags=tags))
        items[3].fault = "missing_file"
        return items

    def write_tables(self, root: Path, items: list[XrayItem], rng: np.random.Generator, planted: list[dict]) -> dict[str, int]:
        rows: dict[str, list[list]] = {"train": [], "test": []}
        lesion_rows: list[int] = []
        for item in items:
            ids = [item.key, item.tags["StudyInstanceUID"].rsplit(".", 1)[-1], item.tags["SeriesInstanceUID"].rsplit(".", 1)[-1],
                   f"rad{int(rng.integers(1, 4))}"]
            if not item.findings:
                rows[item.split].append([*ids, NORMAL, "", "", "", ""])
                continue
            w, h = item.params.out_w, item.params.out_h
            for finding in item.findings:
                for _ in range(int(rng.integers(1, 3))):
                    x0, y0 = rng.uniform(0.1, 0.6) * w, rng.uniform(0.1, 0.8) * h
                    box = [f"{x0:.3f}", f"{y0:.3f}", f"{x0 + rng.uniform(20, 80):.3f}", f"{y0 + rng.uniform(15, 60):.3f}"]
                    if item.split == "train" and item.fault is None:
                        lesion_rows.append(len(rows["train"]))
                    rows[item.split].append([*ids, finding, *box])
        bad = lesion_rows[-1]
        rows["train"][bad][5:] = ["", "", "", ""]
        planted.append(fault(self.name, "annotations/train.csv", "bad_row", row=bad))
        header = ["image_id", "study_id", "series_id", "rad_id", "lesion_type", "xmin", "ymin", "xmax", "ymax"]
        return {f"annotations/{s}.csv": write_csv(root / f"annotations/{s}.csv", header, rows[s]) for s in ("train", "test")}

    def radfm_path(self, item: XrayItem) -> str:
        return f"{RADFM_ROOT}VinDr-SpineXR/process/{item.split}_images/{Path(item.rel).stem}.png"


FIXTURE = VinDrSpineXRFixture()
