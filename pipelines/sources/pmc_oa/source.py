"""PMC-OA (Lin et al. 2023): ``caption``, 2D stream: sub-figures of PubMed Central papers with their captions.

Layout (the publisher's download)::

    <raw>/{train,valid,test}.jsonl     one object per line: {"image": "PMC212319_Fig3_4.jpg", "caption": "...",
                                        "pmcid": "PMC212319", "url_name": "1471-2121-4-13-3.jpg"}
    <raw>/images/<image>               (images.zip)
    <radfm>/pmcoa_image_caption_{train,test}.csv   RadFM split files: Figure_path,Caption

Modes:
* ``radfm``: one sample per row of RadFM's files (``Figure_path`` relative to the image folder, as RadFM joined
  it with its image root).
* ``native``: one sample per line of the publisher's files (``valid`` is the validate split). A line that is not
  JSON is a ``bad_row``; the other lines of its file are read.

The task is RadFM's (``PMCOA_Dataset``): a caption prompt, the figure at the start or the end of the question,
the caption as the answer. Figures are often in colour (micrographs, photographs, annotated scans).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pipelines.records import Record, RecordFields, Reject, SampleSpec
from pipelines.sources.base import BuildContext, Source, Vocabulary
from pipelines.sources.images import resolve_image
from pipelines.sources.radfm_vqa import text
from pipelines.sources.tables import Item, Row, jsonl_items, table_rows
from pipelines.tasks import CaptionInputs

NATIVE_FILES = {"train": "train.jsonl", "validate": "valid.jsonl", "test": "test.jsonl"}
RADFM_FILES = {"train": "pmcoa_image_caption_train.csv", "test": "pmcoa_image_caption_test.csv"}
IMAGE_FOLDER = "images"


@dataclass(frozen=True)
class CaptionFields(RecordFields):
    caption: str
    pmcid: str = ""


class PmcOa(Source):
    name = "pmc_oa"
    modes = ("radfm", "native")
    default_mode = "radfm"

    def records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        if ctx.mode == "native":
            for split, name in NATIVE_FILES.items():
                for item in jsonl_items(self.name, ctx.raw / name, "PMC-OA caption file"):
                    yield item if isinstance(item, Reject) else self._line(ctx, name, split, item)
            return
        for split, name in RADFM_FILES.items():
            for row in table_rows(self.name, ctx.radfm_dir / name, ("Figure_path", "Caption"), "RadFM split file",
                                  multiline=True):
                yield row if isinstance(row, Reject) else self._row(ctx, name, split, row)

    def samples(self, record: Record[CaptionFields], vocab: Vocabulary, ctx: BuildContext) -> list[SampleSpec]:
        return [ctx.sample(record, CaptionInputs(record.fields.caption))]

    def _record(self, ctx: BuildContext, where: str, split: str, path: str, fields: CaptionFields) -> Record | Reject:
        image = resolve_image(ctx, self.name, path, where, folders=(IMAGE_FOLDER,))
        if isinstance(image, Reject):
            return image
        return Record(dataset=self.name, source_id=image.path, split=split, stream="2d", images=(image,), fields=fields)

    def _row(self, ctx: BuildContext, name: str, split: str, row: Row) -> Record | Reject:
        where = f"{name}:line{row.line}"
        caption = text(row.values["Caption"])
        if not caption:
            return self.reject(where, name, "bad_row", f"{where}: empty Caption")
        return self._record(ctx, where, split, row.values["Figure_path"], CaptionFields(caption))

    def _line(self, ctx: BuildContext, name: str, split: str, item: Item) -> Record | Reject:
        where = f"{name}:line{item.index}"
        entry = item.value
        if not isinstance(entry, dict) or not isinstance(entry.get("image"), str) or "caption" not in entry:
            return self.reject(where, name, "bad_row", f"{where}: expected an object with \"image\" and \"caption\"")
        caption = text(entry["caption"])
        if not caption:
            return self.reject(where, name, "bad_row", f"{where}: empty caption")
        return self._record(ctx, where, split, entry["image"], CaptionFields(caption, text(entry.get("pmcid"))))


SOURCE = PmcOa()
