"""The NLM tuberculosis demo fixture: ``MontgomerySet/CXR_png/MCUCXR_NNNN_{0,1}.png`` and
``ChinaSet_AllFiles/CXR_png/CHNCXR_NNNN_{0,1}.png`` (8-bit PNGs; Montgomery portrait, Shenzhen near-square), their
``ClinicalReadings/*.txt`` in each set's own wording, and RadFM's shared chest files.

Planted faults: a truncated PNG, a PNG whose name lacks the ``_0``/``_1`` label suffix.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from pipelines.demo.faults import fault
from pipelines.demo.writers import png_bytes, write_bytes, write_text
from pipelines.demo.xray import RADFM_ROOT, ImageFormat, XrayFixture, XrayItem, draw_view, render_view, split_keys
from pipelines.sources.diagnosis import CHEST_FILES

SETS = {"MCUCXR": "MontgomerySet", "CHNCXR": "ChinaSet_AllFiles"}
LOBES = ("right upper field", "left upper field", "right middle and lower fields", "both upper fields")


def make_name(rng: np.random.Generator) -> str:
    prefix = "MCUCXR" if rng.random() < 0.4 else "CHNCXR"
    return f"{prefix}_{int(rng.integers(1, 663 if prefix == 'CHNCXR' else 139)):04d}_{int(rng.random() < 0.5)}.png"


class NlmTBFixture(XrayFixture):
    name = "nlm_tb"
    rng_stream = 20
    size_unit = "images"
    default_size = 16
    min_size = 8
    description = "NLM tuberculosis sets (Montgomery + Shenzhen: CXR_png, ClinicalReadings) + RadFM chest csvs (radfm/)"
    radfm_files = CHEST_FILES
    normal = "No tuberculosis"
    label_names = ("Tuberculosis",)

    def plan(self, rng: np.random.Generator, size: int) -> list[XrayItem]:
        items = []
        for name, split in split_keys(rng, self.name, size, make_name):
            prefix, number = name.split("_")[0], name.split("_")[1]
            if any(i.key.startswith(f"{prefix}_{number}_") for i in items):
                continue  # one image per patient number
            tb = name.endswith("_1.png")
            params = draw_view(rng, "PA", int(rng.integers(560, 700)))
            if prefix == "CHNCXR":  # Shenzhen's images are near-square
                params = replace(params, out_w=params.out_h)
            items.append(XrayItem(name, f"{SETS[prefix]}/CXR_png/{name}", split, ("Tuberculosis",) if tb else (), "PA",
                                  ImageFormat("png"), params, extra={"age": int(rng.integers(12, 80)),
                                                                     "male": bool(rng.random() < 0.6)}))
        items[1].fault = "corrupt_file"
        return items

    def write_tables(self, root: Path, items: list[XrayItem], rng: np.random.Generator, planted: list[dict]) -> dict[str, int]:
        for item in items:
            prefix, age, male = item.key.split("_")[0], item.extra["age"], item.extra["male"]
            reading = f"{'tuberculosis' if item.findings else 'normal'}"
            if prefix == "MCUCXR":
                text = f"Patient's Sex: {'M' if male else 'F'}\nPatient's Age: {age:03d}Y\n{reading}\n"
            else:
                place = LOBES[int(rng.integers(len(LOBES)))]
                text = f"{'male' if male else 'female'} {age}yrs\n{f'PTB in the {place}' if item.findings else 'normal'}\n"
            write_text(root / SETS[prefix] / "ClinicalReadings" / item.key.replace(".png", ".txt"), text)
        # a file whose name lost its label suffix
        host = next(i for i in items if i.fault is None)
        unlabelled = f"{SETS[host.key[:6]]}/CXR_png/{host.key[:11]}.png"
        write_bytes(root / unlabelled, png_bytes(render_view(draw_view(rng, "PA", 560), "PA")))
        planted.append(fault(self.name, unlabelled, "bad_row"))
        return {}

    def missing_key(self, rng: np.random.Generator, item: XrayItem) -> str:
        return f"{item.key[:7]}{int(rng.integers(700, 1000)):04d}{item.key[11:]}"  # a number past the set's, same label

    def radfm_path(self, item: XrayItem) -> str:
        return f"{RADFM_ROOT}NLM-TB/{item.rel}"


FIXTURE = NlmTBFixture()
