"""The MedPix demo fixture: teaching cases as RadFM's MedPix files describe them (``images/synpicNNNNN.jpg`` and
``radfm/MedPix_{multi,single,questions}_{train,test}.csv``). Chest cases carry real OpenI reports (indication as
history, findings, impression as diagnosis); brain MRI and spine CT cases the hand-written textbook summaries of the
Rad3D fixture (``pipelines/sources/rad3d/topics.json``); single images include colour fundus photographs and
micrographs (:mod:`pipelines.demo.figures`). Differential diagnoses are bullet lists (``• ``), findings carry
measurements (which the ``findings`` answers drop).

Planted faults: a case row naming an image the folder does not hold (``missing_file``; the case keeps its other
images), a single-image row with an unknown ``type`` (``bad_row``), a truncated JPEG (``corrupt_jpeg``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from pipelines.demo.content import OPENI_REPORTS, collapse, load_openi_reports
from pipelines.demo.faults import fault, truncated
from pipelines.demo.figures import FIGURE_FILES, FigureParams, describe, draw_figure, figure_jpeg
from pipelines.demo.fixture import DemoOptions, Fixture
from pipelines.demo.synth import distinct_ints
from pipelines.demo.writers import write_bytes, write_csv
from pipelines.sources.medpix.source import IMAGE_FOLDER, MULTI_FILE, QUESTIONS_FILE, SINGLE_FILE

TOPICS: dict[str, dict] = json.loads(resources.files("pipelines.sources.rad3d").joinpath("topics.json").read_text("utf-8"))
BRAIN = ["Glioblastoma", "Meningioma", "Vestibular schwannoma", "Multiple sclerosis", "Arachnoid cyst"]
SPINE = "Vertebral haemangioma"
DX_HOW = {"mri": "MRI of the brain with and without gadolinium; histopathology where the lesion was resected.",
          "ct": "CT of the thoracic spine in bone window; MRI showed fat within the lesion.",
          "xray": "Frontal and lateral chest radiographs."}
MEASURES = ("The largest lesion measures 23 mm.", "It measures 3.5 x 2.1 cm.", "The abnormality spans 4cm craniocaudally.")


@dataclass
class Case:
    kind: str  # xray | ct | mri
    title: str
    history: str
    findings: str
    diagnosis: str
    discussion: str
    ddx: list[str]
    split: str = "train"
    images: list[tuple[str, FigureParams]] = field(default_factory=list)


def _cases(rng: np.random.Generator, n: int) -> list[Case]:
    reports = load_openi_reports(rng, n)
    cases = []
    for k in range(n):
        kind = ("mri", "xray", "ct")[k % 3]
        age, sex = int(rng.integers(20, 80)), ("woman", "man")[int(rng.integers(0, 2))]
        measure = MEASURES[k % len(MEASURES)]
        if kind == "xray":
            r = reports[k]
            cases.append(Case(kind, "Chest radiograph", f"{age} year old {sex}. {collapse(r.indication) or 'Cough.'}",
                              f"{collapse(r.findings)} {measure}", collapse(r.impression),
                              "Chest radiographs are the first imaging test for most chest complaints.",
                              ["Pneumonia", "Pulmonary oedema", "Atelectasis"]))
            continue
        title = str(rng.choice(BRAIN)) if kind == "mri" else SPINE
        t = TOPICS[title]
        others = [x for x in (*BRAIN, SPINE) if x != title]
        cases.append(Case(kind, title, f"{age} year old {sex}. {rng.choice(t['pre'])}", f"{t['finding']} {measure}",
                          title, t["article"], [title, *[str(x) for x in rng.permutation(others)[:2]]]))
    for k, case in enumerate(cases):
        case.split = "test" if k % 4 == 3 else "train"
    return cases


class MedPixFixture(Fixture):
    name = "medpix"
    rng_stream = 141
    size_unit = "cases"
    default_size = 4
    min_size = 3
    description = "MedPix (images/synpicNNNNN.jpg) + RadFM's MedPix_{multi,single,questions}_*.csv (radfm/)"
    requires = (*FIGURE_FILES, OPENI_REPORTS)
    shard_args = ("--samples-per-shard-2d", "12")

    def write(self, root: Path, rng: np.random.Generator, size: int, options: DemoOptions) -> tuple[dict, list[dict]]:
        cases = _cases(rng, size)
        ids = iter(distinct_ints(rng, 4 * size + 8, 10_000, 60_000))
        for case in cases:
            for _ in range(int(rng.integers(2, 4))):
                case.images.append((f"synpic{next(ids)}.jpg", draw_figure(rng, case.kind)))
        extra = [(f"synpic{next(ids)}.jpg", draw_figure(rng, kind)) for kind in ("fundus", "histology", "annotated")]
        multi: dict[str, list[list[str]]] = {"train": [], "test": []}
        single: dict[str, list[list[str]]] = {"train": [], "test": []}
        questions: dict[str, list[list[str]]] = {"train": [], "test": []}
        for case in cases:
            names = ",".join(n for n, _ in case.images)
            texts = {"history": case.history, "findings": case.findings, "diagnosis": case.diagnosis,
                     "ddx": "\n".join(f"• {d}" for d in case.ddx), "dxHow": DX_HOW[case.kind],
                     "discussion": case.discussion}
            for kind in ("findings", "diagnosis", "ddx", "dxHow", "discussion"):
                multi[case.split].append([names, texts[kind], kind, case.history if kind != "discussion" else ""])
            for image, params in case.images:
                _single_rows(single[case.split], image, params)
            questions[case.split].append([case.images[0][0], "What is the most likely diagnosis?", case.title,
                                          case.diagnosis if case.diagnosis != case.title else ""])
        for image, params in extra:
            _single_rows(single["train"], image, params)
        planted = []
        images = [im for case in cases for im in case.images] + extra
        corrupt = extra[-1][0]  # a single image (a corrupt case image would cost the whole case its samples)
        for name, params in images:
            data = figure_jpeg(params)
            write_bytes(root / IMAGE_FOLDER / name, truncated(data) if name == corrupt else data)
        planted.append(fault(self.name, f"{IMAGE_FOLDER}/{corrupt}", "corrupt_jpeg"))
        missing = f"synpic{next(ids)}.jpg"
        first = multi["train"][0]
        multi["train"].insert(1, [f"{first[0]},{missing}", first[1], "exam", first[3]])
        planted.append(fault(self.name, f"{IMAGE_FOLDER}/{missing}", "missing_file"))
        single["train"].insert(2, [single["train"][0][0], "Axial", "orientation"])
        planted.append(fault(self.name, "radfm/" + SINGLE_FILE.format(split="train"), "bad_row", row=2))
        rows = {}
        for pattern, header, tables in ((MULTI_FILE, ["name", "context", "type", "history"], multi),
                                        (SINGLE_FILE, ["name", "context", "type"], single),
                                        (QUESTIONS_FILE, ["name", "question", "answer", "explanation"], questions)):
            for split, table in tables.items():
                rel = "radfm/" + pattern.format(split=split)
                rows[rel] = write_csv(root / rel, header, table)
        info = {"root": str(root), "cases": size, "images": len(images),
                "colour_images": sum(p.colour for _, p in images), "rows": rows}
        return info, planted


def _single_rows(table: list[list[str]], image: str, params: FigureParams) -> None:
    desc = describe(params)
    table.append([image, desc["caption"], "caption"])
    table.append([image, desc["modality"], "modality"])
    table.append([image, desc["plane"], "plane"])


FIXTURE = MedPixFixture()
