"""The Object-CXR demo fixture: ``train.csv`` / ``dev.csv`` (``image_name,annotation``: ``TYPE x y …`` groups for the
foreign objects, rectangles, ellipses and polygons, empty for none) and JPEGs ``train/NNNNN.jpg``,
``dev/NNNNN.jpg`` (dev numbered after train, as released), and RadFM's shared chest files.

Planted faults: a truncated JPEG, an annotation that is not ``TYPE x y …`` groups.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.demo.faults import fault
from pipelines.demo.writers import write_csv
from pipelines.demo.xray import RADFM_ROOT, ImageFormat, XrayFixture, XrayItem, draw_view
from pipelines.sources.diagnosis import CHEST_FILES

JPEG = ImageFormat("jpeg", quality=90)


def annotation(rng: np.random.Generator, w: int, h: int) -> str:
    groups = []
    for _ in range(int(rng.integers(1, 3))):
        kind = int(rng.integers(3))
        x, y = int(rng.uniform(0.2, 0.7) * w), int(rng.uniform(0.2, 0.7) * h)
        if kind < 2:
            groups.append(f"{kind} {x} {y} {x + int(rng.integers(10, 60))} {y + int(rng.integers(10, 60))}")
        else:
            points = [(x + int(rng.integers(-30, 30)), y + int(rng.integers(-30, 30))) for _ in range(int(rng.integers(4, 8)))]
            groups.append("2 " + " ".join(f"{px} {py}" for px, py in points))
    return ";".join(groups)


class ObjectCXRFixture(XrayFixture):
    name = "object_cxr"
    rng_stream = 21
    size_unit = "images"
    default_size = 16
    min_size = 8
    description = "Object-CXR native layout (train/dev csvs of foreign-object annotations, JPEGs) + RadFM chest csvs (radfm/)"
    radfm_files = CHEST_FILES
    normal = "No foreign object"
    label_names = ("Foreign object",)

    def plan(self, rng: np.random.Generator, size: int) -> list[XrayItem]:
        n_dev = max(4, size // 4)
        train_ids = sorted(int(v) for v in rng.choice(np.arange(1, 8001), size - n_dev, replace=False))
        dev_ids = sorted(int(v) for v in rng.choice(np.arange(8001, 9001), n_dev, replace=False))
        items = []
        for k, number in enumerate(train_ids + dev_ids):
            split, folder = ("train", "train") if number <= 8000 else ("test", "dev")
            key = f"{number:05d}.jpg"
            present = k % 2 == 0
            items.append(XrayItem(key, f"{folder}/{key}", split, ("Foreign object",) if present else (), "PA", JPEG,
                                  draw_view(rng, "PA", int(rng.integers(560, 720)))))
        items[3].fault = "corrupt_file"
        return items

    def write_tables(self, root: Path, items: list[XrayItem], rng: np.random.Generator, planted: list[dict]) -> dict[str, int]:
        rows: dict[str, list[list]] = {"train": [], "test": []}
        for item in items:
            note = annotation(rng, item.params.out_w, item.params.out_h) if item.findings else ""
            rows[item.split].append([item.key, note])
        bad = next(k for k, i in enumerate(items) if i.split == "train" and i.findings and i.fault is None and k > 0)
        rows["train"][bad][1] = "rect 12 40 88 90"
        planted.append(fault(self.name, "train.csv", "bad_row", row=bad))
        return {name: write_csv(root / name, ["image_name", "annotation"], rows[split])
                for split, name in (("train", "train.csv"), ("test", "dev.csv"))}

    def radfm_path(self, item: XrayItem) -> str:
        return f"{RADFM_ROOT}object-CXR/{item.rel}"


FIXTURE = ObjectCXRFixture()
