"""The model and the tokenizer an evaluation or a generation uses.

``load_model(checkpoint, preset, device, dtype)``
    ``checkpoint`` is a ``save_pretrained`` folder (``config.json`` + ``model.safetensors``: what the trainer
    exports to ``<output_dir>/final``), a training ``output_dir`` holding ``final/``, or RadFM's released
    ``pytorch_model.bin`` (``model.checkpoint.load_official_checkpoint`` with the ``preset`` sizes, default
    ``radfm-13b``). Returns the model in eval mode on ``device``.
``load_tokenizer_for(config, path=None)``
    The tokenizer that decodes the model's ids: ``path`` when given, else the folder the model records
    (``config.tokenizer.source``, when it still exists), else the default tokenizer. It must be the model's (same
    fingerprint; any tokenizer for a model that records none); otherwise :class:`TokenizerError` says which folder
    to pass. RadFM's checkpoint records RadFM's tokenizer: pass ``--tokenizer <its Language_files>``.
``pick_device(device)`` / ``pick_dtype(dtype, device)``
    ``auto``: the rank's CUDA device when there is one, else CPU; bfloat16 on CUDA, float32 on CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from shards_spec.tokenizer import DEFAULT_TOKENIZER, Tokenizer, TokenizerError, load_tokenizer

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class CheckpointError(ValueError):
    pass


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    return torch.device(device)


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be auto or one of {sorted(DTYPES)}, not {dtype!r}")
    return DTYPES[dtype]


def load_model(checkpoint: str | Path, preset: str = "radfm-13b", device: torch.device | str = "cpu",
               dtype: torch.dtype | None = None):
    from model import RadFMForCausalLM, get_config
    from model.checkpoint import load_official_checkpoint

    checkpoint_config(checkpoint, preset)  # raises CheckpointError for anything that is not a checkpoint
    path = Path(checkpoint)
    if path.is_dir():
        model = RadFMForCausalLM.from_pretrained(model_folder(path), device=device, dtype=dtype)
    else:
        model, _ = load_official_checkpoint(path, config=get_config(preset), device=device, dtype=dtype)
    return model.eval()


def load_tokenizer_for(config, path: str | Path | None = None) -> Tokenizer:
    identity = config.tokenizer_identity
    if path is not None:
        candidates = [str(path)]
    else:
        source = identity.source if identity is not None else None
        candidates = [source] if source and (source == DEFAULT_TOKENIZER or Path(source).exists()) else []
        if DEFAULT_TOKENIZER not in candidates:
            candidates.append(DEFAULT_TOKENIZER)  # a model trained on default-tokenizer shards records no folder
    for candidate in candidates:
        tok = load_tokenizer(candidate)
        if identity is None or tok.identity == identity:
            return tok
    if path is not None:
        raise TokenizerError(f"tokenizer {tok.identity.describe()} is not the model's {identity.describe()}: its ids "
                             "would decode to other pieces; pass the model's tokenizer folder with --tokenizer")
    raise TokenizerError(f"the model was trained with tokenizer {identity.describe()}; pass --tokenizer DIR (that "
                         "tokenizer's folder, e.g. RadFM's Quick_demo/Language_files)")


def model_folder(path: Path) -> Path:
    """The ``save_pretrained`` folder of a checkpoint folder: the folder itself when it holds the weights, else its
    ``final/`` (a training ``output_dir`` also holds a ``config.json``: the training run's, not the model's)."""
    from model.modeling import WEIGHTS_NAME

    return path if (path / WEIGHTS_NAME).is_file() else path / "final"


def checkpoint_config(checkpoint: str | Path, preset: str = "radfm-13b"):
    """The ``RadFMConfig`` a checkpoint will load with, without reading its weights (to check shards and tokenizer
    before loading a large model)."""
    import dataclasses

    from model import RadFMConfig, get_config
    from model.modeling import CONFIG_NAME, WEIGHTS_NAME
    from shards_spec.tokenizer import RADFM_RELEASED

    path = Path(checkpoint)
    if path.is_dir():
        folder = model_folder(path)
        if (folder / CONFIG_NAME).is_file() and (folder / WEIGHTS_NAME).is_file():
            return RadFMConfig.from_json_file(folder / CONFIG_NAME)
        raise CheckpointError(f"{path}: neither a saved model (config.json + model.safetensors) nor a training "
                              "output_dir with final/ in it; train one with `make train` or pass RadFM's "
                              "pytorch_model.bin")
    if path.is_file():
        return dataclasses.replace(get_config(preset), tokenizer=RADFM_RELEASED.to_dict())
    raise CheckpointError(f"checkpoint {path}: no such folder or file")
