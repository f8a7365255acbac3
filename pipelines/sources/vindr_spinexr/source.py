"""VinDr-SpineXR (PhysioNet ``vindr-spinexr`` 1.0.0): ``diagnosis_open`` and ``diagnosis_yesno`` with the ``spinexr``
prompts, 2D stream, DICOM.

Layout::

    <raw>/train_images/<image_id>.dicom, <raw>/test_images/<image_id>.dicom     8,389 + 2,077 spine radiographs
    <raw>/annotations/{train,test}.csv       image_id,study_id,series_id,rad_id,lesion_type,xmin,ymin,xmax,ymax:
                                             one row per lesion box; an image without lesions has one
                                             ``No finding`` row with empty coordinates

Native mode: one record per image, its findings the lesion types of its rows (a lesion row needs its four box
coordinates, a ``No finding`` row has none; anything else is a ``bad_row``). RadFM mode:
``spinexr_{train_new,test}.csv`` and ``spinexr_balance_{train,test}.csv``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import polars as pl

from pipelines.records import Record, Reject
from pipelines.sources.base import BuildContext
from pipelines.sources.diagnosis import SPINEXR_FILES, DiagnosisSource, first_existing, label_frame, listed_labels, row_rejects

SPLITS = ("train", "test")
BOX = ("xmin", "ymin", "xmax", "ymax")
#: the seven lesion types, in the order of the publisher's paper (``Spondylolysthesis`` spelled as in the files)
FINDINGS = ("Osteophytes", "Disc space narrowing", "Surgical implant", "Foraminal stenosis", "Spondylolysthesis",
            "Vertebral collapse", "Other lesions")


class VinDrSpineXR(DiagnosisSource):
    name = "vindr_spinexr"
    prompt_kind = "spinexr"
    findings = FINDINGS
    normal = "No finding"
    radfm = SPINEXR_FILES
    radfm_path = re.compile(r"(?:^|/)(?:train|test)(?:_images|_pngs)?/[0-9a-f]{32}\.(?:dicom|dcm|png|jpe?g)$")
    converted_suffixes = (".dicom",)

    def native_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        for split in SPLITS:
            path = first_existing(ctx.raw, (f"annotations/{split}.csv", f"{split}.csv"))
            frame, rejects = label_frame(self.name, path, ("image_id", "lesion_type", *BOX), "annotation table")
            yield from rejects
            if frame is None:
                continue
            numeric = pl.all_horizontal([pl.col(c).str.contains(r"^-?\d+(?:\.\d+)?$") for c in BOX])
            empty = pl.all_horizontal([pl.col(c) == "" for c in BOX])
            lesion = pl.col("lesion_type") != self.normal
            problem = (pl.when(pl.col("image_id") == "").then(pl.lit("empty image_id"))
                       .when(pl.col("lesion_type") == "").then(pl.lit("empty lesion_type"))
                       .when(lesion & ~numeric).then(pl.lit("a lesion row without its four box coordinates"))
                       .when(~lesion & ~empty).then(pl.lit("a 'No finding' row with box coordinates"))
                       .otherwise(pl.lit("")))
            frame = frame.with_columns(problem.alias("_problem"))
            yield from row_rejects(self.name, path.name, frame, "image_id")
            for item in listed_labels(frame.filter(pl.col("_problem") == ""), "image_id", "lesion_type", self.normal,
                                      self.findings):
                yield self.labels_record(ctx, item, f"{split}_images/{item.key}.dicom", split, path.name)


SOURCE = VinDrSpineXR()
