"""The demo: every registered fixture through build_demo and the CLI; planted faults; determinism; the shared
chest synthesis. Each fixture's own layout is tested next to its source (tests/sources/test_<name>.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from pipelines import demo
from pipelines.demo.__main__ import main as demo_main
from pipelines.demo.content import load_chest_base
from pipelines.demo.synth import ChestParams, draw_chest_params, render_chest
from pipelines.sources import REGISTRY

#: every fixture at its smallest size
SMALL = {f.size_option: f.min_size for f in demo.fixtures()}


@pytest.fixture(scope="module")
def small_trees(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    trees = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        out = tmp_path_factory.mktemp(f"small_{name}")
        trees[name] = (out, demo.build_demo(out, seed=seed, **SMALL))
    return trees


def file_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_planted_format(demo_tree):
    out, info = demo_tree
    assert {p["dataset"] for p in info["planted"]} == set(REGISTRY)  # every fixture plants faults
    assert {p["kind"] for p in info["planted"]} <= set(demo.PLANT_KINDS)
    for p in info["planted"]:
        assert {"dataset", "file", "kind"} <= set(p)
        path = out / p["dataset"] / p["file"]
        assert path.exists() == (p["kind"] != "missing_file")


def test_same_seed_identical_bytes(small_trees):
    (a, info_a), (b, info_b) = small_trees["a"], small_trees["b"]
    ha, hb = file_hashes(a), file_hashes(b)
    assert len(ha) > 50 and ha == hb
    for info in (info_a, info_b):
        info["out"] = None
        for name in REGISTRY:
            info[name] = {**info[name], "root": None}
    assert info_a == info_b


def test_different_seed_differs(small_trees):
    ha, hc = file_hashes(small_trees["a"][0]), file_hashes(small_trees["c"][0])
    common = set(ha) & set(hc)
    assert set(ha) != set(hc)
    assert all(ha[k] != hc[k] for k in common if k.endswith((".jpg", ".npy", ".nii.gz")))


def test_small_tree_has_all_faults(small_trees):
    out, info = small_trees["a"]
    assert {p["kind"] for p in info["planted"]} == set(demo.PLANT_KINDS)
    for f in demo.fixtures():
        assert info[f.name][f.size_unit] == f.min_size


def test_cli_rebuilds_demo_tree_in_place(small_trees, capsys):
    out, _ = small_trees["a"]
    expected = file_hashes(out)
    sizes = [arg for f in demo.fixtures() for arg in (f"--{f.name}-{f.size_unit}", str(f.min_size))]
    assert "--mimic-studies" in sizes and "--rad3d-cases" in sizes
    rc = demo_main(["--out", str(out), "--seed", "0", *sizes])
    assert rc == 0
    text = capsys.readouterr().out
    assert str(out.resolve()) in text and all(f"{name}:" in text for name in REGISTRY)
    assert file_hashes(out) == expected


def test_refuses_to_overwrite_foreign_tree(tmp_path):
    (tmp_path / "mimic").mkdir()
    (tmp_path / "mimic" / "precious.txt").write_text("x")
    with pytest.raises(FileExistsError):
        demo.build_demo(tmp_path, **SMALL)
    assert (tmp_path / "mimic" / "precious.txt").exists()


def test_rejects_too_small_or_unknown_parameters(tmp_path):
    with pytest.raises(ValueError):
        demo.build_demo(tmp_path, mimic_studies=2)
    with pytest.raises(ValueError):
        demo.build_demo(tmp_path, rad3d_cases=1)
    with pytest.raises(TypeError, match="mimic_studies"):
        demo.build_demo(tmp_path, mimic_cases=10)
    assert not any(tmp_path.iterdir())  # nothing written before the parameters are checked


def test_list_builds_names_every_fixture_and_its_shard_args(capsys):
    assert demo_main(["--list-builds"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(REGISTRY)
    assert "mimic --samples-per-shard-2d 8" in lines and "rad3d --samples-per-shard-3d 6" in lines


def test_fixtures_are_found_through_the_registry_and_never_imported_by_a_build():
    import subprocess
    import sys

    streams = [f.rng_stream for f in demo.fixtures()]
    assert len(set(streams)) == len(streams)  # each fixture has its own random stream
    for f in demo.fixtures():
        assert f.name in REGISTRY and f.min_size <= f.default_size and f.description and f.requires
    code = ("import sys, pipelines.build, pipelines.worker; from pipelines.sources import get_source; "
            "from pipelines.sources import names; [get_source(n) for n in names()]; "
            "print(sorted(m for m in sys.modules if m.startswith('pipelines.demo') or m.endswith('.fixture')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_chest_image_size_option():
    rng = np.random.default_rng(0)
    p = draw_chest_params(rng, (1841, 1955), False, 3000)
    assert max(p.out_w, p.out_h) == 3000
    p = draw_chest_params(rng, (1841, 1955), True, (2544, 3056))
    assert (p.out_w, p.out_h) == (2544, 3056)
    p = draw_chest_params(rng, (1841, 1955), False, None)
    assert 1024 <= max(p.out_w, p.out_h) <= 1400
    small = ChestParams(**{**p.__dict__, "out_w": 300, "out_h": 360})
    pixels = render_chest(load_chest_base(), small)
    assert pixels.shape == (360, 300) and pixels.dtype == np.uint8
    # lungs dark, mediastinum/diaphragm bright: a real chest radiograph, not noise
    assert 40 < pixels.mean() < 200 and pixels.std() > 30

