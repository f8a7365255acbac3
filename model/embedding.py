"""Image-token embedding: text ids, ``<image>``/``</image>`` and ``<imageK>`` ids -> LLM input embeddings.

Id ranges (``V`` = ``config.vocab_size``, 32000 for LLaMA; ``m`` = ``config.num_latents``, 32):

* ``0 <= id < V``: text token, row ``id`` of the LLM's input embedding (the same Parameter as
  ``lang_model.model.embed_tokens.weight`` once the embedding sits inside ``RadFMForCausalLM``);
* ``V`` / ``V+1``: ``<image>`` / ``</image>``, rows 0 / 1 of ``figure_token_weight``;
* ``V+2+K``: ``<imageK>``, row ``K`` of *that sample's* image embeddings, where row ``s*m + n`` is latent ``n`` of
  image ``s`` (``K < m * S`` with ``S`` the number of image slots in the batch).

RadFM computed this as one-hot(ids) @ (per-sample concatenated matrix of V+2+m*S rows); here it is a gather plus
two masked scatters, with the same result and O(B*L*hidden) memory.

Public API
----------
``RadFMEmbedding(config)``
    Module with ``weight`` [V, hidden], ``figure_token_weight`` [2, hidden], ``vision_encoder`` (``ViT3D``),
    ``perceiver`` (``PerceiverResampler``) and ``fc`` (Linear vision_dim -> hidden).
    ``encode_images(vision_x [B, S, C, H, W, D]) -> [B, S*m, hidden]``;
    ``forward(input_ids [B, L], vision_x=None) -> inputs_embeds [B, L, hidden]``.
``embed_image_tokens(input_ids, text_weight, figure_weight, image_embeds) -> [B, L, hidden]``
    The gather/scatter lookup (functional form used by the module and the benchmark).
``one_hot_embed_image_tokens(input_ids, text_weight, figure_weight, image_embeds) -> [B, L, hidden]``
    RadFM's one-hot matmul formulation, kept as the reference for tests and ``bench/embedding.py``.
``check_token_ids(input_ids, vocab_size, num_image_rows)``
    Raises ``ValueError`` for negative ids or image-token ids beyond the batch's image rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import RadFMConfig
from .perceiver import PerceiverResampler
from .vision import ViT3D

NUM_FIGURE_TOKENS = 2


def check_token_ids(input_ids: torch.Tensor, vocab_size: int, num_image_rows: int) -> None:
    """Raise ``ValueError`` unless every id is in ``[0, vocab_size + 2 + num_image_rows)``."""
    if input_ids.numel() == 0:
        return
    lo, hi = int(input_ids.min()), int(input_ids.max())
    limit = vocab_size + NUM_FIGURE_TOKENS + num_image_rows
    if lo < 0:
        raise ValueError(f"input_ids contain a negative id ({lo})")
    if hi >= limit:
        raise ValueError(
            f"input_ids contain image-token id {hi} (<image{hi - vocab_size - NUM_FIGURE_TOKENS}>), but the batch "
            f"provides only {num_image_rows} image-token rows, so ids must be < {limit} "
            f"(= {vocab_size} text + {NUM_FIGURE_TOKENS} figure + {num_image_rows} image rows). "
            "Is vision_x missing images, or do the image spans refer to more images than were given?"
        )


def embed_image_tokens(
    input_ids: torch.Tensor,
    text_weight: torch.Tensor,
    figure_weight: torch.Tensor,
    image_embeds: torch.Tensor | None,
) -> torch.Tensor:
    """Gather/scatter embedding lookup.

    Args:
        input_ids: ``[B, L]`` integer ids.
        text_weight: ``[V, H]`` text embedding table.
        figure_weight: ``[2, H]`` rows for ``<image>`` / ``</image>``.
        image_embeds: ``[B, R, H]`` per-sample image-token rows (``R = S * num_latents``), or ``None``.

    Returns ``[B, L, H]`` in ``text_weight``'s dtype. Differentiable w.r.t. all three tables.
    """
    vocab = text_weight.shape[0]
    num_rows = 0 if image_embeds is None else image_embeds.shape[1]
    check_token_ids(input_ids, vocab, num_rows)

    is_text = input_ids < vocab
    # Text rows for every position (non-text positions read row 0 and are overwritten below; the overwrite
    # also blocks their gradient into row 0).
    embeds = F.embedding(torch.where(is_text, input_ids, 0), text_weight)

    is_figure = (input_ids >= vocab) & (input_ids < vocab + NUM_FIGURE_TOKENS)
    figure_ids = input_ids[is_figure] - vocab
    embeds[is_figure] = figure_weight[figure_ids].to(embeds.dtype)

    if num_rows:
        is_image = input_ids >= vocab + NUM_FIGURE_TOKENS
        batch_idx = is_image.nonzero(as_tuple=True)[0]  # row-major, same order as input_ids[is_image]
        row_idx = input_ids[is_image] - (vocab + NUM_FIGURE_TOKENS)
        embeds[is_image] = image_embeds[batch_idx, row_idx].to(embeds.dtype)
    return embeds


def one_hot_embed_image_tokens(
    input_ids: torch.Tensor,
    text_weight: torch.Tensor,
    figure_weight: torch.Tensor,
    image_embeds: torch.Tensor | None,
) -> torch.Tensor:
    """RadFM's formulation: ``one_hot(ids, V+2+R) @ cat([text; figure] repeated per sample, image rows)``.

    Memory is O(B*L*(V+2+R) + B*(V+2+R)*H). Reference only; use ``embed_image_tokens``.
    """
    b = input_ids.shape[0]
    dtype = text_weight.dtype
    table = torch.cat([text_weight, figure_weight.to(dtype)], dim=0)  # [V+2, H]
    table = table.unsqueeze(0).expand(b, -1, -1)
    if image_embeds is not None and image_embeds.shape[1]:
        table = torch.cat([table, image_embeds.to(dtype)], dim=1)  # [B, V+2+R, H]
    one_hot = F.one_hot(input_ids, table.shape[1]).to(dtype)  # [B, L, V+2+R]
    return torch.matmul(one_hot, table)


class RadFMEmbedding(nn.Module):
    """RadFM's ``embedding_layer``: vision tower + perceiver + projection + image-token lookup."""

    def __init__(self, config: RadFMConfig):
        super().__init__()
        self.config = config
        self.num_latents = config.num_latents
        # Replaced by the LLM's embed_tokens Parameter inside RadFMForCausalLM (shared, as in RadFM).
        self.weight = nn.Parameter(torch.empty(config.vocab_size, config.hidden_size))
        self.figure_token_weight = nn.Parameter(torch.empty(NUM_FIGURE_TOKENS, config.hidden_size))
        self.vision_encoder = ViT3D(config)
        self.perceiver = PerceiverResampler(config)
        self.fc = nn.Linear(config.vision_dim, config.hidden_size)
        nn.init.normal_(self.weight, std=config.initializer_range)
        # RadFM used randn (std 1) here; std = initializer_range keeps the rows on the scale of LLaMA's embeddings.
        nn.init.normal_(self.figure_token_weight, std=config.initializer_range)

    def encode_images(self, vision_x: torch.Tensor) -> torch.Tensor:
        """``[B, S, C, H, W, D]`` -> ``[B, S*m, hidden]`` (m = num_latents); row ``s*m + n`` is latent n of image s."""
        if vision_x.ndim != 6:
            raise ValueError(f"expected vision_x [B, S, C, H, W, D], got {tuple(vision_x.shape)}")
        b, s = vision_x.shape[:2]
        dtype = self.fc.weight.dtype
        tokens = self.vision_encoder(vision_x.flatten(0, 1).to(dtype))  # [B*S, N, vision_dim]
        latents = self.perceiver(tokens)  # [B*S, num_latents, vision_dim]
        return self.fc(latents).reshape(b, s * self.num_latents, -1)

    def forward(self, input_ids: torch.Tensor, vision_x: torch.Tensor | None = None) -> torch.Tensor:
        if vision_x is not None and vision_x.shape[0] != input_ids.shape[0]:
            raise ValueError(f"batch size mismatch: input_ids {input_ids.shape[0]}, vision_x {vision_x.shape[0]}")
        image_embeds = None if vision_x is None or vision_x.shape[1] == 0 else self.encode_images(vision_x)
        return embed_image_tokens(input_ids, self.weight, self.figure_token_weight, image_embeds)
