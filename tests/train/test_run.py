"""The entry point's pieces (train.run): learning-rate schedule, device moves, model building, step totals."""

from __future__ import annotations

import math

import pytest
import torch

from train.config import SourceConfig, TrainConfig


def test_lr_schedule_shape():
    from train.run import lr_lambda

    cfg = TrainConfig(sources=[SourceConfig("x")], steps=100, warmup_steps=10, lr_schedule="cosine", min_lr_ratio=0.1)
    fn = lr_lambda(cfg)
    assert fn(0) == pytest.approx(0.1) and fn(9) == pytest.approx(1.0)
    assert fn(10) == pytest.approx(1.0) and fn(100) == pytest.approx(0.1)
    assert fn(55) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    cfg.lr_schedule = "linear"
    assert lr_lambda(cfg)(55) == pytest.approx(1 - 0.9 * 0.5)
    cfg.lr_schedule = "constant"
    assert lr_lambda(cfg)(99) == 1.0


def test_to_device_sends_the_stored_part_of_broadcast_views():
    from train.run import to_device

    compact = torch.rand(2, 1, 1, 8, 8, 1)
    view = compact.expand(2, 1, 3, 8, 8, 4)
    moved = to_device(view, "cpu")
    assert moved.shape == view.shape and torch.equal(moved, view) and 0 in moved.stride()
    dense = torch.rand(3, 4)
    assert torch.equal(to_device(dense, "cpu"), dense)


def test_build_model_from_preset_and_pretrained_dir(tmp_path):
    from model import RadFMForCausalLM, get_config
    from train.run import build_model, param_groups

    torch.manual_seed(0)
    src = RadFMForCausalLM(get_config("tiny"))
    src.save_pretrained(tmp_path / "ckpt")
    cfg = TrainConfig(sources=[SourceConfig("x")], checkpoint=str(tmp_path / "ckpt"))
    model = build_model(cfg)
    assert model.training and model.embeddings_tied()
    assert torch.equal(model.lang_model.lm_head.weight, src.lang_model.lm_head.weight)
    preset = build_model(TrainConfig(sources=[SourceConfig("x")], model="tiny"))
    groups = param_groups(preset, 0.1)
    assert groups[0]["weight_decay"] == 0.1 and all(p.ndim >= 2 for p in groups[0]["params"])
    assert all(p.ndim < 2 for p in groups[1]["params"]) and groups[1]["params"]



def test_step_totals_name_every_logged_number():
    from train.run import StepTotals, step_record

    totals = StepTotals()
    totals.add_micro_batch(2.0, 0.5, 8.0, {"input_ids": torch.zeros(2, 10), "n_real_tokens": 15,
                                           "bad": [{"stream": "2d"}, {"stream": "2d"}]})
    totals.add_micro_batch(1.0, 0.25, 4.0, {"input_ids": torch.zeros(1, 6), "n_real_tokens": 6,
                                            "bad": [{"stream": "3d"}]})
    totals.data_wait = 0.2
    assert totals.summed_over_ranks() == totals  # one process: the sum over ranks is itself
    record = step_record(7, ["2d", "3d"], 1e-4, totals, step_time=2.0, world=1)
    assert record == {"step": 7, "stream": "mixed", "loss": 1.5, "lr": 1e-4, "token_accuracy": 5.0 / 12.0,
                      "tokens_per_s": 10.5, "samples_per_s": 1.5, "data_wait": 0.2, "step_time": 2.0, "n_tokens": 21,
                      "samples": 3, "token_efficiency": 21 / 26}
    assert (totals.bad_2d, totals.bad_3d, totals.micro_batches) == (2, 1, 2)
    assert step_record(1, ["3d"], 0.0, totals, 1.0, 2)["stream"] == "3d"


# ------------------------------------------------------------------------------------------ before the model
def _no_model(*_a, **_k):
    raise AssertionError("the trainer went on to DeepSpeed and the model")


def test_a_config_pointing_at_no_shards_fails_before_deepspeed_and_the_model(tmp_path, monkeypatch):
    from train import run
    from train.sources import SourceError

    monkeypatch.setattr(run, "setup_distributed", _no_model)
    monkeypatch.setattr(run, "build_model", _no_model)
    empty = tmp_path / "shards"
    empty.mkdir()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"sources: [{empty}]\nmodel: tiny\n")
    with pytest.raises(SourceError, match="no manifest.json in it"):
        run.main(["--config", str(cfg)])
    cfg.write_text(f"sources: [{empty / 'missing'}]\nmodel: tiny\n")
    with pytest.raises(SourceError, match="does not exist"):
        run.main(["--config", str(cfg)])


