"""The model bound to its tokenizer: recorded in the config, saved with the weights, checked by the trainer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from model import RadFMForCausalLM, get_config
from shards_spec.tokenizer import RADFM_RELEASED, TokenizerIdentity, load_tokenizer
from train.config import SourceConfig
from train.sources import SourceError, bind_model_tokenizer, check_tokenizers, resolve_sources

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def shards_identity(demo_shards) -> TokenizerIdentity:
    return load_tokenizer(None).identity  # the demo is built with the default tokenizer


def test_config_records_and_checks_the_tokenizer(tmp_path):
    assert get_config("tiny").tokenizer is None and get_config("tiny").tokenizer_identity is None
    cfg = get_config("tiny", tokenizer=RADFM_RELEASED.to_dict())
    assert cfg.tokenizer_identity == RADFM_RELEASED
    with pytest.raises(ValueError, match="vocab_size"):
        get_config("tiny", vocab_size=1000, tokenizer=RADFM_RELEASED.to_dict())
    with pytest.raises(ValueError, match="does not match its fields"):
        get_config("tiny", tokenizer={**RADFM_RELEASED.to_dict(), "fingerprint": "sha256:0000000000000000"})
    torch.manual_seed(0)
    model = RadFMForCausalLM(cfg)
    model.save_pretrained(tmp_path / "m")
    loaded = RadFMForCausalLM.from_pretrained(tmp_path / "m")
    assert loaded.config.tokenizer == RADFM_RELEASED.to_dict() and loaded.config.tokenizer_identity == RADFM_RELEASED


def test_shards_of_another_tokenizer_are_refused(demo_shards, shards_identity, caplog):
    shards = resolve_sources([SourceConfig(path=str(demo_shards))])
    with pytest.raises(SourceError) as info:
        check_tokenizers(shards, 32000, RADFM_RELEASED.to_dict())
    message = str(info.value)
    datasets = ", ".join(sorted({s.dataset for stream in shards.values() for s in stream}))
    for part in (f"dataset {datasets} was built", shards_identity.fingerprint, RADFM_RELEASED.fingerprint, "--tokenizer",
                 "allow_tokenizer_mismatch: true"):
        assert part in message, message
    assert "\n" not in message
    # the explicit switch: trains anyway, says so
    assert check_tokenizers(shards, 32000, RADFM_RELEASED, allow_mismatch=True) == shards_identity
    assert "training anyway" in caplog.text
    # the model's own tokenizer (a full identity; the shards state fingerprint and ids) passes
    assert check_tokenizers(shards, 32000, shards_identity.to_dict()) == shards_identity
    # a differing base vocabulary is refused even with the switch
    with pytest.raises(SourceError, match="vocab_size is 32100"):
        check_tokenizers(shards, 32100, None, allow_mismatch=True)


def test_a_model_without_tokenizer_adopts_the_shards(demo_shards, shards_identity):
    cfg = get_config("tiny")
    got = bind_model_tokenizer([SourceConfig(path=str(demo_shards))], cfg)
    assert got == shards_identity and cfg.tokenizer_identity == shards_identity
    assert bind_model_tokenizer([SourceConfig(path=str(demo_shards))], cfg) == shards_identity  # now bound: same passes


@pytest.mark.slow
def test_trainer_refuses_before_building_the_engine(demo_shards, tmp_path):
    """A checkpoint trained with RadFM's tokenizer + shards built with the default one: one error line, exit 2,
    before DeepSpeed builds the engine."""
    torch.manual_seed(0)
    RadFMForCausalLM(get_config("tiny", tokenizer=RADFM_RELEASED.to_dict())).save_pretrained(tmp_path / "radfm-like")
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump({
        "sources": [{"path": str(demo_shards)}], "checkpoint": str(tmp_path / "radfm-like"),
        "deepspeed": str(ROOT / "train" / "configs" / "ds_zero2_fp32.json"), "output_dir": str(tmp_path / "run"),
        "steps": 1, "progress": False}))
    proc = subprocess.run([sys.executable, str(ROOT / "train" / "run.py"), "--config", str(config)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("[train] error:")]
    assert len(errors) == 1 and RADFM_RELEASED.fingerprint in errors[0] and "Traceback" not in proc.stderr
    assert "[train] world" not in proc.stdout and not (tmp_path / "run" / "checkpoints").exists()
