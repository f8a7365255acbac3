"""COVIDx CXR-2 (the COVID-Net open initiative): ``diagnosis_open`` and ``diagnosis_yesno``, 2D stream, PNG/JPEG.

Layout::

    <raw>/train.txt, <raw>/test.txt       one image a line: ``patient_id filename class source``, space-separated,
                                          class ``positive`` / ``negative`` (SARS-CoV-2 positive or not)
    <raw>/train/<filename>, <raw>/test/<filename>

Native mode: one record per line; ``positive`` is the finding ``COVID-19``, ``negative`` answers ``No COVID-19`` (the
negative class holds normal and non-COVID pneumonia images, so it is not called normal). The file name is everything
between the patient id and the last two fields (a name with a space still parses); a line with fewer than four
fields or another class is a ``bad_row``. The official split is the files'. RadFM mode: its rows of the shared chest
files whose path has a ``covid…`` folder above ``train/`` or ``test/`` (COVIDx names its images after their many
sources, so the folder is what recognises them; use ``--path-map`` when yours is named otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pipelines.records import Record, Reject
from pipelines.sources.base import BuildContext
from pipelines.sources.diagnosis import DiagnosisSource, ImageLabels, text_lines

SPLITS = {"train": "train.txt", "test": "test.txt"}
CLASSES = {"positive": ("COVID-19",), "negative": ()}


class CovidCXR2(DiagnosisSource):
    name = "covid_cxr2"
    findings = ("COVID-19",)
    normal = "No COVID-19"
    radfm_path = re.compile(r"(?i)covid[^/]*/(?:[^/]+/)*(?:train|test)/[^/]+\.(?:png|jpe?g)$")

    def native_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        for split, name in SPLITS.items():
            for line in text_lines(self.name, ctx.raw / name, "split file"):
                if isinstance(line, Reject):
                    yield line
                    continue
                number, text = line
                fields = text.split()
                cls = fields[-2].lower() if len(fields) >= 4 else ""
                if cls not in CLASSES:
                    problem = f"{len(fields)} fields, expected 'patient_id filename class source'" if len(fields) < 4 \
                        else f"class {fields[-2]!r} is neither positive nor negative"
                    yield self.reject(f"{name}:line{number}", name, "bad_row", f"{name} line {number}: {problem}")
                    continue
                filename = " ".join(fields[1:-2])
                labels = ImageLabels(filename, (number,), CLASSES[cls])
                yield self.labels_record(ctx, labels, f"{split}/{filename}", split, name)


SOURCE = CovidCXR2()
