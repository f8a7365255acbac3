"""The CheXpert demo fixture (the ``-small`` copy): ``CheXpert-v1.0-small/{train,valid}.csv`` with the labeler's
``1.0`` / ``0.0`` / ``-1.0`` / blank values (valid: radiologists' ``1.0`` / ``0.0``) and JPEGs under
``CheXpert-v1.0-small/{train,valid}/patientNNNNN/studyN/viewN_{frontal,lateral}.jpg``, about 320 px on the short side
as in the small copy, and RadFM's shared chest files.

Planted faults: a train row whose JPEG is not in the download, a row with a value the labeler never writes. One train
row has only uncertain observations (``info["only_uncertain"]``: a ``no_label`` reject).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from pipelines.demo.faults import fault
from pipelines.demo.writers import write_csv
from pipelines.demo.xray import RADFM_ROOT, ImageFormat, XrayFixture, XrayItem, draw_view, split_findings
from pipelines.sources.chexpert.source import FINDINGS
from pipelines.sources.diagnosis import CHEST_FILES

FOLDER = "CheXpert-v1.0-small"
NORMAL = "No Finding"
HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", NORMAL, *FINDINGS]
ACTIVE = ("Cardiomegaly", "Lung Opacity", "Edema", "Atelectasis", "Pleural Effusion", "Support Devices")
JPEG = ImageFormat("jpeg", quality=95)


class CheXpertFixture(XrayFixture):
    name = "chexpert"
    rng_stream = 18
    size_unit = "images"
    default_size = 16
    min_size = 8
    description = "CheXpert-v1.0-small native layout (train/valid csvs, JPEG study folders) + RadFM chest csvs (radfm/)"
    radfm_files = CHEST_FILES
    normal = NORMAL
    label_names = FINDINGS

    def plan(self, rng: np.random.Generator, size: int) -> list[XrayItem]:
        items, patient = [], int(rng.integers(1, 60000))
        valid_patient = 64540 + int(rng.integers(1, 200))
        for split, findings in split_findings(rng, size, ACTIVE, ACTIVE[:3]):
            if split == "train":
                patient += int(rng.integers(1, 40))
                folder, number = "train", patient
            else:
                valid_patient += 1
                folder, number = "valid", valid_patient
            lateral = split == "train" and rng.random() < 0.25
            view = "LATERAL" if lateral else ("AP" if rng.random() < 0.6 else "PA")
            rel = f"{FOLDER}/{folder}/patient{number:05d}/study{int(rng.integers(1, 4))}/view{2 if lateral else 1}_" \
                  f"{'lateral' if lateral else 'frontal'}.jpg"
            params = draw_view(rng, view, 390)
            short = 320 / min(params.out_w, params.out_h)  # the small copy: 320 px on the short side
            params = replace(params, out_w=round(params.out_w * short), out_h=round(params.out_h * short))
            items.append(XrayItem(rel, rel, split, findings, view, JPEG, params,
                                  extra={"sex": "Female" if rng.random() < 0.5 else "Male", "age": int(rng.integers(18, 91))}))
        items[1].fault = "missing_file"
        return items

    def write_tables(self, root: Path, items: list[XrayItem], rng: np.random.Generator, planted: list[dict]) -> dict[str, int]:
        rows: dict[str, list[list]] = {"train": [], "test": []}
        uncertain_only = next(k for k, i in enumerate(items) if k > 2 and i.split == "train" and i.fault is None)
        for k, item in enumerate(items):
            values = {}
            for finding in FINDINGS:
                if finding in item.findings:
                    values[finding] = "1.0"
                elif item.split == "test":
                    values[finding] = "0.0"
                else:  # the labeler: most observations unmentioned, some negative, some uncertain
                    values[finding] = str(rng.choice(["", "", "", "0.0", "-1.0"]))
            no_finding = "1.0" if not item.findings else ("0.0" if item.split == "test" else "")
            if k == uncertain_only:
                values = {f: ("-1.0" if f in ACTIVE[:2] else "") for f in FINDINGS}
                no_finding = ""
                item.findings = ()
            lateral = item.view == "LATERAL"
            rows[item.split].append([item.rel, item.extra["sex"], item.extra["age"], "Lateral" if lateral else "Frontal",
                                     "" if lateral else item.view, no_finding, *(values[f] for f in FINDINGS)])
        self.only_uncertain = items[uncertain_only].rel
        bad = next(k for k, i in enumerate(items) if i.split == "train" and k not in (1, uncertain_only) and i.fault is None)
        rows["train"][bad][HEADER.index("Edema")] = "2.0"
        planted.append(fault(self.name, f"{FOLDER}/train.csv", "bad_row", row=bad))
        return {f"{FOLDER}/{name}": write_csv(root / FOLDER / name, HEADER, rows[split])
                for split, name in (("train", "train.csv"), ("test", "valid.csv"))}

    def write(self, root, rng, size, options):
        info, planted = super().write(root, rng, size, options)
        info["only_uncertain"] = self.only_uncertain
        return info, planted

    def radfm_path(self, item: XrayItem) -> str:
        return f"{RADFM_ROOT}{item.rel}"


FIXTURE = CheXpertFixture()
