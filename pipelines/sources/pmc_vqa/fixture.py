"""The PMC-VQA demo fixture: the publisher's layout (``train.csv``, ``test.csv`` with four lettered choices, and
``images/PMC<id>_<figure>.jpg``) and RadFM's ``pmcvqa_{train,test}.csv``. Figures are real radiographs, CT and MRI
slices, fundus photographs and micrographs, colour ones among them (:mod:`pipelines.demo.figures`); the questions
ask what a figure shows, with the true description among distractors.

Planted faults: a row with an empty ``Question`` (``bad_row``, in both the publisher's and RadFM's train file), a
figure missing from ``images/`` (``missing_file``), a truncated JPEG (``corrupt_jpeg``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.demo.faults import fault, truncated
from pipelines.demo.figures import FIGURE_FILES, KINDS, describe, draw_figure, figure_jpeg
from pipelines.demo.fixture import DemoOptions, Fixture
from pipelines.demo.synth import distinct_ints
from pipelines.demo.writers import write_bytes, write_csv
from pipelines.sources.pmc_vqa.source import CHOICE_COLUMNS, IMAGE_FOLDER, LETTERS, NATIVE_FILES
from pipelines.sources.radfm_vqa import COLUMNS as RADFM_COLUMNS

RADFM_ROOT = "/gpfs/home/cs/leijiayu/data/PMC-VQA/images"
MODALITY_ANSWER = {"xray": "Chest X-ray", "ct": "Computed tomography", "mri": "Magnetic resonance imaging",
                   "fundus": "Fundus photography", "histology": "Immunohistochemistry", "overlay": "Parametric MRI map"}
ORGAN_ANSWER = {"chest": "The chest", "head": "The head", "eye": "The retina", "tissue": "A tissue section"}


def _mcq(rng: np.random.Generator, question: str, truth: str, pool: list[str]) -> tuple[str, list[str], str]:
    distractors = [str(x) for x in rng.permutation([p for p in pool if p != truth])[:3]]
    options = distractors + [truth]
    order = [int(i) for i in rng.permutation(4)]
    options = [options[i] for i in order]
    return question, options, LETTERS[options.index(truth)]


class PmcVqaFixture(Fixture):
    name = "pmc_vqa"
    rng_stream = 145
    size_unit = "figures"
    default_size = 7
    min_size = 4
    description = "PMC-VQA (train.csv/test.csv with choices, images/) + RadFM's pmcvqa_*.csv (radfm/)"
    requires = FIGURE_FILES
    shard_args = ("--samples-per-shard-2d", "8")

    def write(self, root: Path, rng: np.random.Generator, size: int, options: DemoOptions) -> tuple[dict, list[dict]]:
        pmcids = distinct_ints(rng, size + 1, 1_000_000, 9_999_999)
        native: dict[str, list[list[str]]] = {"train": [], "test": []}
        radfm: dict[str, list[list[str]]] = {"train": [], "test": []}
        figures = []
        for k in range(size):
            kind = KINDS[k % len(KINDS)]
            params = draw_figure(rng, kind)
            name = f"PMC{pmcids[k]}_F{int(rng.integers(1, 6))}.jpg"
            figures.append((name, params))
            desc = describe(params)
            split = "test" if k % 4 == 3 else "train"
            asked = [
                _mcq(rng, "What imaging technique was used for this figure?",
                     MODALITY_ANSWER.get(kind, MODALITY_ANSWER.get(params.base, "")), list(MODALITY_ANSWER.values())),
                _mcq(rng, "Which part of the body is shown?", ORGAN_ANSWER[desc["organ"]], list(ORGAN_ANSWER.values())),
            ]
            for question, choices, label in asked:
                answer = choices[LETTERS.index(label)]
                native[split].append([name, question, answer, *[f" {ltr}:{c}" for ltr, c in zip(LETTERS, choices)], label])
                radfm[split].append([RADFM_ROOT, name, question, answer])
        planted = []
        corrupt = figures[1][0]
        for name, params in figures:
            data = figure_jpeg(params)
            write_bytes(root / IMAGE_FOLDER / name, truncated(data) if name == corrupt else data)
        planted.append(fault(self.name, f"{IMAGE_FOLDER}/{corrupt}", "corrupt_jpeg"))
        missing = f"PMC{pmcids[size]}_F1.jpg"
        row = [missing, "What imaging technique was used for this figure?", "Chest X-ray",
               " A:Chest X-ray", " B:Fundus photography", " C:Immunohistochemistry", " D:Computed tomography", "A"]
        native["train"].append(row)
        radfm["train"].append([RADFM_ROOT, *row[:3]])
        planted.append(fault(self.name, f"{IMAGE_FOLDER}/{missing}", "missing_file"))
        empty = list(native["train"][0])
        empty[1] = ""
        native["train"].insert(1, empty)
        radfm["train"].insert(1, [RADFM_ROOT, empty[0], "", empty[2]])
        planted.append(fault(self.name, "radfm/pmcvqa_train.csv", "bad_row", row=1))
        planted.append(fault(self.name, "train.csv", "bad_row", row=1, mode="native"))
        rows = {}
        header = ["Figure_path", "Question", "Answer", *CHOICE_COLUMNS, "Answer_label"]
        for split, table in native.items():
            rows[NATIVE_FILES[split]] = write_csv(root / NATIVE_FILES[split], header, table)
        for split, table in radfm.items():
            rows[f"radfm/pmcvqa_{split}.csv"] = write_csv(root / f"radfm/pmcvqa_{split}.csv",
                                                          RADFM_COLUMNS, table)
        info = {"root": str(root), "figures": size, "colour_figures": sum(p.colour for _, p in figures),
                "rows": rows, "radfm_prefix": RADFM_ROOT}
        return info, planted


FIXTURE = PmcVqaFixture()
