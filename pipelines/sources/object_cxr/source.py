"""Object-CXR (JF Healthcare's foreign-object challenge, MIDL 2020): ``diagnosis_open`` and ``diagnosis_yesno``, 2D
stream, JPEG.

Layout::

    <raw>/train.csv, <raw>/dev.csv      image_name,annotation: ``annotation`` lists the foreign objects as
                                        ``TYPE x y …`` groups separated by ``;`` (0 rectangle, 1 ellipse: two corners;
                                        2 polygon: its points); empty = no foreign object
    <raw>/train/<image_name>, <raw>/dev/<image_name>       8,000 + 1,000 JPEGs

Native mode: one record per row; a non-empty annotation is the finding ``Foreign object``, an empty one answers
``No foreign object``; an annotation that is not such groups of integers is a ``bad_row``. The labelled ``dev`` set
is the test split (the challenge's test labels were never released). RadFM mode: its rows of the shared chest files,
recognised by ``train/NNNNN.jpg`` / ``dev/NNNNN.jpg``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import polars as pl

from pipelines.records import Record, Reject
from pipelines.sources.base import BuildContext
from pipelines.sources.diagnosis import LINE, DiagnosisSource, ImageLabels, label_frame, row_rejects

SPLITS = {"train": ("train.csv", "train"), "test": ("dev.csv", "dev")}
GROUP = r"[0-2](?: \d+(?:\.\d+)?){4,}"
ANNOTATION = rf"^(?:{GROUP})(?:;{GROUP})*;?$"


class ObjectCXR(DiagnosisSource):
    name = "object_cxr"
    findings = ("Foreign object",)
    normal = "No foreign object"
    radfm_path = re.compile(r"(?:^|/)(?:train|dev)/\d{5}\.jpg$")

    def native_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        for split, (name, folder) in SPLITS.items():
            frame, rejects = label_frame(self.name, ctx.raw / name, ("image_name", "annotation"), "label table")
            yield from rejects
            if frame is None:
                continue
            frame = frame.with_columns(
                pl.when(pl.col("image_name") == "").then(pl.lit("empty image_name"))
                .when((pl.col("annotation") != "") & ~pl.col("annotation").str.contains(ANNOTATION))
                .then(pl.lit("annotation is not 'TYPE x y ...' groups separated by ';'"))
                .otherwise(pl.lit("")).alias("_problem"))
            yield from row_rejects(self.name, name, frame, "image_name")
            for line, image, annotation in frame.filter(pl.col("_problem") == "").select(
                    LINE, "image_name", "annotation").iter_rows():
                labels = ImageLabels(image, (line,), self.findings if annotation else ())
                yield self.labels_record(ctx, labels, f"{folder}/{image}", split, name)


SOURCE = ObjectCXR()
