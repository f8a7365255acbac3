"""The trainer's periodic evaluation (evaluation.during_training, eval_* config keys, loss.png)."""

from __future__ import annotations

import json

import pytest

from train.config import SourceConfig, TrainConfig


def test_eval_config_is_validated():
    with pytest.raises(ValueError, match="eval_shards"):
        TrainConfig(sources=[SourceConfig("x")], eval_every=5).validate()
    with pytest.raises(ValueError, match="eval_batch_size"):
        TrainConfig(sources=[SourceConfig("x")], eval_batch_size=0).validate()
    TrainConfig(sources=[SourceConfig("x")], eval_every=5, eval_shards=["data/shards"]).validate()


def test_collate_settings_follow_the_training_run_without_augmentation():
    from evaluation.during_training import collate_config_of

    cfg = TrainConfig(sources=[SourceConfig("x")], image_size=96, resize_mode="nearest", augment=True,
                      depth_choices=[4, 8])
    got = collate_config_of(cfg)
    assert (got.image_size, got.resize_mode, got.augment, got.depth_choices) == (96, "nearest", False, (4, 8))


def test_periodic_evaluation_in_one_process(demo_shards, tiny_model, tmp_path):
    from evaluation.during_training import PeriodicEvaluation
    from model import RadFMForCausalLM

    model = RadFMForCausalLM.from_pretrained(tiny_model).train()
    cfg = TrainConfig(sources=[SourceConfig(str(demo_shards))], eval_every=2, eval_shards=[str(demo_shards)],
                      eval_limit=1, eval_max_new_tokens=2, image_size=64)
    evaluator = PeriodicEvaluation(cfg, model.config, 0, 1, tmp_path)
    summary = evaluator.run(model, 2, "cpu")
    assert model.training  # switched back
    assert summary["samples"] == evaluator.samples > 0 and summary["errors"] == 0
    assert summary["loss"] > 0 and summary["tokens"] > 0
    assert summary["dir"] == "eval/step-000002"
    assert set(summary["scores"]) >= {"mimic/report/text"} and all(0 <= v <= 1 for v in summary["scores"].values())
    metrics = json.loads((tmp_path / "eval" / "step-000002" / "metrics.json").read_text())
    assert metrics["samples"] == summary["samples"]
    assert (tmp_path / "eval" / "step-000002" / "predictions.csv").exists()


def test_loss_plot_shows_evaluations(tmp_path):
    from train.logs import plot_loss

    log = tmp_path / "log.jsonl"
    records = [{"step": s, "stream": "2d", "loss": 5.0 - s, "micro": [{"stream": "2d", "loss": 5.0 - s}]}
               for s in range(1, 5)]
    records[1]["eval"] = {"loss": 4.5, "scores": {"mimic/report/text": 0.1}}
    records[3]["eval"] = {"loss": 4.0, "scores": {"mimic/report/text": 0.2}}
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    plot_loss(log, tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_zero3_training_run_logs_periodic_evaluations(demo_shards, tmp_path):
    """2 ranks, ZeRO-3 (parameters partitioned: the evaluation keeps the ranks' model calls in step)."""
    import socket
    import subprocess
    import sys

    import yaml
    from conftest import ROOT

    from train.logs import read_jsonl

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    out = tmp_path / "run"
    demo = [str(demo_shards / "mimic"), str(demo_shards / "rad3d")]  # 5 (dataset, task) pairs; the registry grows
    cfg = {"sources": [{"path": p} for p in demo], "model": "tiny", "deepspeed": str(ROOT / "train/configs/ds_zero3.json"),
           "output_dir": str(out), "steps": 4, "batch_size_2d": 2, "batch_size_3d": 1, "lr": 1e-3, "warmup_steps": 0,
           "num_workers": 0, "image_size": 64, "progress": False, "save_final": False, "export_final": False,
           "resume": False, "eval_every": 2, "eval_shards": demo, "eval_limit": 1,
           "eval_batch_size": 2, "eval_max_new_tokens": 3}
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", port,
           "-m", "train.run", "--config", str(tmp_path / "cfg.yaml")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    records = read_jsonl(out / "log.jsonl")
    evals = {r["step"]: r["eval"] for r in records if "eval" in r}
    assert sorted(evals) == [2, 4]
    for step, summary in evals.items():
        assert summary["samples"] == 5 and summary["errors"] == 0 and summary["loss"] > 0  # 1 per dataset and task
        assert (out / summary["dir"] / "predictions.csv").exists()
    assert (out / "loss.png").exists()
