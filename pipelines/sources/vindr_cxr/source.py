"""VinDr-CXR (PhysioNet ``vindr-cxr`` 1.0.0): ``diagnosis_open`` and ``diagnosis_yesno``, 2D stream, DICOM.

Layout (what a credentialed user downloads)::

    <raw>/train/<image_id>.dicom, <raw>/test/<image_id>.dicom        15,000 + 3,000 radiographs (DICOM)
    <raw>/annotations/image_labels_train.csv                         image_id,rad_ID,<28 label columns>: one row per
                                                                     image and radiologist (3 per training image)
    <raw>/annotations/image_labels_test.csv                          image_id,<28 label columns>: the consensus of 5
    <raw>/annotations/annotations_{train,test}.csv                   boxes of the local labels (not needed here)

Native mode: one record per image; a label is present when more than half of the image's radiologists mark it
(two of three in train; the test file's single consensus row as published), ``No finding`` otherwise when a
majority says so, and an image on which no majority forms is a ``no_label`` reject
(:func:`pipelines.sources.diagnosis.vote`). RadFM mode: its rows of the shared chest files, recognised by the
32-hex image id under ``train/`` or ``test/`` (RadFM read PNG copies; the DICOM is used when the copy is absent).
"""

from __future__ import annotations

import re

from pipelines.sources.diagnosis import OneHotSource

#: the 22 local labels (findings) and 6 global labels (diagnoses) but ``No finding``, in the publisher's column order
FINDINGS = (
    "Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Clavicle fracture", "Consolidation",
    "Edema", "Emphysema", "Enlarged PA", "ILD", "Infiltration", "Lung Opacity", "Lung cavity", "Lung cyst",
    "Mediastinal shift", "Nodule/Mass", "Pleural effusion", "Pleural thickening", "Pneumothorax",
    "Pulmonary fibrosis", "Rib fracture", "Other lesion", "COPD", "Lung tumor", "Pneumonia", "Tuberculosis",
    "Other disease",
)


class VinDrCXR(OneHotSource):
    name = "vindr_cxr"
    findings = FINDINGS
    normal = "No finding"
    label_tables = {split: (f"annotations/image_labels_{split}.csv", f"image_labels_{split}.csv") for split in ("train", "test")}
    radfm_path = re.compile(r"(?:^|/)(?:train|test)/[0-9a-f]{32}\.(?:dicom|dcm|png|jpe?g)$")
    converted_suffixes = (".dicom",)


SOURCE = VinDrCXR()
