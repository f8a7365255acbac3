"""Shared fixtures: the demo raw tree and its shards, built once per test session; real images for the imaging
tests.

The tests mirror the package tree (``tests/pipelines/`` for the modules ``pipelines/*.py``, ``tests/sources/`` for
``pipelines/sources/``, ``tests/imaging/`` for ``pipelines/imaging/`` …); test file names are unique across folders
(pytest imports them by name), and no folder is called ``build`` (pytest does not recurse into one).

Environment for every test: offline Hugging Face, Ray without auth files, DeepSpeed on
the CPU, caches inside the repository (CI reuses ``.cache/``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(ROOT / ".cache" / "torch_extensions"))
os.environ.setdefault("RADFM_CACHE", str(ROOT / ".cache" / "radfm_data"))


def build_shards(raw: Path, out: Path, dataset: str, *, mode: str | None = None, splits: tuple[str, ...] | None = None,
                 seed: int = 0, samples_per_shard_2d: int | None = None, samples_per_shard_3d: int | None = None,
                 size_2d: int | None = None, size_3d: int | None = None, **request: object) -> dict:
    """Build a dataset's shards in-process (serial executor, no progress bar) and return its manifest. ``request``:
    further :class:`pipelines.build.BuildRequest` fields (``channels``, ``max_reject_fraction`` …)."""
    from pipelines.build import BuildRequest, build
    from pipelines.config import BuildConfig, ImageConfig, ShardConfig

    shard = ShardConfig()
    shard = ShardConfig(samples_per_shard_2d=samples_per_shard_2d or shard.samples_per_shard_2d,
                        samples_per_shard_3d=samples_per_shard_3d or shard.samples_per_shard_3d)
    image = ImageConfig(size_2d=size_2d or ImageConfig.size_2d, size_3d=size_3d or ImageConfig.size_3d)
    config = BuildConfig(image=image, shard=shard, seed=seed)
    return build(BuildRequest(dataset=dataset, raw=raw / dataset, out=out, mode=mode, splits=splits, config=config,
                              executor="serial", progress=False, **request))


def shard_tars(folder: Path, n: int | None = None) -> list[Path]:
    """The first ``n`` (default all) shard tars of a ``<stream>/<split>`` folder in name order. Shard numbers are nodes
    of the key trie (SPEC §2), not 0..N-1, so tests never spell them out."""
    tars = sorted(Path(folder).glob("*.tar"))
    assert tars and (n is None or len(tars) >= n), f"{folder}: {len(tars)} shards"
    return tars[:n]


def brace(tars: list[Path]) -> str:
    """A webdataset brace pattern for shards of one folder: ``<dir>/<dataset>-<split>-<stream>-{000003,000011}.tar``."""
    prefix = tars[0].name.rsplit("-", 1)[0]
    numbers = [t.name.rsplit("-", 1)[1][: -len(".tar")] for t in tars]
    assert all(t.parent == tars[0].parent and t.name.startswith(prefix + "-") for t in tars)
    return str(tars[0]) if len(tars) == 1 else str(tars[0].parent / f"{prefix}-{{{','.join(numbers)}}}.tar")


@pytest.fixture(scope="session")
def demo_tree(tmp_path_factory) -> tuple[Path, dict]:
    """The default demo raw tree (every registered source's fixture, seed 0) and what ``build_demo`` returned."""
    from pipelines.demo import build_demo

    out = tmp_path_factory.mktemp("demo") / "raw"
    info = build_demo(out, seed=0)
    (out / "planted.json").write_text(json.dumps(info["planted"]))
    return out, info


@pytest.fixture(scope="session")
def demo_raw(demo_tree) -> Path:
    """The default demo raw tree, with its planted faults in ``planted.json``."""
    return demo_tree[0]


@pytest.fixture(scope="session")
def demo_shards(demo_raw, tmp_path_factory) -> Path:
    """Shards of every registered demo dataset in its default mode (MIMIC: RadFM's files), small shards so that
    every stream/split has several: ``<out>/{mimic,rad3d,...}/...``."""
    from pipelines.sources import REGISTRY

    out = tmp_path_factory.mktemp("shards")
    for dataset in REGISTRY:
        build_shards(demo_raw, out, dataset, samples_per_shard_2d=6, samples_per_shard_3d=4)
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A ``save_pretrained`` folder: the tiny preset, random weights (seed 0), bound to the default tokenizer (the
    demo shards'), for the evaluation and generation tests."""
    import torch

    from model import RadFMForCausalLM, get_config
    from shards_spec.tokenizer import load_tokenizer

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_model")
    RadFMForCausalLM(get_config("tiny", tokenizer=load_tokenizer().identity.to_dict())).save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------- real images (tests/imaging)


def dicom_file(name: str) -> Path:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    assert path is not None, f"pydicom-data lacks {name}"
    return Path(path)


@pytest.fixture(scope="session")
def chest_u8() -> np.ndarray:
    """RG1_UNCI (a real chest CR) as displayed uint8 [H, W]."""
    from pipelines.config import ImageConfig
    from pipelines.imaging import read_dicom, to_uint8

    pixels, info = read_dicom(dicom_file("RG1_UNCI.dcm"))
    return to_uint8(pixels, ImageConfig(), info["display_range"])


@pytest.fixture(scope="session")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory, chest_u8: np.ndarray) -> Path:
    """A 2500 x 3000 chest X-ray JPEG, the size of the benchmark images."""
    from PIL import Image

    path = tmp_path_factory.mktemp("jpeg") / "chest.jpg"
    Image.fromarray(chest_u8).resize((2500, 3000), Image.Resampling.BICUBIC).save(path, quality=90)
    return path


# --------------------------------------------------------------------------- object storage (tests/spec/test_storage.py …)


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 server (moto) on 127.0.0.1 for the session, with injectable faults (``tools.s3_local``); the
    environment points every client at it, with short retry delays."""
    from tools.s3_local import LocalS3

    with LocalS3() as s3:
        env = {**s3.env(), "RADFM_STORAGE_BACKOFF_S": "0.01"}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield s3
        finally:
            s3.clear_faults()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture(scope="session")
def remote_demo(demo_raw, demo_shards, s3_server) -> str:
    """MIMIC's demo shards built straight to ``s3://demo/shards`` (same parameters as ``demo_shards``)."""
    s3_server.create_bucket("demo")
    build_shards(demo_raw, "s3://demo/shards", "mimic", samples_per_shard_2d=6, samples_per_shard_3d=4)
    return "s3://demo/shards"
