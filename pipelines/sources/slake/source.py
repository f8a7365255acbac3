"""SLAKE (Liu et al. 2021): ``vqa`` on its English questions, 2D stream.

Layout (the publisher's download)::

    <raw>/{train,validate,test}.json   [{img_id, img_name ("xmlab0/source.jpg"), question, answer, q_lang ("en" |
                                         "zh"), location, modality, answer_type ("OPEN" | "CLOSED"), ...}]
    <raw>/imgs/xmlab<N>/source.jpg     (each image folder also holds masks and detections, not read)
    <radfm>/slakevqa_{train,test}.csv  RadFM split files: img_root_dir,Figure_path,Question,Answer

Modes:
* ``radfm``: one sample per English row of RadFM's files; each row takes its answer type and language from the
  publisher's JSON when present (else a question in Chinese script is recognised as not English).
* ``native``: one sample per English entry of the publisher's three files (splits train / validate / test).

SLAKE is bilingual: every non-English row is skipped, as RadFM trained on English only, and reported
(``not_english``), so each row is still accounted for. About half the rows are Chinese, hence the source's larger
``max_reject_fraction``.
"""

from __future__ import annotations

from collections.abc import Iterator

from pipelines.records import Record, Reject, SampleSpec
from pipelines.sources import radfm_vqa
from pipelines.sources.base import BuildContext, Source, Vocabulary
from pipelines.sources.radfm_vqa import Extra, VqaFields, answer_type, text
from pipelines.sources.tables import json_items, optional_json

SPLIT_FILES = {"train": "train.json", "validate": "validate.json", "test": "test.json"}
IMAGE_FOLDER = "imgs"
RADFM_FILES = {"train": "slakevqa_train.csv", "test": "slakevqa_test.csv"}
REQUIRED = ("img_name", "question", "answer", "q_lang")
LAYOUT = radfm_vqa.PublisherJson(REQUIRED, "img_name", (IMAGE_FOLDER,), language_key="q_lang", modality_key="modality")


class Slake(Source):
    name = "slake"
    modes = ("radfm", "native")
    default_mode = "radfm"
    max_reject_fraction = 0.7  # the Chinese half of the questions is skipped (not_english)

    def records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        if ctx.mode == "native":
            for split, name in SPLIT_FILES.items():
                for item in json_items(self.name, ctx.raw / name, "SLAKE question file"):
                    yield item if isinstance(item, Reject) else radfm_vqa.publisher_entry(
                        self, ctx, LAYOUT, name, split, item.index, item.value, f"{split}:")
            return
        extras, bad = self._extras(ctx)
        yield from bad
        for split, name in RADFM_FILES.items():
            yield from radfm_vqa.radfm_rows(self, ctx, name, split, (IMAGE_FOLDER,), extras, key_parts=2)

    def samples(self, record: Record[VqaFields], vocab: Vocabulary, ctx: BuildContext) -> list[SampleSpec]:
        return radfm_vqa.samples(ctx, record)

    def _extras(self, ctx: BuildContext) -> tuple[dict, list[Reject]]:
        """Answer types, languages and modalities of the publisher's files, for RadFM's rows."""
        extras, bad = {}, []
        for name in SPLIT_FILES.values():
            data, reject = optional_json(self.name, ctx.raw / name, list)
            bad += [reject] if reject is not None else []
            for entry in data or []:
                if isinstance(entry, dict) and all(k in entry for k in REQUIRED):
                    extras[radfm_vqa.key(text(entry["img_name"]), text(entry["question"]), 2)] = Extra(
                        answer_type(entry.get("answer_type")), (), text(entry["q_lang"]).lower() or "en",
                        text(entry.get("modality")))
        return extras, bad


SOURCE = Slake()
