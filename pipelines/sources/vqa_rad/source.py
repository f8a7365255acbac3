"""VQA-RAD (Lau et al. 2018): ``vqa``, 2D stream.

Layout (the OSF download)::

    <raw>/VQA_RAD Dataset Public.json      [{qid, image_name, image_organ, question, answer, answer_type,
                                             question_type, phrase_type, ...}]
    <raw>/VQA_RAD Image Folder/<image_name>  (synpicNNNNN.jpg)
    <radfm>/vqarad_{train,test}.csv          RadFM split files: img_root_dir,Figure_path,Question,Answer

Modes:
* ``radfm``: one sample per row of RadFM's files (RadFM's splits); each row takes its answer type (``CLOSED`` /
  ``OPEN``) from the publisher's JSON when it is present.
* ``native``: one sample per entry of the publisher's JSON; entries whose ``phrase_type`` starts with ``test``
  (``test_freeform``, ``test_para``: the 451 test questions) are the test split, the others train.

Every sample records its answer type (``meta.json`` ``answer_type``; the variant is ``closed`` / ``open``), which
evaluation scores as closed or open questions.
"""

from __future__ import annotations

from collections.abc import Iterator

from pipelines.records import Record, Reject, SampleSpec
from pipelines.sources import radfm_vqa
from pipelines.sources.base import BuildContext, Source, Vocabulary
from pipelines.sources.radfm_vqa import Extra, VqaFields, answer_type, text
from pipelines.sources.tables import json_items, optional_json

PUBLIC_JSON = "VQA_RAD Dataset Public.json"
IMAGE_FOLDER = "VQA_RAD Image Folder"
RADFM_FILES = {"train": "vqarad_train.csv", "test": "vqarad_test.csv"}
REQUIRED = ("image_name", "question", "answer")
LAYOUT = radfm_vqa.PublisherJson(REQUIRED, "image_name", (IMAGE_FOLDER,))


def split_of(entry: dict) -> str:
    return "test" if text(entry.get("phrase_type")).lower().startswith("test") else "train"


class VqaRad(Source):
    name = "vqa_rad"
    modes = ("radfm", "native")
    default_mode = "radfm"

    def records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        if ctx.mode == "native":
            for item in json_items(self.name, ctx.raw / PUBLIC_JSON, "VQA-RAD's question file"):
                yield item if isinstance(item, Reject) else self._entry(ctx, item.index, item.value)
            return
        extras, bad = self._extras(ctx)
        if bad is not None:
            yield bad
        for split, name in RADFM_FILES.items():
            yield from radfm_vqa.radfm_rows(self, ctx, name, split, (IMAGE_FOLDER,), extras)

    def samples(self, record: Record[VqaFields], vocab: Vocabulary, ctx: BuildContext) -> list[SampleSpec]:
        return radfm_vqa.samples(ctx, record)

    def _extras(self, ctx: BuildContext) -> tuple[dict, Reject | None]:
        """Answer types of the publisher's JSON, for RadFM's rows (none when it is absent)."""
        data, bad = optional_json(self.name, ctx.raw / PUBLIC_JSON, list)
        extras = {}
        for entry in data or []:
            if isinstance(entry, dict) and all(k in entry for k in REQUIRED):
                extras[radfm_vqa.key(text(entry["image_name"]), text(entry["question"]))] = Extra(
                    answer_type(entry.get("answer_type")))
        return extras, bad

    def _entry(self, ctx: BuildContext, index: int, entry: object) -> Record | Reject:
        split = split_of(entry) if isinstance(entry, dict) else "train"  # a malformed entry is rejected anyway
        return radfm_vqa.publisher_entry(self, ctx, LAYOUT, PUBLIC_JSON, split, index, entry)


SOURCE = VqaRad()
