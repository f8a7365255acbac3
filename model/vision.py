"""RadFM's 3D vision transformer and its learned 3D position embedding.

Public API
----------
``PositionEmbedding3D(config)``
    Learned row / column / depth tables (``row_embed``, ``col_embed``, ``dep_embed``, each ``vision_dim // 3`` wide).
    ``forward(h, w, d) -> [h*w*d, vision_dim]`` for a grid of h x w x d patches, using RadFM's index rule
    ``(i+1) * (table_rows // h) - 1`` (same for columns and depth), concatenated as (row, col, depth).
``ViT3D(config)``
    ``forward(images [N, C, H, W, D]) -> tokens [N, (H/p)(W/p)(D/fp), vision_dim]``.
    Patch order is height-major, then width, then depth; the flattened patch vector is ordered
    (p1, p2, pf, channel) with the channel fastest. Pre-norm transformer, no CLS token, no final norm.

State-dict names (relative to the ViT) equal RadFM's: ``to_patch_embedding.{1,2,3}``,
``pos_embedding.{row,col,dep}_embed``,
``transformer.layers.L.0.{norm,fn.to_qkv,fn.to_out.0}``, ``transformer.layers.L.1.{norm,fn.net.0,fn.net.3}``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops.layers.torch import Rearrange
from torch import nn

from .config import RadFMConfig


class PositionEmbedding3D(nn.Module):
    """Learned 3D position embedding: concat(row[i'], col[j'], dep[k']) for patch (i, j, k)."""

    def __init__(self, config: RadFMConfig):
        super().__init__()
        width = config.pos_embed_dim
        self.row_embed = nn.Embedding(config.pos_row_size, width)
        self.col_embed = nn.Embedding(config.pos_col_size, width)
        self.dep_embed = nn.Embedding(config.pos_dep_size, width)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # RadFM initialises the three tables with U(0, 1).
        for table in (self.row_embed, self.col_embed, self.dep_embed):
            nn.init.uniform_(table.weight)

    @staticmethod
    def table_indices(n: int, table_rows: int, device: torch.device | None = None) -> torch.Tensor:
        """RadFM's index rule: patch i of n uses row ``(i+1) * (table_rows // n) - 1``."""
        if not 1 <= n <= table_rows:
            raise ValueError(f"grid size {n} does not fit a position table with {table_rows} rows")
        return (torch.arange(n, device=device) + 1) * (table_rows // n) - 1

    def forward(self, h: int, w: int, d: int) -> torch.Tensor:
        device = self.row_embed.weight.device
        rows = self.row_embed(self.table_indices(h, self.row_embed.num_embeddings, device))  # [h, c]
        cols = self.col_embed(self.table_indices(w, self.col_embed.num_embeddings, device))  # [w, c]
        deps = self.dep_embed(self.table_indices(d, self.dep_embed.num_embeddings, device))  # [d, c]
        c = rows.shape[-1]
        pos = torch.cat(
            [
                rows[:, None, None, :].expand(h, w, d, c),
                cols[None, :, None, :].expand(h, w, d, c),
                deps[None, None, :, :].expand(h, w, d, c),
            ],
            dim=-1,
        )
        return pos.reshape(h * w * d, 3 * c)


class PreNorm(nn.Module):
    """``fn(LayerNorm(x))``; the residual is added by the caller."""

    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class FeedForward(nn.Module):
    """Linear -> GELU -> Dropout -> Linear -> Dropout (Linear layers at ``net.0`` and ``net.3``)."""

    def __init__(self, dim: int, hidden_dim: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Attention(nn.Module):
    """Multi-head self-attention: bias-free ``to_qkv``, softmax(QK^T / sqrt(dim_head)) with dropout, ``to_out.0``."""

    def __init__(self, dim: int, heads: int, dim_head: int, dropout: float):
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.dropout = dropout
        self.to_qkv = nn.Linear(dim, inner * 3, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = (t.view(b, n, self.heads, -1).transpose(1, 2) for t in self.to_qkv(x).chunk(3, dim=-1))
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class Transformer(nn.Module):
    """``depth`` pre-norm blocks: ``x = attn(LN(x)) + x; x = ff(LN(x)) + x``."""

    def __init__(self, dim: int, depth: int, heads: int, dim_head: int, mlp_dim: int, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [
                    PreNorm(dim, Attention(dim, heads, dim_head, dropout)),
                    PreNorm(dim, FeedForward(dim, mlp_dim, dropout)),
                ]
            )
            for _ in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attn, ff in self.layers:
            x = attn(x) + x
            x = ff(x) + x
        return x


class ViT3D(nn.Module):
    """RadFM's 3D ViT: patchify -> LN -> Linear -> LN, + 3D position embedding, dropout, transformer."""

    def __init__(self, config: RadFMConfig):
        super().__init__()
        p, fp = config.patch_size, config.frame_patch_size
        self.patch_size = p
        self.frame_patch_size = fp
        self.channels = config.image_channels
        self.to_patch_embedding = nn.Sequential(
            Rearrange("b c (h p1) (w p2) (f pf) -> b (h w f) (p1 p2 pf c)", p1=p, p2=p, pf=fp),
            nn.LayerNorm(config.patch_dim),
            nn.Linear(config.patch_dim, config.vision_dim),
            nn.LayerNorm(config.vision_dim),
        )
        self.pos_embedding = PositionEmbedding3D(config)
        self.dropout = nn.Dropout(config.vision_emb_dropout)
        self.transformer = Transformer(
            config.vision_dim,
            config.vision_depth,
            config.vision_heads,
            config.vision_dim_head,
            config.vision_mlp_dim,
            config.vision_dropout,
        )

    def grid_size(self, height: int, width: int, depth: int) -> tuple[int, int, int]:
        """Patch grid (h, w, d) of an image, checking that the patch sizes divide it."""
        p, fp = self.patch_size, self.frame_patch_size
        if height % p or width % p or depth % fp:
            raise ValueError(
                f"image size {height}x{width}x{depth} is not a multiple of the patch size {p}x{p}x{fp}"
            )
        return height // p, width // p, depth // fp

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 5 or images.shape[1] != self.channels:
            raise ValueError(f"expected images [N, {self.channels}, H, W, D], got {tuple(images.shape)}")
        h, w, d = self.grid_size(*images.shape[2:])
        x = self.to_patch_embedding(images)
        x = x + self.pos_embedding(h, w, d).to(x.dtype)
        x = self.dropout(x)
        return self.transformer(x)
