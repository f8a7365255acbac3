"""The training config: YAML, overrides, validation (train.config)."""

from __future__ import annotations

import pytest

from train.config import SourceConfig, apply_override, load_config


def test_config_overrides_and_validation(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("sources:\n  - path: /data/a\n  - /data/b\nsteps: 5\nlr: 3e-3\n")
    cfg = load_config(p, ["steps=7", "sources.1.weight=2", "depth_choices=[4, 8]", "image_size=64"])
    assert cfg.steps == 7 and cfg.lr == 3e-3 and cfg.depth_choices == [4, 8] and cfg.image_size == 64
    assert cfg.sources[1] == SourceConfig("/data/b", 2.0, None)
    with pytest.raises(ValueError):
        load_config(p, ["nonsense=1"])
    with pytest.raises(ValueError):
        load_config(p, ["lr_schedule=weird"])
    d = {"a": [{"x": 1}]}
    apply_override(d, "a.0.x=3")
    apply_override(d, "b.c=true")
    assert d == {"a": [{"x": 3}], "b": {"c": True}}



def test_a100_recipe_has_radfms_settings():
    """train/configs/radfm-13b-a100.yaml parses, names an existing DeepSpeed JSON, and holds RadFM's settings:
    batch sizes 4 / 1 per GPU, AdamW with transformers' defaults (RadFM sets none), activation checkpointing,
    bf16 and ZeRO-3 (the project's)."""
    from train.config import REPO_ROOT, load_config
    from train.run import deepspeed_config

    cfg = load_config(REPO_ROOT / "train" / "configs" / "radfm-13b-a100.yaml")
    assert cfg.model == "radfm-13b" and cfg.gradient_checkpointing is True
    assert (cfg.batch_size_2d, cfg.batch_size_3d) == (4, 1)
    assert (cfg.lr, cfg.lr_schedule, cfg.warmup_steps, cfg.min_lr_ratio) == (5e-5, "linear", 0, 0.0)
    assert (cfg.adam_betas, cfg.adam_eps, cfg.weight_decay, cfg.grad_clip) == ([0.9, 0.999], 1e-8, 0.0, 1.0)
    ds = deepspeed_config(cfg, on_cpu=False)
    assert ds["bf16"]["enabled"] and ds["zero_optimization"]["stage"] == 3 and ds["gradient_clipping"] == 1.0


def test_activation_checkpointing_is_on_by_default():
    from train.config import SourceConfig, TrainConfig

    assert TrainConfig(sources=[SourceConfig("x")]).gradient_checkpointing is True  # RadFM always enables it
