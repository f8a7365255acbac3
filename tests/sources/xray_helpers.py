"""Helpers of the X-ray classification source tests (tests/sources/test_xray_sources.py and test_<dataset>.py)."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from pathlib import Path

from pipelines.build import plan_jobs
from pipelines.paths import PathResolver
from pipelines.sources import BuildContext, get_source

XRAY = ("vindr_cxr", "vindr_pcxr", "vindr_spinexr", "vindr_mammo", "nih_cxr14", "chexpert", "covid_cxr2", "nlm_tb",
        "object_cxr", "openi", "rsna_pneumonia", "siim_acr")


def context(raw: Path, mode: str = "native", seed: int = 0) -> BuildContext:
    return BuildContext(raw, mode, raw / "radfm", PathResolver(raw), seed)


def plan(raw: Path, dataset: str, mode: str = "native", seed: int = 0):
    """(jobs, rejects) of a dataset's raw root, planned as the build does."""
    return plan_jobs(get_source(dataset), context(raw, mode, seed), None)


def tasks(jobs, task: str) -> list:
    return [j for j in jobs if j.spec.task == task]


def reasons(rejects) -> Counter:
    return Counter(r.reason for r in rejects)


def copy_dataset(demo_raw: Path, dataset: str, tmp_path: Path) -> Path:
    """A private copy of a demo dataset to break."""
    raw = tmp_path / dataset
    shutil.copytree(demo_raw / dataset, raw)
    return raw


def read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    return rows[0], rows[1:]


def write_rows(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def raw_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """A small raw tree: text files as given (tables, lists), ``b""`` for an image that only has to exist (planning
    never decodes pixels)."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def csv_text(header: list[str], rows: list[list]) -> str:
    return "\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n"


def by_image(jobs, task: str = "diagnosis_open") -> dict[str, tuple[str, ...]]:
    """image path -> the findings of its ``task`` sample."""
    return {j.record.images[0].path: j.spec.findings for j in jobs if j.spec.task == task}


def rejected(rejects, reason: str) -> list:
    return [r for r in rejects if r.reason == reason]
