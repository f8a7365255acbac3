"""The SIIM-ACR Pneumothorax demo fixture: ``dicom-images-train/<study>/<series>/<SOPInstanceUID>.dcm`` (CR, JPEG
baseline, 8-bit, the challenge's UID scheme), ``train-rle.csv`` (header ``ImageId, EncodedPixels`` with its space;
run-length pairs per pneumothorax region, ``-1`` for none), an unlabelled ``dicom-images-test`` image, and RadFM's
shared chest files.

Planted faults: a labelled ImageId whose DICOM is not in the download, an EncodedPixels that is not run-length pairs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from pipelines.demo.faults import fault
from pipelines.demo.writers import write_bytes, write_csv
from pipelines.demo.xray import (
    RADFM_ROOT,
    ImageFormat,
    XrayFixture,
    XrayItem,
    draw_view,
    image_bytes,
    radiograph_tags,
    split_keys,
)
from pipelines.sources.diagnosis import CHEST_FILES

JPEG_DICOM = ImageFormat("dicom", "CR", "jpeg", "MONOCHROME2", 8)
ROOT_UID = "1.2.276.0.7230010.3.1."
SIZE = 512  # the challenge's images are 1024 x 1024


def siim_uid(rng: np.random.Generator, level: int, n: int, t: int) -> str:
    """The challenge's UIDs: ``1.2.276.0.7230010.3.1.<2|3|4>.8323329.<n>.<time>.<frac>``."""
    return f"{ROOT_UID}{level}.8323329.{n}.{t}.{int(rng.integers(100000, 999999))}"


def make_uid(rng: np.random.Generator) -> str:
    return siim_uid(rng, 4, int(rng.integers(1000, 13000)), int(rng.integers(1517875100, 1517875300)))


def rle(rng: np.random.Generator) -> str:
    """Relative run-length pairs (offset from the previous run's end, run length) down a few columns."""
    pairs, start = [], int(rng.integers(200_000, 700_000))
    for _ in range(int(rng.integers(3, 8))):
        pairs += [start, int(rng.integers(5, 40))]
        start = int(rng.integers(980, 1010))
    return " ".join(map(str, pairs))


class SiimFixture(XrayFixture):
    name = "siim_acr"
    rng_stream = 24
    size_unit = "images"
    default_size = 14
    min_size = 8
    description = "SIIM-ACR Pneumothorax native layout (JPEG-baseline DICOM tree, train-rle.csv) + RadFM chest csvs (radfm/)"
    radfm_files = CHEST_FILES
    normal = "No pneumothorax"
    label_names = ("Pneumothorax",)

    def plan(self, rng: np.random.Generator, size: int) -> list[XrayItem]:
        items = []
        for k, (uid, split) in enumerate(split_keys(rng, self.name, size, make_uid)):
            n, t = uid.split(".")[-3:-1]
            study, series = siim_uid(rng, 2, int(n), int(t)), siim_uid(rng, 3, int(n), int(t))
            view = "PA" if rng.random() < 0.6 else "AP"
            tags = radiograph_tags(rng, view, study=study, series=series)
            tags.update(SOPInstanceUID=uid, PatientID=f"{hex_id_like(uid)}", SeriesDescription=f"view: {view}")
            params = replace(draw_view(rng, view, SIZE), out_w=SIZE, out_h=SIZE)
            items.append(XrayItem(uid, f"dicom-images-train/{study}/{series}/{uid}.dcm", split,
                                  ("Pneumothorax",) if k % 3 == 0 else (), view, JPEG_DICOM, params, tags=tags))
        next(i for i in items[1:] if i.split == "train").fault = "missing_file"
        return items

    def write_tables(self, root: Path, items: list[XrayItem], rng: np.random.Generator, planted: list[dict]) -> dict[str, int]:
        rows = []
        for item in items:
            if item.findings:
                rows += [[item.key, rle(rng)] for _ in range(int(rng.integers(1, 3)))]
            else:
                rows.append([item.key, "-1"])
        bad = next(k for k, row in enumerate(rows) if row[1] != "-1" and k > 0)
        rows[bad][1] = rows[bad][1] + " 17"  # an odd count: not pairs
        planted.append(fault(self.name, "train-rle.csv", "bad_row", row=bad))
        test_uid = make_uid(rng)
        test = XrayItem(test_uid, "", "test", (), "PA", JPEG_DICOM, replace(draw_view(rng, "PA", SIZE), out_w=SIZE, out_h=SIZE),
                        tags={**radiograph_tags(rng, "PA"), "SOPInstanceUID": test_uid})
        write_bytes(root / "dicom-images-test" / test.tags["StudyInstanceUID"] / test.tags["SeriesInstanceUID"] / f"{test_uid}.dcm",
                    image_bytes(test))
        return {"train-rle.csv": write_csv(root / "train-rle.csv", ["ImageId", " EncodedPixels"], rows)}

    def radfm_path(self, item: XrayItem) -> str:
        return f"{RADFM_ROOT}SIIM-ACR/{Path(item.rel).with_suffix('.png')}"


def hex_id_like(uid: str) -> str:
    """SIIM's anonymised PatientID: a UUID-shaped string derived from the image UID."""
    digits = "".join(f"{int(c):x}" for c in uid.replace(".", ""))[:32].ljust(32, "0")
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:32]}"


FIXTURE = SiimFixture()
