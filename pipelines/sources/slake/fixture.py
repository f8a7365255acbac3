"""The SLAKE demo fixture: the publisher's layout (``train.json``, ``validate.json``, ``test.json`` and
``imgs/xmlab<N>/source.jpg``) with English and Chinese questions, and RadFM's ``slakevqa_{train,test}.csv``.
Images are real CT, MRI and chest radiographs (:mod:`pipelines.demo.figures`).

Planted faults: a Chinese question in RadFM's train file (``not_english``: skipped, not learned), an entry whose
``answer`` is missing (``bad_row``, native mode), and the Chinese half of the publisher's entries (``not_english``,
native mode).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.demo.faults import fault
from pipelines.demo.figures import FIGURE_FILES, describe, draw_figure, figure_jpeg
from pipelines.demo.fixture import DemoOptions, Fixture
from pipelines.demo.writers import write_bytes, write_csv, write_json
from pipelines.sources.radfm_vqa import COLUMNS as RADFM_COLUMNS
from pipelines.sources.slake.source import IMAGE_FOLDER, SPLIT_FILES

RADFM_ROOT = "/gpfs/home/cs/leijiayu/data/SLAKE/imgs"
MODALITY = {"xray": "X-Ray", "ct": "CT", "mri": "MRI"}
LOCATION = {"chest": ("Chest", "Lung"), "head": ("Head", "Brain")}
#: (English question, Chinese question, answer type, content type, answer in English, answer in Chinese) by what is
#: asked; {m}: modality, {o}: organ system, {p}: plane
QUESTIONS = [
    ("What modality is used to take this image?", "这张图片的成像方式是什么?", "OPEN", "Modality", "{m}", "{m}"),
    ("Which part of the body does this image belong to?", "这张图片属于身体的哪个部位?", "OPEN", "Position", "{o}",
     "{o_zh}"),
    ("Is this a {m} image?", "这是{m}图像吗?", "CLOSED", "Modality", "Yes", "是"),
    ("In which plane is this image scanned?", "这张图片是在哪个平面扫描的?", "OPEN", "Plane", "{p}", "{p_zh}"),
]
ZH = {"Chest": "胸部", "Head": "头部", "Axial": "横断面", "Sagittal": "矢状面", "PA": "冠状面", "Coronal": "冠状面"}


class SlakeFixture(Fixture):
    name = "slake"
    rng_stream = 147
    size_unit = "images"
    default_size = 6
    min_size = 3
    description = "SLAKE (train/validate/test.json, imgs/xmlab<N>/source.jpg; English and Chinese) + RadFM's slakevqa_*.csv"
    requires = FIGURE_FILES
    shard_args = ("--samples-per-shard-2d", "8")

    def write(self, root: Path, rng: np.random.Generator, size: int, options: DemoOptions) -> tuple[dict, list[dict]]:
        kinds = ["ct", "mri", "xray"]
        splits = {name: [] for name in SPLIT_FILES}
        radfm: dict[str, list[list[str]]] = {"train": [], "test": []}
        qid = 0
        for k in range(size):
            kind = kinds[k % 3]
            params = draw_figure(rng, kind)
            folder = f"xmlab{k}"
            write_bytes(root / IMAGE_FOLDER / folder / "source.jpg", figure_jpeg(params))
            desc = describe(params)
            organ, _ = LOCATION[desc["organ"]]
            plane = "Coronal" if desc["plane"] == "PA" else desc["plane"]
            slots = {"m": MODALITY[kind], "o": organ, "o_zh": ZH[organ], "p": plane, "p_zh": ZH[plane]}
            split = ("train", "train", "validate", "test")[k % 4]
            for en, zh, atype, content, answer_en, answer_zh in QUESTIONS:
                for lang, question, answer in (("en", en, answer_en), ("zh", zh, answer_zh)):
                    qid += 1
                    splits[split].append({
                        "img_id": k, "img_name": f"{folder}/source.jpg", "question": question.format(**slots),
                        "answer": answer.format(**slots), "q_lang": lang, "location": organ,
                        "modality": MODALITY[kind], "answer_type": atype, "base_type": "vqa",
                        "content_type": content, "triple": ["vhead", "_", "_"], "qid": qid,
                    })
                    if lang == "en" and split != "validate":
                        radfm[split].append([RADFM_ROOT, f"{folder}/source.jpg", question.format(**slots),
                                             answer.format(**slots)])
        planted = []
        zh = next(e for e in splits["train"] if e["q_lang"] == "zh")
        radfm["train"].insert(2, [RADFM_ROOT, zh["img_name"], zh["question"], zh["answer"]])
        planted.append(fault(self.name, "radfm/slakevqa_train.csv", "not_english", row=2))
        broken = {k: v for k, v in splits["train"][0].items() if k != "answer"}
        splits["train"].insert(1, broken)
        planted.append(fault(self.name, "train.json", "bad_row", row=1, mode="native"))
        planted.append(fault(self.name, "train.json", "not_english", mode="native"))
        rows = {}
        for split, entries in splits.items():
            write_json(root / SPLIT_FILES[split], entries)
            rows[SPLIT_FILES[split]] = len(entries)
        for split, table in radfm.items():
            rows[f"radfm/slakevqa_{split}.csv"] = write_csv(root / f"radfm/slakevqa_{split}.csv",
                                                            RADFM_COLUMNS, table)
        info = {"root": str(root), "images": size, "questions": qid, "rows": rows, "radfm_prefix": RADFM_ROOT}
        return info, planted


FIXTURE = SlakeFixture()
