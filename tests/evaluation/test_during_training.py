"""The trainer's periodic evaluation (evaluation.during_training, eval_* config keys, loss.png)."""

from __future__ import annotations

import json

import pytest
from eval_helpers import tiny_model  # noqa: F401  (fixture)

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
