"""The VQA-RAD demo fixture: the OSF download's layout (``VQA_RAD Dataset Public.json`` and ``VQA_RAD Image
Folder/synpicNNNNN.jpg``) and RadFM's ``vqarad_{train,test}.csv`` pointing at the images through RadFM's cluster
paths. Images are real radiographs, CT and MRI slices (:mod:`pipelines.demo.figures`); chest questions are answered
from real OpenI reports (MeSH terms, impressions).

Planted faults: an entry without ``question`` (``bad_row``, native mode), an entry and a RadFM row whose image is
not in the folder (``missing_file``), a RadFM row with an empty ``Question`` (``bad_row``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.demo.content import OPENI_REPORTS, load_openi_reports
from pipelines.demo.faults import fault
from pipelines.demo.figures import FIGURE_FILES, describe, draw_figure, figure_jpeg
from pipelines.demo.fixture import DemoOptions, Fixture
from pipelines.demo.synth import distinct_ints
from pipelines.demo.writers import write_bytes, write_csv, write_json
from pipelines.sources.radfm_vqa import COLUMNS as RADFM_COLUMNS
from pipelines.sources.vqa_rad.source import IMAGE_FOLDER, PUBLIC_JSON

RADFM_ROOT = "/gpfs/home/cs/leijiayu/data/VQA_RAD/VQA_RAD Image Folder"
ORGANS = {"chest": "CHEST", "head": "HEAD"}
MODALITY_WORD = {"xray": "X-ray", "ct": "CT", "mri": "MRI"}


def questions(kind: str, desc: dict[str, str], report) -> list[tuple[str, str, str, str]]:
    """(question, answer, answer_type, question_type) about one image, in VQA-RAD's style."""
    out = [
        ("What imaging modality was used?", MODALITY_WORD[kind], "OPEN", "MODALITY"),
        ("In what plane is this image taken?", desc["plane"].lower(), "OPEN", "PLANE"),
        (f"Is this an image of the {'head' if desc['organ'] == 'chest' else 'chest'}?", "no", "CLOSED", "ORGAN"),
    ]
    if kind == "xray" and report is not None:
        normal = any(m.lower() == "normal" for m in report.mesh)
        out.append(("Is this a normal chest x-ray?", "yes" if normal else "no", "CLOSED", "ABN"))
        out.append(("What is the main finding?", report.impression.rstrip("."), "OPEN", "PRES"))
    return out


class VqaRadFixture(Fixture):
    name = "vqa_rad"
    rng_stream = 146
    size_unit = "images"
    default_size = 6
    min_size = 3
    description = "VQA-RAD (OSF layout: public JSON + image folder) + RadFM's vqarad_*.csv (radfm/)"
    requires = (*FIGURE_FILES, OPENI_REPORTS)
    shard_args = ("--samples-per-shard-2d", "8")

    def write(self, root: Path, rng: np.random.Generator, size: int, options: DemoOptions) -> tuple[dict, list[dict]]:
        kinds = ["xray", "ct", "mri"]
        reports = load_openi_reports(rng, size)
        synpics = distinct_ints(rng, size + 1, 10_000, 60_000)
        entries: list[dict] = []
        radfm: dict[str, list[list[str]]] = {"train": [], "test": []}
        qid = 0
        for k in range(size):
            kind = kinds[k % len(kinds)]
            params = draw_figure(rng, kind)
            image = f"synpic{synpics[k]}.jpg"
            write_bytes(root / IMAGE_FOLDER / image, figure_jpeg(params))
            desc = describe(params)
            test = k % 3 == 2
            for question, answer, atype, qtype in questions(kind, desc, reports[k] if kind == "xray" else None):
                qid += 1
                phrase = ("test_" if test else "") + ("freeform" if qid % 2 else "para")
                entries.append({
                    "qid": qid, "phrase_type": phrase, "qid_linked_id": f"{image[:-4]}-{qid}",
                    "image_case_url": f"https://medpix.nlm.nih.gov/case?id={image[:-4]}",
                    "image_name": image, "image_organ": ORGANS[desc["organ"]], "evaluation": "given",
                    "question": question, "question_rephrase": "NULL", "question_relation": "NULL",
                    "question_frame": "NULL", "question_type": qtype, "answer": answer, "answer_type": atype,
                })
                radfm["test" if test else "train"].append([RADFM_ROOT, image, question, answer])
        planted = []
        # an entry without a question
        broken = dict(entries[1])
        del broken["question"]
        entries.insert(2, broken)
        planted.append(fault(self.name, PUBLIC_JSON, "bad_row", row=2, mode="native"))
        # an entry whose image the folder does not hold
        missing = f"synpic{synpics[size]}.jpg"
        entries.append({**entries[0], "qid": qid + 1, "image_name": missing, "qid_linked_id": f"{missing[:-4]}-{qid + 1}"})
        radfm["train"].append([RADFM_ROOT, missing, entries[0]["question"], entries[0]["answer"]])
        planted.append(fault(self.name, f"{IMAGE_FOLDER}/{missing}", "missing_file"))
        write_json(root / PUBLIC_JSON, entries)
        # a RadFM row with an empty question
        radfm["train"].insert(1, [RADFM_ROOT, radfm["train"][0][1], "", "yes"])
        planted.append(fault(self.name, "radfm/vqarad_train.csv", "bad_row", row=1))
        rows = {PUBLIC_JSON: len(entries)}
        for split, table in radfm.items():
            rows[f"radfm/vqarad_{split}.csv"] = write_csv(root / f"radfm/vqarad_{split}.csv",
                                                          RADFM_COLUMNS, table)
        info = {"root": str(root), "images": size, "questions": qid, "rows": rows, "radfm_prefix": RADFM_ROOT}
        return info, planted


FIXTURE = VqaRadFixture()
