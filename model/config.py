"""Configuration of the RadFM model: one flat, JSON-serialisable dataclass plus named presets.

Public API
----------
``RadFMConfig``
    Dataclass holding every size of the model (LLaMA, 3D ViT, perceiver, projection).
    ``to_dict()`` / ``from_dict(d)``, ``to_json_file(path)`` / ``from_json_file(path)``,
    ``to_llama_config()`` (a ``transformers.LlamaConfig`` for the language model),
    ``from_preset(name, **overrides)``.
``PRESETS``
    ``{"radfm-13b": ..., "tiny": ...}``: preset name -> dict of field values.
``get_config(name, **overrides) -> RadFMConfig``
    Same as ``RadFMConfig.from_preset``.

Presets
-------
``radfm-13b``
    The released RadFM sizes (LLaMA-13B: hidden 5120, intermediate 13824, 40 layers, 40 heads, vocab 32000,
    2048 positions, RMSNorm eps 1e-6; ViT-3D 768/12/8x64/MLP 2048 with 32x32x4 patches and 16/16/128 position
    tables; perceiver 32 latents, depth 6, 8x64, ff x4).
``tiny``
    A few million parameters for tests and CPU smoke runs. The LLaMA vocabulary stays the real 32000 base pieces
    and the patch sizes stay 32x32x4 so real image shapes and token layouts work; everything else is scaled down.

The image special tokens (``<image>``, ``</image>``, ``<imageK>``) are *not* part of ``vocab_size``: the LLM's
embedding and ``lm_head`` have ``vocab_size`` rows, exactly as in RadFM (see ``shards_spec.layout``).

``tokenizer`` binds the weights to the token ids they were trained on: a ``shards_spec.tokenizer.TokenizerIdentity``
as a dict (``None`` for a model never trained, e.g. a preset). ``load_official_checkpoint`` sets RadFM's
(``RADFM_RELEASED``); the trainer refuses shards built with another tokenizer and records the shards' identity in
a model that has none, so ``save_pretrained`` / the final export carry it in ``config.json``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import LlamaConfig

from shards_spec.tokenizer import TokenizerIdentity


@dataclass
class RadFMConfig:
    """All sizes of a RadFM model. Field defaults are the ``radfm-13b`` preset."""

    # --- language model (LLaMA) ---
    vocab_size: int = 32000  # base text vocabulary; image tokens live above it and are not in lm_head
    hidden_size: int = 5120
    intermediate_size: int = 13824
    num_hidden_layers: int = 40
    num_attention_heads: int = 40
    num_key_value_heads: int | None = None  # None -> num_attention_heads (LLaMA-13B has no GQA)
    max_position_embeddings: int = 2048
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    initializer_range: float = 0.02
    attn_implementation: str = "sdpa"  # "sdpa" or "eager" (passed to transformers)

    # --- 3D ViT ---
    image_channels: int = 3
    patch_size: int = 32  # height and width of a patch
    frame_patch_size: int = 4  # depth of a patch
    vision_dim: int = 768
    vision_depth: int = 12
    vision_heads: int = 8
    vision_dim_head: int = 64
    vision_mlp_dim: int = 2048
    vision_dropout: float = 0.1  # attention probabilities, attention output, MLP
    vision_emb_dropout: float = 0.1  # after adding the position embedding
    pos_row_size: int = 16  # rows of the learned row table (H / patch_size <= this)
    pos_col_size: int = 16
    pos_dep_size: int = 128  # rows of the learned depth table (D / frame_patch_size <= this)

    # --- perceiver resampler ---
    num_latents: int = 32  # image tokens per image; the shard token layout requires 32
    perceiver_depth: int = 6
    perceiver_heads: int = 8
    perceiver_dim_head: int = 64
    perceiver_ff_mult: int = 4

    # --- image-token embedding ---
    num_figure_tokens: int = 2  # <image>, </image>

    # --- the tokenizer the weights were trained with (TokenizerIdentity.to_dict(); None: not recorded) ---
    tokenizer: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.vision_dim % 3:
            raise ValueError(
                f"vision_dim={self.vision_dim} must be divisible by 3: the row, column and depth position tables "
                "each have vision_dim // 3 columns and are concatenated"
            )
        if self.num_figure_tokens != 2:
            raise ValueError("num_figure_tokens must be 2 (<image> and </image>)")
        if self.tokenizer is not None:
            identity = TokenizerIdentity.from_dict(self.tokenizer)  # raises on a malformed or inconsistent identity
            if identity.base_vocab != self.vocab_size:
                raise ValueError(f"tokenizer {identity.fingerprint} has {identity.base_vocab} pieces but vocab_size is "
                                 f"{self.vocab_size}")
        for name in ("patch_size", "frame_patch_size", "vision_dim", "vision_depth", "vision_heads",
                     "num_latents", "perceiver_heads", "hidden_size", "vocab_size"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @property
    def tokenizer_identity(self) -> TokenizerIdentity | None:
        """The recorded tokenizer (``None`` if the model has none)."""
        return TokenizerIdentity.from_dict(self.tokenizer) if self.tokenizer is not None else None

    # --- derived sizes ---
    @property
    def patch_dim(self) -> int:
        """Length of one flattened patch: channels x patch x patch x frame_patch."""
        return self.image_channels * self.patch_size * self.patch_size * self.frame_patch_size

    @property
    def pos_embed_dim(self) -> int:
        """Width of each of the three position tables (their concatenation is ``vision_dim``)."""
        return self.vision_dim // 3

    @property
    def figure_token_ids(self) -> tuple[int, int]:
        """Ids of ``<image>`` and ``</image>``."""
        return self.vocab_size, self.vocab_size + 1

    @property
    def first_image_token_id(self) -> int:
        """Id of ``<image0>``."""
        return self.vocab_size + self.num_figure_tokens

    # --- conversions ---
    def to_llama_config(self) -> LlamaConfig:
        """The ``LlamaConfig`` of the language model (``tie_word_embeddings=False``, bos 1, eos 2, no pad id)."""
        return LlamaConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads or self.num_attention_heads,
            max_position_embeddings=self.max_position_embeddings,
            rms_norm_eps=self.rms_norm_eps,
            rope_theta=self.rope_theta,
            initializer_range=self.initializer_range,
            hidden_act="silu",
            tie_word_embeddings=False,
            bos_token_id=1,
            eos_token_id=2,
            # No padding_idx on the embedding table: RadFM's config had pad -1, which old transformers turned into
            # padding_idx 31999 (zeroed at init). Pads are masked by the attention mask instead.
            pad_token_id=None,
            use_cache=True,
            attn_implementation=self.attn_implementation,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RadFMConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known - {"model_type", "format_version"})
        if unknown:
            raise ValueError(f"unknown RadFMConfig fields: {unknown}")
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_json_file(self, path: str | Path) -> None:
        data = {"model_type": "radfm", **self.to_dict()}
        Path(path).write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")

    @classmethod
    def from_json_file(cls, path: str | Path) -> RadFMConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> RadFMConfig:
        if name not in PRESETS:
            raise KeyError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})


PRESETS: dict[str, dict[str, Any]] = {
    "radfm-13b": {},  # the dataclass defaults
    "tiny": {
        "vocab_size": 32000,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "max_position_embeddings": 2048,
        "vision_dim": 48,
        "vision_depth": 2,
        "vision_heads": 4,
        "vision_dim_head": 12,
        "vision_mlp_dim": 96,
        "perceiver_depth": 2,
        "perceiver_heads": 4,
        "perceiver_dim_head": 12,
        "perceiver_ff_mult": 2,
    },
}


def get_config(name: str, **overrides: Any) -> RadFMConfig:
    """The preset ``name`` (``"radfm-13b"`` or ``"tiny"``) with field ``overrides`` applied."""
    return RadFMConfig.from_preset(name, **overrides)
