"""VinDr-PCXR (PhysioNet ``vindr-pcxr`` 1.0.0, paediatric chest X-rays): ``diagnosis_open`` and ``diagnosis_yesno``,
2D stream, DICOM.

Layout::

    <raw>/train/<image_id>.dicom, <raw>/test/<image_id>.dicom        7,728 + 1,397 radiographs (DICOM)
    <raw>/image_labels_{train,test}.csv                              image_id,rad_ID,<15 label columns> (1.0 / 0.0)
    <raw>/annotations_{train,test}.csv                               boxes (not needed here)

The label names are the publisher's, spelling included (``Brocho-pneumonia``, ``Diagphramatic hernia``). Native mode:
one record per image, several rows of an image merged as for VinDr-CXR (majority; one radiologist per image in the
release); RadFM mode: ``pcxr_{train_new,test}.csv`` and ``pcxr_balance_{train,test}.csv``, with the ``cls`` prompts
as RadFM used them.
"""

from __future__ import annotations

import re

from pipelines.sources.diagnosis import PCXR_FILES, OneHotSource

FINDINGS = (
    "Bronchitis", "Brocho-pneumonia", "Other disease", "Bronchiolitis", "Situs inversus", "Pneumonia",
    "Pleuro-pneumonia", "Diagphramatic hernia", "Tuberculosis", "Congenital emphysema", "CPAM",
    "Hyaline membrane disease", "Mediastinal tumor", "Lung tumor",
)


class VinDrPCXR(OneHotSource):
    name = "vindr_pcxr"
    findings = FINDINGS
    normal = "No finding"
    label_tables = {split: (f"image_labels_{split}.csv", f"annotations/image_labels_{split}.csv") for split in ("train", "test")}
    radfm = PCXR_FILES
    radfm_path = re.compile(r"(?:^|/)(?:train|test)/[0-9a-f]{32}\.(?:dicom|dcm|png|jpe?g)$")
    converted_suffixes = (".dicom",)


SOURCE = VinDrPCXR()
