"""The COVIDx CXR-2 demo fixture: ``train.txt`` / ``test.txt`` (``patient_id filename class source`` lines) and the
images under ``train/`` and ``test/``, named after their sources as in the release (RSNA UUIDs, RICORD and Cohen
names, one SIRM name with a space), PNG and JPEG of varied sizes, and RadFM's shared chest files.

Planted faults: an empty image file, a line with three fields.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.demo.faults import fault
from pipelines.demo.writers import write_text
from pipelines.demo.xray import RADFM_ROOT, ImageFormat, XrayFixture, XrayItem, draw_view, hex_id
from pipelines.sources.diagnosis import CHEST_FILES

SOURCES = ("rsna", "ricord", "cohen", "sirm", "actmed")


def source_name(rng: np.random.Generator, source: str, positive: bool) -> tuple[str, str]:
    """(patient_id, filename) in the style of each COVIDx source."""
    if source == "rsna":
        pid = f"{hex_id(rng, 8)}-{hex_id(rng, 4)}-{hex_id(rng, 4)}-{hex_id(rng, 4)}-{hex_id(rng, 12)}"
        return pid, f"{pid}.png"
    if source == "ricord":
        a, b = int(rng.integers(419000, 420000)), int(rng.integers(1000, 9999))
        return f"{a}-00{b}", f"MIDRC-RICORD-1C-{a}-00{b}-{int(rng.integers(10000, 99999))}-0.png"
    if source == "cohen":
        n = int(rng.integers(1, 400))
        return str(n), f"{'covid-19' if positive else 'streptococcus'}-pneumonia-{n}.jpg"
    if source == "sirm":
        n = int(rng.integers(1, 120))
        return f"COVID{n:04d}", f"COVID ({n}).png"
    n = int(rng.integers(1, 200))
    return f"COVID-{n:05d}", f"COVID-{n:05d}.jpg"


class CovidFixture(XrayFixture):
    name = "covid_cxr2"
    rng_stream = 19
    size_unit = "images"
    default_size = 16
    min_size = 8
    description = "COVIDx CXR-2 native layout (train/test txt files, image folders) + RadFM chest csvs (radfm/)"
    radfm_files = CHEST_FILES
    normal = "No COVID-19"
    label_names = ("COVID-19",)

    def plan(self, rng: np.random.Generator, size: int) -> list[XrayItem]:
        n_test = max(4, size // 4)
        items, seen = [], set()
        while len(items) < size:
            split = "train" if len(items) < size - n_test else "test"
            positive = len(items) % 2 == 0
            source = "sirm" if len(items) == 3 else SOURCES[int(rng.integers(len(SOURCES)))]
            pid, filename = source_name(rng, source, positive)
            if filename in seen:
                continue
            seen.add(filename)
            fmt = ImageFormat("jpeg", quality=92) if filename.endswith(".jpg") else ImageFormat("png")
            items.append(XrayItem(filename, f"{split}/{filename}", split, ("COVID-19",) if positive else (), "PA", fmt,
                                  draw_view(rng, "PA", int(rng.integers(400, 900))), extra={"patient": pid, "source": source}))
        train = [i for k, i in enumerate(items) if i.split == "train" and k != 3]  # (item 3: the sirm name)
        next((i for i in train if i.rel.endswith(".png")), train[-1]).fault = "empty_file"
        return items

    def write_tables(self, root: Path, items: list[XrayItem], rng: np.random.Generator, planted: list[dict]) -> dict[str, int]:
        lines: dict[str, list[str]] = {"train": [], "test": []}
        for item in items:
            cls = "positive" if item.findings else "negative"
            lines[item.split].append(f"{item.extra['patient']} {item.key} {cls} {item.extra['source']}")
        bad = int(rng.integers(len(lines["train"]) + 1))
        lines["train"].insert(bad, f"{hex_id(rng, 6)} negative rsna")
        planted.append(fault(self.name, "train.txt", "bad_row", row=bad))
        for split in lines:
            write_text(root / f"{split}.txt", "".join(line + "\n" for line in lines[split]))
        return {f"{split}.txt": len(lines[split]) for split in lines}

    def radfm_path(self, item: XrayItem) -> str:
        return f"{RADFM_ROOT}COVIDx-CXR2/{item.rel}"


FIXTURE = CovidFixture()