def test_the_trainer_cli_says_so_in_one_line_and_exits_2(tmp_path):
    """``python -m train.run`` on a config whose sources hold no shards, and on an unknown key: one line, no
    traceback, within seconds (nothing is built)."""
    import subprocess
    import sys
    import time

    from conftest import ROOT

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"sources: [{tmp_path}]\nmodel: tiny\n")
    for extra, phrase in (([], "no manifest.json in it"), (["--set", "stpes=3"], "did you mean 'steps'?")):
        t0 = time.monotonic()
        res = subprocess.run([sys.executable, "-m", "train.run", "--config", str(cfg), *extra], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 2, res.stdout + res.stderr
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("[train] error: ") and phrase in lines[0], res.stderr
        assert "world" not in res.stdout and time.monotonic() - t0 < 60


def test_extension_build_locks_left_by_a_killed_run(tmp_path):
    """torch's JIT-build lock (``<TORCH_EXTENSIONS_DIR>/<op>/lock``, held open by the building process): one that
    no process holds and whose build directory has been quiet for the threshold is stale; one held open is a live
    build; an unheld recent one is only named. Layouts with and without torch's ``pyXY_cpu`` level."""
    import os
    import time

    from train.run import StaleLockError, check_extension_locks, extension_locks

    old = time.time() - 3600
    stale = tmp_path / "deepspeed_shm_comm" / "lock"
    nested = tmp_path / "py311_cpu" / "other_op" / "lock"
    held = tmp_path / "held_op" / "lock"
    recent = tmp_path / "recent_op" / "lock"
    for lock in (stale, nested, held, recent):
        lock.parent.mkdir(parents=True)
        (lock.parent / "build.ninja").write_text("")
        lock.write_bytes(b"")
        if lock is not recent:
            for f in lock.parent.iterdir():
                os.utime(f, (old, old))
    fd = os.open(held, os.O_RDONLY)  # as torch's FileBaton keeps it while building
    try:
        assert extension_locks(tmp_path, minutes=10) == ([stale, nested], [recent])
        with pytest.raises(StaleLockError) as err:
            check_extension_locks(tmp_path, minutes=10)
    finally:
        os.close(fd)
    message = str(err.value)
    assert "\n" not in message and f"rm {stale} {nested}" in message and "wait forever" in message
    (tmp_path / "deepspeed_shm_comm" / "build.ninja").write_text("being rebuilt")  # activity: not stale
    assert stale not in extension_locks(tmp_path, minutes=10)[0]
    assert extension_locks(tmp_path / "missing") == ([], [])


def test_a_stale_build_lock_stops_the_trainer_in_one_line(demo_shards, tmp_path):
    """The trainer checks before DeepSpeed is imported: exit 2, one line naming the file, within seconds."""
    import os
    import subprocess
    import sys
    import time

    from conftest import ROOT

    lock = tmp_path / "ext" / "deepspeed_shm_comm" / "lock"
    lock.parent.mkdir(parents=True)
    lock.write_bytes(b"")
    os.utime(lock, (time.time() - 3600, time.time() - 3600))
    os.utime(lock.parent, (time.time() - 3600, time.time() - 3600))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"sources: [{demo_shards}]\nmodel: tiny\noutput_dir: {tmp_path / 'run'}\n")
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path / "ext"), "CUDA_VISIBLE_DEVICES": ""}
    res = subprocess.run([sys.executable, "-m", "train.run", "--config", str(cfg)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stdout + res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[train] error: ") and f"rm {lock}" in lines[0], res.stderr
    assert lock.exists() and not (tmp_path / "run").exists()


@pytest.mark.parametrize("cuda, name", [(True, "radfm-13b-a100.yaml"), (False, "demo-cpu.yaml")])
def test_without_config_the_default_depends_on_the_gpu(monkeypatch, cuda, name):
    from train import run

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    path, why = run.default_config()
    assert path.name == name and path.is_file() and why


@pytest.mark.slow
@pytest.mark.timeout(700)
def test_no_argument_run_trains_the_default_config_on_data_shards(demo_shards, tmp_path):
    """``python train/run.py`` with no ``--config`` (only a step count through the documented ``--set``), from a
    folder whose ``data/shards`` holds the demo shards: it says which config it chose and trains."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "shards").symlink_to(demo_shards)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": ""}  # the CPU choice, on any machine
    res = subprocess.run([sys.executable, str(ROOT / "train" / "run.py"), "--set", "steps=2", "--set", "num_workers=0",
                          "--set", "checkpoint_interval=0", "--set", "progress=false"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=650)  # DeepSpeed may JIT-build its CPU op
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    assert "no --config given; no GPU" in out and "demo-cpu.yaml" in out
    assert "finished at step 2" in out
    assert (tmp_path / "runs" / "demo-cpu" / "log.jsonl").is_file()
