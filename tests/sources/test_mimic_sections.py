"""MIMIC-CXR report sections (pipelines/sources/mimic/sections.py): the report shapes the official MIMIC-CXR
tooling documents, written in MIMIC's layout (a centred FINAL REPORT title, one-space indents, blank lines holding
one space)."""

from __future__ import annotations

import pytest

from pipelines.sources.mimic import parse_sections, report_answer

TITLE = "                                 FINAL REPORT\n"


def mimic_layout(text: str) -> str:
    """MIMIC's blank lines hold one space (the tests write them empty)."""
    return "\n".join(line or " " for line in text.rstrip("\n").split("\n")) + "\n"

SHAPES = {
    "standard": (TITLE + """ EXAMINATION:  CHEST (PA AND LAT)

 INDICATION:  ___ with cough, evaluate for pneumonia.

 TECHNIQUE:  Chest PA and lateral

 COMPARISON:  ___

 FINDINGS:

 The cardiac silhouette is normal in size.  There is no focal consolidation,
 pleural effusion or pneumothorax.

 IMPRESSION:

 No acute cardiopulmonary process.
""", "Findings: The cardiac silhouette is normal in size. There is no focal consolidation, pleural effusion or "
     "pneumothorax. Impression: No acute cardiopulmonary process."),

    "impression only": (TITLE + """ INDICATION:  Intubated patient.

 COMPARISON:  Radiograph from ___.

 IMPRESSION:

 Endotracheal tube terminates 4 cm above the carina.  Unchanged small left
 effusion.
""", "Impression: Endotracheal tube terminates 4 cm above the carina. Unchanged small left effusion."),

    "findings only": (TITLE + """ HISTORY:  Chest pain.

 FINDINGS:  Lungs are clear.  Heart size is normal.
""", "Findings: Lungs are clear. Heart size is normal."),

    "findings and impression": (TITLE + """ EXAMINATION:  CHEST (PORTABLE AP)

 INDICATION:  Shortness of breath.

 FINDINGS AND IMPRESSION:
 Mild pulmonary vascular congestion without frank edema.
""", "Impression: Mild pulmonary vascular congestion without frank edema."),

    "upper-case sub-headings inside findings": (TITLE + """ FINDINGS:

 LINES AND TUBES:  Right internal jugular catheter ends in the low SVC.

 LUNGS:  Bibasilar atelectasis.  No pneumothorax.

 HEART:  Normal size.

 IMPRESSION:  Line in standard position.
""", "Findings: LINES AND TUBES: Right internal jugular catheter ends in the low SVC. LUNGS: Bibasilar atelectasis. "
     "No pneumothorax. HEART: Normal size. Impression: Line in standard position."),

    "mixed and lower case": (TITLE + """ Indication: Fever.

 Findings:  Patchy right lower lobe opacity.

 impression:  Right lower lobe pneumonia.
""", "Findings: Patchy right lower lobe opacity. Impression: Right lower lobe pneumonia."),

    "final report body only": (TITLE + """ PORTABLE CHEST OF ___

 Comparison is made to the prior study.  The nasogastric tube is in the stomach.
 There is no pneumothorax.
""", "Findings: Comparison is made to the prior study. The nasogastric tube is in the stomach. There is no pneumothorax."),

    "wet read before the report": (""" WET READ: ___ ___ 4:12 PM
  No pneumothorax.
 ______________________________________________________________________________
""" + TITLE + """ FINDINGS:  No pneumothorax after chest tube removal.

 IMPRESSION:  No pneumothorax.
""", "Findings: No pneumothorax after chest tube removal. Impression: No pneumothorax."),

    "conclusion for impression, typo in findings": (TITLE + """ FINDNGS:  Hyperinflated lungs.

 CONCLUSION:  Emphysema.
""", "Findings: Hyperinflated lungs. Impression: Emphysema."),

    "study title heading before the sections": (TITLE + """ CHEST, PA AND LATERAL:

 INDICATION:  Rule out pneumonia.

 IMPRESSION:  No pneumonia.
""", "Impression: No pneumonia."),

    "study heading as the findings": (TITLE + """ INDICATION:  Trauma.

 PA AND LATERAL VIEWS OF THE CHEST:  No displaced rib fracture.  Lungs are clear.

 IMPRESSION:  No acute injury.
""", "Findings: No displaced rib fracture. Lungs are clear. Impression: No acute injury."),

    "empty findings heading": (TITLE + """ FINDINGS:

 IMPRESSION:  Stable cardiomegaly.
""", "Impression: Stable cardiomegaly."),

    "report written after the comparison": (TITLE + """ INDICATION:  Follow-up effusion.

 COMPARISON:  ___.

 The left pleural effusion has decreased.  No new consolidation.
""", "Findings: The left pleural effusion has decreased. No new consolidation."),

    "notification after the impression": (TITLE + """ FINDINGS:  Right apical pneumothorax.

 IMPRESSION:  Small right pneumothorax.

 NOTIFICATION:  Discussed with Dr. ___ at 10:15 on ___.
""", "Findings: Right apical pneumothorax. Impression: Small right pneumothorax."),

    "impression with recommendations in its heading": (TITLE + """ FINDINGS:  8 mm nodule in the right upper lobe.

 IMPRESSION/RECOMMENDATIONS:  Nodule; CT recommended.
""", "Findings: 8 mm nodule in the right upper lobe. Impression: Nodule; CT recommended."),

    "windows line endings": ((TITLE + " FINDINGS:  Clear.\n \n IMPRESSION:  Normal.\n").replace("\n", "\r\n"),
                             "Findings: Clear. Impression: Normal."),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_report_shapes(shape):
    text, expected = SHAPES[shape]
    assert report_answer(mimic_layout(text)) == expected
    assert report_answer(text) == expected  # and with empty blank lines


def test_reports_without_a_report_are_none():
    addendum = TITLE + " ADDENDUM:\n \n The study was reviewed again; no change to the interpretation.\n"
    assert report_answer(addendum) is None
    assert report_answer(TITLE) is None
    assert report_answer(" WET READ: ___ No pneumothorax.\n") is None


def test_sections_in_order():
    text, _ = SHAPES["standard"]
    assert [name for name, _ in parse_sections(mimic_layout(text))] == ["preamble", "examination", "indication", "technique",
                                                          "comparison", "findings", "impression"]
