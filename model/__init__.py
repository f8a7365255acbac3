"""RadFM model: LLaMA + 3D ViT + perceiver resampler, with RadFM's state-dict names.

Public API (details in each module's docstring)
-----------------------------------------------
Configuration (``model.config``)
    ``RadFMConfig``, ``PRESETS`` (``"radfm-13b"``, ``"tiny"``), ``get_config(name, **overrides)``
Modules
    ``ViT3D``, ``PositionEmbedding3D`` (``model.vision``); ``PerceiverResampler`` (``model.perceiver``);
    ``RadFMEmbedding`` (``model.embedding``); ``RadFMForCausalLM``, ``RadFMOutput`` (``model.modeling``)
Functions
    ``embed_image_tokens`` / ``one_hot_embed_image_tokens`` (gather lookup and RadFM's one-hot reference),
    ``causal_lm_loss``, ``position_ids_from_attention_mask``
Checkpoints (``model.checkpoint``)
    ``load_official_checkpoint``, ``OfficialLoadReport``, ``official_state_dict_shapes``, ``UnusedHeadSizes``;
    ``RadFMForCausalLM.save_pretrained`` / ``RadFMForCausalLM.from_pretrained`` (safetensors)

Example::

    from model import RadFMForCausalLM, get_config
    model = RadFMForCausalLM(get_config("tiny"))
    out = model(input_ids, attention_mask, vision_x, labels=labels, loss_weight=loss_weight)
    out.loss.backward()
    new_tokens = model.generate(prompt_ids, vision_x, attention_mask=prompt_mask, max_new_tokens=64)
"""

from .checkpoint import (
    OfficialLoadReport,
    UnusedHeadSizes,
    load_official_checkpoint,
    official_state_dict_shapes,
)
from .config import PRESETS, RadFMConfig, get_config
from .embedding import RadFMEmbedding, embed_image_tokens, one_hot_embed_image_tokens
from .modeling import RadFMForCausalLM, RadFMOutput, causal_lm_loss, position_ids_from_attention_mask
from .perceiver import PerceiverResampler
from .vision import PositionEmbedding3D, ViT3D

__all__ = [
    "PRESETS",
    "OfficialLoadReport",
    "PerceiverResampler",
    "PositionEmbedding3D",
    "RadFMConfig",
    "RadFMEmbedding",
    "RadFMForCausalLM",
    "RadFMOutput",
    "UnusedHeadSizes",
    "ViT3D",
    "causal_lm_loss",
    "embed_image_tokens",
    "get_config",
    "load_official_checkpoint",
    "official_state_dict_shapes",
    "one_hot_embed_image_tokens",
    "position_ids_from_attention_mask",
]
