"""Shared fixtures: the demo raw tree and its shards, built once per test session.

Environment for every test: offline Hugging Face, Ray without auth files, DeepSpeed on
the CPU, caches inside the repository (CI reuses ``.cache/``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(ROOT / ".cache" / "torch_extensions"))
os.environ.setdefault("RADFM_CACHE", str(ROOT / ".cache" / "radfm_data"))


def build_shards(raw: Path, out: Path, dataset: str, *extra: str) -> dict:
    """Build a dataset's shards in-process (serial executor) and return its manifest."""
    from pipelines.build import build, parser

    args = parser().parse_args(["--dataset", dataset, "--raw", str(raw / dataset), "--out", str(out),
                                "--executor", "serial", "--quiet", *extra])
    return build(args)


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory) -> Path:
    """The default demo raw tree (``pipelines.demo``) with its planted faults."""
    from pipelines.demo import build_demo

    out = tmp_path_factory.mktemp("demo") / "raw"
    info = build_demo(out, seed=0)
    (out / "planted.json").write_text(__import__("json").dumps(info["planted"]))
    return out


@pytest.fixture(scope="session")
def demo_shards(demo_raw, tmp_path_factory) -> Path:
    """Shards of both demo datasets (MIMIC in RadFM mode, Rad3D), small shards so that
    every stream/split has several: ``<out>/{mimic,rad3d}/...``."""
    out = tmp_path_factory.mktemp("shards")
    build_shards(demo_raw, out, "mimic", "--samples-per-shard-2d", "6")
    build_shards(demo_raw, out, "rad3d", "--samples-per-shard-3d", "4")
    return out
