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

