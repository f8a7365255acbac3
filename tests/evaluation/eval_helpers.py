"""Shared by the evaluation tests: a tiny random model bound to the demo shards' (default) tokenizer, fast options."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A ``save_pretrained`` folder: the tiny preset, random weights (seed 0), the default tokenizer recorded."""
    import torch

    from model import RadFMForCausalLM, get_config
    from shards_spec.tokenizer import load_tokenizer

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_model")
    RadFMForCausalLM(get_config("tiny", tokenizer=load_tokenizer().identity.to_dict())).save_pretrained(folder)
    return folder


#: small images and few new tokens keep an evaluation of the 17 demo test samples to seconds
FAST = ["--image-size", "64", "--max-new-tokens", "3", "--no-progress"]
