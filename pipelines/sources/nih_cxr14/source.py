"""NIH ChestX-ray14: ``diagnosis_open`` and ``diagnosis_yesno``, 2D stream, PNG.

Layout (the NIH box folder)::

    <raw>/images_001/images/00000001_000.png … <raw>/images_012/images/…     112,120 PNGs (also: one images/ folder)
    <raw>/Data_Entry_2017_v2020.csv  (or Data_Entry_2017.csv)                Image Index,Finding Labels,Follow-up #,
                                     Patient ID,Patient Age,Patient Gender,View Position,OriginalImage[Width,Height],
                                     OriginalImagePixelSpacing[x,y] (the 2017 file ends its lines with a comma)
    <raw>/train_val_list.txt, <raw>/test_list.txt                            the official split: one image name a line

Native mode: one record per image; ``Finding Labels`` is ``|``-separated names of the 14 findings or ``No Finding``
(``No Finding`` beside a finding is dropped; an unknown name is a ``bad_row``). Names are written with spaces
(``Pleural_Thickening`` -> ``Pleural Thickening``). The split is the official lists' (an image in neither, or in both,
is a ``no_split`` reject; a list line naming an image the table lacks is a ``bad_row``). RadFM mode: its rows of the
shared chest files, recognised by the ``00000001_000.png`` name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import polars as pl

from pipelines.records import Record, Reject
from pipelines.sources.base import BuildContext
from pipelines.sources.diagnosis import (
    NO_SPLIT,
    DiagnosisSource,
    first_existing,
    label_frame,
    listed_labels,
    row_rejects,
    text_lines,
)

TABLES = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
SPLIT_LISTS = {"train": "train_val_list.txt", "test": "test_list.txt"}
IMAGE_GLOBS = ("images_*/images/*.png", "images/*.png")
#: as published (the paper's order), and as written in answers
PUBLISHED = ("Atelectasis", "Cardiomegaly", "Effusion", "Infiltration", "Mass", "Nodule", "Pneumonia",
             "Pneumothorax", "Consolidation", "Edema", "Emphysema", "Fibrosis", "Pleural_Thickening", "Hernia")
NAMES = {p: p.replace("_", " ") for p in PUBLISHED}


class NihCXR14(DiagnosisSource):
    name = "nih_cxr14"
    findings = tuple(NAMES.values())
    normal = "No Finding"
    radfm_path = re.compile(r"(?:^|/)\d{8}_\d{3}\.png$")

    def native_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        path = first_existing(ctx.raw, TABLES)
        frame, rejects = label_frame(self.name, path, ("Image Index", "Finding Labels"), "label table")
        yield from rejects
        if frame is None:
            return
        splits, listed = {}, {}
        for split, name in SPLIT_LISTS.items():
            for line in text_lines(self.name, ctx.raw / name, "official split list"):
                if isinstance(line, Reject):
                    yield line
                    continue
                image = line[1].split()[0]
                listed.setdefault(image, []).append((name, line[0]))
                splits[image] = split if splits.get(image, split) == split else "both"
        known = set(frame["Image Index"].to_list())
        for image, where in sorted(listed.items()):
            if image not in known:
                for name, number in where:
                    yield self.reject(f"{name}:line{number}", name, "bad_row",
                                      f"{name} line {number}: {image} is not in {path.name}")
        files = {p.name: str(p.relative_to(ctx.raw)) for pattern in IMAGE_GLOBS for p in sorted(ctx.raw.glob(pattern))}
        valid = [*PUBLISHED, self.normal]
        frame = frame.with_columns(pl.col("Finding Labels").str.split("|").list.eval(pl.element().str.strip_chars())
                                   .alias("_raw"))
        unknown = pl.col("_raw").list.eval(pl.element().filter(~pl.element().is_in(valid)))
        frame = frame.with_columns(
            pl.when(pl.col("Image Index") == "").then(pl.lit("empty Image Index"))
            .when(pl.col("Finding Labels") == "").then(pl.lit("empty Finding Labels"))
            .when(unknown.list.len() > 0).then(pl.format("unknown finding label(s) {}", unknown.list.join(", ")))
            .otherwise(pl.lit("")).alias("_problem"))
        yield from row_rejects(self.name, path.name, frame, "Image Index")
        named = (frame.filter(pl.col("_problem") == "").explode("_raw")
                 .with_columns(pl.col("_raw").replace(NAMES).alias("_name")))
        views = dict(frame.select("Image Index", "View Position").iter_rows()) if "View Position" in frame.columns else {}
        for item in listed_labels(named, "Image Index", "_name", self.normal, self.findings):
            rel = files.get(item.key, f"images/{item.key}")
            split = splits.get(item.key)
            if split is None or split == "both":
                which = "neither" if split is None else "both"
                yield self.reject(rel, rel, NO_SPLIT, f"{path.name} line {item.lines[0]}: {item.key} is in {which} of "
                                  f"{' and '.join(SPLIT_LISTS.values())}")
                continue
            yield self.labels_record(ctx, item, rel, split, path.name, views.get(item.key, ""))


SOURCE = NihCXR14()
