"""CheXpert (Stanford ML group, v1.0 and its ``-small`` copy): ``diagnosis_open`` and ``diagnosis_yesno``, 2D stream,
JPEG.

Layout::

    <raw>/CheXpert-v1.0-small/train.csv, valid.csv      Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,<13 observations>
    <raw>/CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg …
                                                        (``Path`` starts with the folder name; the raw root may also
                                                        be that folder itself)

Label values are the labeler's: ``1.0`` positive, ``0.0`` negative, ``-1.0`` uncertain, blank not mentioned. Native
mode, one record per image: an observation is present when ``1.0``; an uncertain one is neither listed nor asked
about (``diagnosis_yesno`` never asks it, neither as yes nor as no: "U-Ignore"); blank counts as negative (not
mentioned in the report). An image with no positive observation is normal when ``No Finding`` is ``1.0`` and a
``no_label`` reject otherwise (only uncertain or blank mentions). ``train.csv`` is the train split and ``valid.csv``
(the publisher's radiologist-labelled held-out set) the test split. RadFM mode: its rows of the shared chest files,
recognised by ``patientNNNNN/studyN/viewN_frontal.jpg``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pipelines.records import Record, Reject
from pipelines.sources.base import BuildContext
from pipelines.sources.diagnosis import DiagnosisSource

TABLES = {"train": "train.csv", "test": "valid.csv"}
FOLDERS = ("CheXpert-v1.0-small", "CheXpert-v1.0")
FINDINGS = ("Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema", "Consolidation",
            "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
            "Support Devices")


class CheXpert(DiagnosisSource):
    name = "chexpert"
    findings = FINDINGS
    normal = "No Finding"
    radfm_path = re.compile(r"(?:^|/)patient\d+/study\d+/view\d+_(?:frontal|lateral)\.jpg$")

    def native_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        folder = next((f for f in FOLDERS if (ctx.raw / f / TABLES["train"]).exists()), None)
        base = ctx.raw / folder if folder else ctx.raw
        for split, name in TABLES.items():
            yield from self.one_hot_records(ctx, base / name, split, "Path", lambda key: self.image_rel(folder, key),
                                            uncertain=True, view_columns=("Frontal/Lateral", "AP/PA"))

    @staticmethod
    def image_rel(folder: str | None, path: str) -> str:
        """``Path`` under the raw root: as written when the raw root holds the CheXpert folder, without its first
        component when the raw root is the folder."""
        if folder is None and "/" in path:
            return path.split("/", 1)[1]
        return path


SOURCE = CheXpert()
