"""The VinDr-Mammo demo fixture: four views per study (R/L x CC/MLO) as DICOM mammograms under
``images/<study_id>/`` (JPEG 2000 and uncompressed, one MONOCHROME1), ``breast-level_annotations.csv`` (one row per
image, split ``training`` / ``test``), ``finding_annotations.csv`` (one row per finding, categories as a list literal,
``['No Finding']`` for a normal image) and RadFM's ``mammo_*`` files (paths of RadFM's PNG copies).

Planted faults: a truncated DICOM, a finding row whose categories are not a list.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.demo.faults import fault
from pipelines.demo.writers import write_csv
from pipelines.demo.xray import RADFM_ROOT, ImageFormat, XrayFixture, XrayItem, draw_view, hex_id, radiograph_tags
from pipelines.sources.diagnosis import MAMMO_FILES
from pipelines.sources.vindr_mammo.source import FINDINGS

NORMAL = "No Finding"
ACTIVE = ("Mass", "Suspicious Calcification", "Focal Asymmetry", "Architectural Distortion")
VIEWS = (("R", "CC"), ("L", "CC"), ("R", "MLO"), ("L", "MLO"))
J2K, PLAIN = ImageFormat("dicom", "MG", "j2k", "MONOCHROME2", 12), ImageFormat("dicom", "MG", "explicit", "MONOCHROME1", 12)
BREAST_COLUMNS = ["study_id", "series_id", "image_id", "laterality", "view_position", "height", "width", "breast_birads",
                  "breast_density", "split"]
FINDING_COLUMNS = [*BREAST_COLUMNS[:9], "finding_categories", "finding_birads", "xmin", "ymin", "xmax", "ymax", "split"]


class VinDrMammoFixture(XrayFixture):
    name = "vindr_mammo"
    rng_stream = 16
    size_unit = "studies"
    default_size = 4
    min_size = 3
    description = "VinDr-Mammo native layout (DICOM mammograms, breast- and finding-level tables) + RadFM mammo csvs (radfm/)"
    radfm_files = MAMMO_FILES
    normal = NORMAL
    label_names = FINDINGS

    def plan(self, rng: np.random.Generator, size: int) -> list[XrayItem]:
        items = []
        for s in range(size):
            study, split = hex_id(rng), "test" if s == size - 1 else "train"
            sick = {lat: ACTIVE[(2 * s + k) % len(ACTIVE)] for k, lat in enumerate("RL") if rng.random() < 0.6}
            if s == size - 1 and not sick:
                sick = {"L": ACTIVE[0]}  # the test study shows a finding, so the test split has both answers
            density, age, series = "ABCD"[int(rng.integers(4))], int(rng.integers(40, 75)), {}
            for lat, view in VIEWS:
                key = hex_id(rng)
                series.setdefault(lat, hex_id(rng))
                tags = radiograph_tags(rng, view, body_part="BREAST", manufacturer="SIEMENS", age=age, sex="F",
                                       study=f"1.2.840.{int(rng.integers(1, 2**31))}")
                tags.update(ImageLaterality=lat, ViewPosition=view, PatientOrientation=["P", "L"] if lat == "R" else ["A", "R"])
                findings = (sick[lat],) if lat in sick else ()
                fmt = PLAIN if (s, lat, view) == (0, "L", "MLO") else J2K
                items.append(XrayItem(key, f"images/{study}/{key}.dicom", split, findings, view, fmt,
                                      draw_view(rng, view, int(rng.integers(600, 720))), laterality=lat, tags=tags,
                                      extra={"study": study, "series": series[lat], "density": density}))
        items[1].fault = "corrupt_file"
        return items

    def write_tables(self, root: Path, items: list[XrayItem], rng: np.random.Generator, planted: list[dict]) -> dict[str, int]:
        breast_rows, finding_rows = [], []
        for item in items:
            birads = 4 if item.findings else int(rng.integers(1, 3))
            ids = [item.extra["study"], item.extra["series"], item.key, item.laterality, item.view, item.params.out_h,
                   item.params.out_w, f"BI-RADS {birads}", f"DENSITY {item.extra['density']}"]
            split = "test" if item.split == "test" else "training"
            breast_rows.append([*ids, split])
            if not item.findings:
                finding_rows.append([*ids, "['No Finding']", "", "", "", "", "", split])
            for finding in item.findings:
                x0, y0 = rng.uniform(0.2, 0.6) * item.params.out_w, rng.uniform(0.2, 0.7) * item.params.out_h
                box = [f"{v:.2f}" for v in (x0, y0, x0 + rng.uniform(30, 90), y0 + rng.uniform(30, 90))]
                finding_rows.append([*ids, f"['{finding}']", f"BI-RADS {birads}", *box, split])
        bad = next(k for k, row in enumerate(finding_rows) if row[9] != "['No Finding']" and row[2] != items[1].key)
        finding_rows.insert(bad, [*finding_rows[bad][:9], "Mass", "BI-RADS 4", "", "", "", "", finding_rows[bad][-1]])
        planted.append(fault(self.name, "finding_annotations.csv", "bad_row", row=bad))
        return {
            "breast-level_annotations.csv": write_csv(root / "breast-level_annotations.csv", BREAST_COLUMNS, breast_rows),
            "finding_annotations.csv": write_csv(root / "finding_annotations.csv", FINDING_COLUMNS, finding_rows),
        }

    def radfm_path(self, item: XrayItem) -> str:
        return f"{RADFM_ROOT}VinDr-Mammo/process/images/{item.extra['study']}/{Path(item.rel).stem}.png"


FIXTURE = VinDrMammoFixture()
