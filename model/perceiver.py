"""RadFM's perceiver resampler (Flamingo style, no media/frame time embeddings).

Public API
----------
``PerceiverAttention(dim, heads, dim_head)``
    ``forward(media [N, n, dim], latents [N, m, dim]) -> [N, m, dim]``: queries from LN(latents); keys and values
    from concat(LN(media), LN(latents)) along the token axis; bias-free projections; scale 1/sqrt(dim_head).
``PerceiverResampler(config)``
    ``forward(media [N, n, vision_dim]) -> [N, num_latents, vision_dim]``. Each row of N (one image) is resampled
    independently by ``perceiver_depth`` blocks of (attention + residual, feed-forward + residual), then LayerNorm.

State-dict names equal RadFM's: ``latents``, ``layers.L.0.{norm_media,norm_latents,to_q,to_kv,to_out}``,
``layers.L.1.{0,1,3}`` (LayerNorm, Linear up, Linear down), ``norm``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import RadFMConfig


class PerceiverAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, media: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        media = self.norm_media(media)
        latents = self.norm_latents(latents)
        b, m, _ = latents.shape
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat([media, latents], dim=1)).chunk(2, dim=-1)
        q, k, v = (t.view(b, t.shape[1], self.heads, -1).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.to_out(out.transpose(1, 2).reshape(b, m, -1))


def perceiver_feed_forward(dim: int, mult: int) -> nn.Sequential:
    """LayerNorm -> Linear(dim, dim*mult, no bias) -> GELU -> Linear(dim*mult, dim, no bias)."""
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, dim * mult, bias=False),
        nn.GELU(),
        nn.Linear(dim * mult, dim, bias=False),
    )


class PerceiverResampler(nn.Module):
    def __init__(self, config: RadFMConfig):
        super().__init__()
        dim = config.vision_dim
        self.latents = nn.Parameter(torch.randn(config.num_latents, dim))
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PerceiverAttention(dim, config.perceiver_heads, config.perceiver_dim_head),
                    perceiver_feed_forward(dim, config.perceiver_ff_mult),
                ]
            )
            for _ in range(config.perceiver_depth)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, media: torch.Tensor) -> torch.Tensor:
        latents = self.latents.to(media.dtype).expand(media.shape[0], -1, -1)
        for attn, ff in self.layers:
            latents = attn(media, latents) + latents
            latents = ff(latents) + latents
        return self.norm(latents)
