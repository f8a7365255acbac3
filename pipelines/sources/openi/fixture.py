"""The OpenI demo fixture (the Kaggle ``chest-xrays-indiana-university`` layout): ``indiana_reports.csv`` with real
OpenI reports (torchxrayvision's NLMCXR XMLs: findings, impression, indication, comparison with their ``XXXX``
marks, MeSH and the Problems derived from it), ``indiana_projections.csv``, frontal and lateral PNGs in
``images/images_normalized/``, and RadFM's shared chest files (one row per image).

Planted faults: a projection row whose PNG is not in the download, a projection row with a projection value that is
neither Frontal nor Lateral.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.demo.content import CHEST_CR, OPENI_REPORTS, OpenIReport, load_openi_reports
from pipelines.demo.faults import fault
from pipelines.demo.writers import write_csv
from pipelines.demo.xray import RADFM_ROOT, ImageFormat, XrayFixture, XrayItem, draw_view, split_keys
from pipelines.sources.diagnosis import CHEST_FILES
from pipelines.sources.openi.source import problem_names

IMAGES = "images/images_normalized"
REPORT_COLUMNS = ["uid", "MeSH", "Problems", "image", "indication", "comparison", "findings", "impression"]


def problems(report: OpenIReport) -> tuple[str, ...]:
    """The Problems the Kaggle table derives from the MeSH major terms: each term's first part, in order, once."""
    return tuple(dict.fromkeys(m.split("/")[0].strip() for m in report.mesh if m.strip())) or ("normal",)


class OpenIFixture(XrayFixture):
    name = "openi"
    rng_stream = 22
    size_unit = "studies"
    default_size = 10
    min_size = 6
    description = "OpenI (Indiana) native layout (reports and projections csvs, PNGs) with real reports + RadFM chest csvs (radfm/)"
    requires = (CHEST_CR, OPENI_REPORTS)
    radfm_files = CHEST_FILES
    normal = "normal"

    def plan(self, rng: np.random.Generator, size: int) -> list[XrayItem]:
        reports = load_openi_reports(rng, size)
        uids = split_keys(rng, self.name, size, lambda r: str(int(r.integers(1, 4000))))
        items = []
        self.reports = {}
        for (uid, split), report in zip(uids, reports):
            self.reports[uid] = report
            names = tuple(p for p in problem_names(";".join(problems(report))) if p != "normal")
            series = int(rng.integers(1, 4000))
            views = ("PA", "LATERAL") if rng.random() < 0.85 else ("PA",)
            for k, view in enumerate(views):
                key = f"{uid}_IM-{series:04d}-{(4 if view == 'PA' else 3) * 1000 + 1 + k}.dcm.png"
                items.append(XrayItem(key, f"{IMAGES}/{key}", split, names, view, ImageFormat("png"),
                                      draw_view(rng, view, 512), extra={"uid": uid}))
        self.label_names = tuple(sorted({n for i in items for n in i.findings}))
        next(i for i in items[2:] if i.view == "LATERAL").fault = "missing_file"
        return items

    def write_tables(self, root: Path, items: list[XrayItem], rng: np.random.Generator, planted: list[dict]) -> dict[str, int]:
        report_rows, projection_rows = [], []
        for uid, report in self.reports.items():
            n_views = sum(i.extra["uid"] == uid for i in items)
            mesh = ";".join(report.mesh) or "normal"
            report_rows.append([uid, mesh, ";".join(problems(report)), f"Xray Chest PA{' and Lateral' if n_views > 1 else ''}",
                                report.indication, report.comparison, report.findings, report.impression])
        for item in items:
            projection_rows.append([item.extra["uid"], item.key, "Lateral" if item.view == "LATERAL" else "Frontal"])
        host = next(i for i in items if i.fault is None and i.view == "PA")
        bad = int(rng.integers(len(projection_rows) + 1))
        projection_rows.insert(bad, [host.extra["uid"], host.key.replace(".dcm.png", "-1.dcm.png"), "Oblique"])
        planted.append(fault(self.name, "indiana_projections.csv", "bad_row", row=bad))
        return {"indiana_reports.csv": write_csv(root / "indiana_reports.csv", REPORT_COLUMNS, report_rows),
                "indiana_projections.csv": write_csv(root / "indiana_projections.csv", ["uid", "filename", "projection"],
                                                     projection_rows)}

    def radfm_path(self, item: XrayItem) -> str:
        return f"{RADFM_ROOT}OpenI/{item.rel}"


FIXTURE = OpenIFixture()
