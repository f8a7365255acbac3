"""The RSNA Pneumonia demo fixture: ``stage_2_train_images/<patientId>.dcm`` (CR, JPEG baseline, 8-bit MONOCHROME2 as
the challenge shipped them), ``stage_2_train_labels.csv`` (one row per opacity box, one box-less row for Target 0),
``stage_2_detailed_class_info.csv``, two unlabelled ``stage_2_test_images``, and RadFM's shared chest files (paths of
PNG copies).

Planted faults: a truncated DICOM, a Target 1 row without its box (on a patient with a second box).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from pipelines.demo.faults import fault
from pipelines.demo.writers import write_bytes, write_csv
from pipelines.demo.xray import (
    RADFM_ROOT,
    ImageFormat,
    XrayFixture,
    XrayItem,
    draw_view,
    hex_id,
    image_bytes,
    radiograph_tags,
    split_keys,
)
from pipelines.sources.diagnosis import CHEST_FILES

JPEG_DICOM = ImageFormat("dicom", "CR", "jpeg", "MONOCHROME2", 8)
SIZE = 512  # the challenge's images are 1024 x 1024


def uuid(rng: np.random.Generator) -> str:
    return f"{hex_id(rng, 8)}-{hex_id(rng, 4)}-{hex_id(rng, 4)}-{hex_id(rng, 4)}-{hex_id(rng, 12)}"


class RsnaFixture(XrayFixture):
    name = "rsna_pneumonia"
    rng_stream = 23
    size_unit = "patients"
    default_size = 16
    min_size = 8
    description = "RSNA Pneumonia stage 2 native layout (JPEG-baseline DICOM, box label rows) + RadFM chest csvs (radfm/)"
    radfm_files = CHEST_FILES
    normal = "No pneumonia"
    label_names = ("Pneumonia",)

    def plan(self, rng: np.random.Generator, size: int) -> list[XrayItem]:
        items = []
        for k, (pid, split) in enumerate(split_keys(rng, self.name, size, uuid)):
            view = "AP" if rng.random() < 0.5 else "PA"
            tags = radiograph_tags(rng, view, age=int(rng.integers(5, 90)))
            tags.update(PatientID=pid, PatientName=pid, SeriesDescription=f"view: {view}", ConversionType="WSD")
            params = replace(draw_view(rng, view, SIZE), out_w=SIZE, out_h=SIZE)
            items.append(XrayItem(pid, f"stage_2_train_images/{pid}.dcm", split, ("Pneumonia",) if k % 5 in (0, 2) else (),
                                  view, JPEG_DICOM, params, tags=tags))
        items[1].fault = "corrupt_file"
        return items

    def write_tables(self, root: Path, items: list[XrayItem], rng: np.random.Generator, planted: list[dict]) -> dict[str, int]:
        labels, classes = [], []
        two_boxes = next(i for i in items if i.findings and i.fault is None)
        for item in items:
            if not item.findings:
                labels.append([item.key, "", "", "", "", 0])
                classes.append([item.key, "Normal" if rng.random() < 0.5 else "No Lung Opacity / Not Normal"])
                continue
            for _ in range(2 if item is two_boxes else int(rng.integers(1, 3))):
                x, y = rng.uniform(150, 600), rng.uniform(150, 600)
                labels.append([item.key, f"{x:.1f}", f"{y:.1f}", f"{rng.uniform(120, 300):.1f}", f"{rng.uniform(150, 400):.1f}", 1])
                classes.append([item.key, "Lung Opacity"])
        bad = next(k for k, row in enumerate(labels) if row[0] == two_boxes.key)
        labels[bad][1:5] = ["", "", "", ""]
        planted.append(fault(self.name, "stage_2_train_labels.csv", "bad_row", row=bad))
        for _ in range(2):  # unlabelled test images
            pid = uuid(rng)
            tags = radiograph_tags(rng, "PA")
            tags.update(PatientID=pid, PatientName=pid)
            test = XrayItem(pid, "", "test", (), "PA", JPEG_DICOM, replace(draw_view(rng, "PA", SIZE), out_w=SIZE, out_h=SIZE), tags=tags)
            write_bytes(root / "stage_2_test_images" / f"{pid}.dcm", image_bytes(test))
        return {"stage_2_train_labels.csv": write_csv(root / "stage_2_train_labels.csv",
                                                      ["patientId", "x", "y", "width", "height", "Target"], labels),
                "stage_2_detailed_class_info.csv": write_csv(root / "stage_2_detailed_class_info.csv", ["patientId", "class"],
                                                             classes)}

    def radfm_path(self, item: XrayItem) -> str:
        return f"{RADFM_ROOT}RSNA-Pneumonia/stage_2_train_images/{item.key}.png"


FIXTURE = RsnaFixture()
