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




def test_explicit_steps_win_over_the_files_epochs(tmp_path):
    """``--set steps=N`` on a config that sets ``epochs`` runs N steps (the epochs are dropped); ``--set epochs``
    over a file's ``steps`` counts epochs; both in one place is one line that says what to do."""
    from train.config import REPO_ROOT, ConfigError

    recipe = REPO_ROOT / "train" / "configs" / "radfm-13b-a100.yaml"  # sets epochs: 3
    cfg = load_config(recipe, ["steps=7"])
    assert (cfg.steps, cfg.epochs) == (7, None)
    assert load_config(recipe).epochs == 3
    p = tmp_path / "c.yaml"
    p.write_text("sources: [/a]\nsteps: 5\n")
    assert (load_config(p, ["epochs=2"]).epochs, load_config(p).epochs) == (2, None)
    p.write_text("sources: [/a]\nsteps: 5\nepochs: 2\n")
    with pytest.raises(ConfigError, match=r"c.yaml: both 'steps' and 'epochs' are set; set one of them") as err:
        load_config(p)
    assert "\n" not in str(err.value)
    assert (load_config(p, ["steps=9"]).steps, load_config(p, ["steps=9"]).epochs) == (9, None)
    assert load_config(p, ["epochs=null"]).steps == 5
    with pytest.raises(ConfigError, match=r"^--set: both 'steps' and 'epochs' are set"):
        load_config(recipe, ["steps=7", "epochs=1"])

# ------------------------------------------------------------------------------------------ newcomer errors
def test_unknown_keys_suggest_the_nearest_known_one(tmp_path):
    from train.config import ConfigError

    p = tmp_path / "c.yaml"
    p.write_text("sources: [/data/a]\nstep: 5\n")
    with pytest.raises(ConfigError, match=r"^config: unknown key 'step' \(did you mean 'steps'\?\)$"):
        load_config(p)
    p.write_text("sources: [/data/a]\n")
    with pytest.raises(ConfigError, match=r"unknown key 'lr_shedule' \(did you mean 'lr_schedule'\?\)"):
        load_config(p, ["lr_shedule=linear"])
    with pytest.raises(ConfigError, match=r"source /data/b: unknown key 'wieght' \(did you mean 'weight'\?\)"):
        load_config(p, ["sources=[{path: /data/b, wieght: 2}]"])
    with pytest.raises(ConfigError, match=r"unknown keys 'batch' \(did you mean 'batch_size_2d'\?\), 'zzz'$"):
        load_config(p, ["batch=4", "zzz=1"])


@pytest.mark.parametrize("text, overrides, message", [
    ("sources: [/a]\nsteps: many\n", [], "steps must be a number, got 'many'"),
    ("sources: [/a]\n", ["augment=[1]"], "augment must be bool, got list"),
    ("sources: [/a]\n", ["steps=[1"], "the value is not YAML"),
    ("sources: [/a]\n", ["sources.5.weight=2"], "no such place in the config"),
    ("- just\n- a list\n", [], "the top level must be a mapping"),
    ("sources: [/a\n", [], "not valid YAML"),
])
def test_config_problems_are_one_line_config_errors(tmp_path, text, overrides, message):
    from train.config import ConfigError

    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(p, overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_shipped_configs_load_and_validate():
    from train.config import REPO_ROOT, resolve_deepspeed_path

    for path in sorted((REPO_ROOT / "train" / "configs").glob("*.yaml")):
        cfg = load_config(path)
        assert resolve_deepspeed_path(cfg).is_file(), path
    radfm = load_config(REPO_ROOT / "train" / "configs" / "radfm-13b-a100.yaml")
    assert (radfm.model, radfm.batch_size_2d, radfm.batch_size_3d, radfm.lr, radfm.epochs) == ("radfm-13b", 4, 1, 5e-5, 3)


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
