"""NLM tuberculosis chest X-ray sets (Montgomery County and Shenzhen): ``diagnosis_open`` and ``diagnosis_yesno``, 2D
stream, PNG.

Layout (the two NLM downloads side by side)::

    <raw>/MontgomerySet/CXR_png/MCUCXR_0001_0.png        138 images; the suffix is the label: _1 tuberculosis, _0 normal
    <raw>/MontgomerySet/ClinicalReadings/MCUCXR_0001_0.txt
    <raw>/ChinaSet_AllFiles/CXR_png/CHNCXR_0001_0.png    662 images, same convention
    <raw>/ChinaSet_AllFiles/ClinicalReadings/CHNCXR_0001_0.txt

Native mode: one record per PNG of a ``CXR_png`` folder, the label from the name's suffix (a name without ``_0``/``_1``
is a ``bad_row``; the clinical readings are not needed). There is no official split: 20 % of the images are test by a
stable hash of the file name (``hashed_split``, the same for every ``--seed``). RadFM mode: its rows of the shared
chest files, recognised by the ``MCUCXR_NNNN_L.png`` / ``CHNCXR_NNNN_L.png`` names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pipelines.records import Record, Reject
from pipelines.sources.base import BuildContext
from pipelines.sources.diagnosis import DiagnosisSource, ImageLabels, hashed_split

FOLDERS = ("MontgomerySet/CXR_png", "ChinaSet_AllFiles/CXR_png")
NAME = re.compile(r"^(?:MCUCXR|CHNCXR)_\d{4}_([01])\.png$")


class NlmTB(DiagnosisSource):
    name = "nlm_tb"
    findings = ("Tuberculosis",)
    normal = "No tuberculosis"
    radfm_path = re.compile(r"(?:^|/)(?:MCUCXR|CHNCXR)_\d{4}_[01]\.png$")

    def native_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        found = False
        for folder in FOLDERS:
            for path in sorted((ctx.raw / folder).glob("*.png")):
                found = True
                rel = str(path.relative_to(ctx.raw))
                m = NAME.match(path.name)
                if m is None:
                    yield self.reject(rel, rel, "bad_row", f"{rel}: the name does not end in _0.png (normal) or _1.png "
                                      "(tuberculosis), so its label is unknown")
                    continue
                labels = ImageLabels(path.stem, (), self.findings if m.group(1) == "1" else ())
                yield self.labels_record(ctx, labels, rel, hashed_split(self.name, path.name), folder)
        if not found:
            yield self.reject("CXR_png", "", "missing_file", f"no PNG in {' or '.join(FOLDERS)} under {ctx.raw}")


SOURCE = NlmTB()
