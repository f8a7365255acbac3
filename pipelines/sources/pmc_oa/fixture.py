"""The PMC-OA demo fixture: the publisher's layout (``train.jsonl``, ``valid.jsonl``, ``test.jsonl`` and
``images/PMC<id>_<figure>_<sub>.jpg``) and RadFM's ``pmcoa_image_caption_{train,test}.csv``. Sub-figures are real
radiographs, CT and MRI slices, fundus photographs and micrographs, colour ones among them
(:mod:`pipelines.demo.figures`); chest captions carry real OpenI report sentences.

Planted faults: a line of ``train.jsonl`` that is not JSON (``bad_row``, native mode), a RadFM row with an empty
``Caption`` (``bad_row``), a sub-figure missing from ``images/`` (``missing_file``, both modes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.demo.content import OPENI_REPORTS, collapse, load_openi_reports
from pipelines.demo.faults import fault
from pipelines.demo.figures import FIGURE_FILES, KINDS, describe, draw_figure, figure_jpeg
from pipelines.demo.fixture import DemoOptions, Fixture
from pipelines.demo.synth import distinct_ints
from pipelines.demo.writers import write_bytes, write_csv, write_jsonl
from pipelines.sources.pmc_oa.source import IMAGE_FOLDER, NATIVE_FILES, RADFM_FILES


class PmcOaFixture(Fixture):
    name = "pmc_oa"
    rng_stream = 144
    size_unit = "figures"
    default_size = 8
    min_size = 4
    description = "PMC-OA (train/valid/test.jsonl, images/) + RadFM's pmcoa_image_caption_*.csv (radfm/)"
    requires = (*FIGURE_FILES, OPENI_REPORTS)
    shard_args = ("--samples-per-shard-2d", "8")

    def write(self, root: Path, rng: np.random.Generator, size: int, options: DemoOptions) -> tuple[dict, list[dict]]:
        pmcids = distinct_ints(rng, size + 1, 100_000, 9_999_999)
        reports = load_openi_reports(rng, size)
        native: dict[str, list[dict]] = {s: [] for s in NATIVE_FILES}
        radfm: dict[str, list[list[str]]] = {s: [] for s in RADFM_FILES}
        colour = 0
        for k in range(size):
            kind = KINDS[k % len(KINDS)]
            params = draw_figure(rng, kind)
            colour += params.colour
            fig, sub = int(rng.integers(1, 7)), int(rng.integers(1, 5))
            image = f"PMC{pmcids[k]}_Fig{fig}_{sub}.jpg"
            write_bytes(root / IMAGE_FOLDER / image, figure_jpeg(params))
            caption = f"{'ABCD'[sub - 1]}. {describe(params)['caption']}"
            if kind == "xray" or params.base == "xray":
                caption += " " + collapse(reports[k].impression)
            split = ("train", "train", "train", "valid", "test")[k % 5]
            split = "validate" if split == "valid" else split
            native[split].append({"image": image, "caption": caption, "pmcid": f"PMC{pmcids[k]}",
                                  "url_name": f"{pmcids[k] % 9000 + 1000}-{fig}.jpg"})
            if split in radfm:
                radfm[split].append([image, caption])
        planted = []
        missing = f"PMC{pmcids[size]}_Fig1_1.jpg"
        native["train"].append({"image": missing, "caption": "B. Axial CT image of the chest.", "pmcid": f"PMC{pmcids[size]}",
                                "url_name": "missing-1.jpg"})
        radfm["train"].append([missing, "B. Axial CT image of the chest."])
        planted.append(fault(self.name, f"{IMAGE_FOLDER}/{missing}", "missing_file"))
        radfm["train"].insert(1, [radfm["train"][0][0], ""])
        planted.append(fault(self.name, f"radfm/{RADFM_FILES['train']}", "bad_row", row=1))
        rows = {}
        for split, lines in native.items():
            extra = ['{"image": "PMC1_Fig1_1.jpg", "caption": "A cut-off line'] if split == "train" else []
            rows[NATIVE_FILES[split]] = write_jsonl(root / NATIVE_FILES[split], lines, extra)
        planted.append(fault(self.name, NATIVE_FILES["train"], "bad_row", row=len(native["train"]), mode="native"))
        for split, table in radfm.items():
            rows[f"radfm/{RADFM_FILES[split]}"] = write_csv(root / "radfm" / RADFM_FILES[split], ["Figure_path", "Caption"], table)
        info = {"root": str(root), "figures": size, "colour_figures": colour, "rows": rows}
        return info, planted


FIXTURE = PmcOaFixture()
