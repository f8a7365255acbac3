"""Loading RadFM's released ``pytorch_model.bin`` and the official state-dict listing.

The released checkpoint (``MultiLLaMAForCausalLM`` saved with transformers 4.28.1) holds ``lang_model.*`` then
``embedding_layer.*``. Besides the weights this re-implementation uses it contains:

* legacy buffers: ``lang_model.model.layers.L.self_attn.rotary_emb.inv_freq`` (recomputed from the config here)
  and ``embedding_layer.bert_model.embeddings.position_ids``;
* unused heads (never on the generation or training-loss path): ``embedding_layer.bert_model.*``,
  ``bert_projection_fc.*``, ``transformer_decoder.*``, ``transformer_decoder_mlp.*``, ``cls_head.*``,
  ``output_upscaling.*``.

Public API
----------
``load_official_checkpoint(path, config=None, drop_unused=True, device="cpu", dtype=None)
-> (RadFMForCausalLM, OfficialLoadReport)``
    The model's ``config.tokenizer`` is RadFM's released tokenizer (``shards_spec.tokenizer.RADFM_RELEASED``).
    Builds the model on ``meta``, memory-maps the checkpoint (``torch.load(mmap=True, weights_only=True)``) and
    assigns its tensors (no second full copy; with ``device="cpu"`` and no ``dtype`` the parameters stay backed by
    the mapped file, copy-on-write), re-ties the shared embedding and recomputes the rotary buffers.
    ``drop_unused=False`` keeps the unused-head tensors in ``report.unused_tensors`` instead of discarding them.
    Raises ``ValueError`` on missing keys, unknown keys or shape mismatches.
``OfficialLoadReport``
    ``dropped`` (group -> key count), ``dropped_numel`` (group -> elements), ``legacy_buffers`` (group -> count),
    ``inv_freq_matches`` (legacy rotary buffers equal the recomputed ones, or ``None`` if absent),
    ``embedding_source`` (which key filled the shared embedding), ``unused_tensors``; ``summary()``.
``UnusedHeadSizes``
    Sizes of the unused heads (RadFM's by default; ``UnusedHeadSizes.tiny()`` for tests).
``official_state_dict_shapes(config, heads=UnusedHeadSizes(), include_unused=True, include_legacy=True)
-> dict[name, (shape, dtype)]``
    The full released key listing (RadFM report §6.3) generated for any config, in checkpoint order.
``UNUSED_GROUPS``, ``LEGACY_BUFFER_GROUPS``, ``classify_key(name) -> (kind, group)``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from shards_spec.tokenizer import RADFM_RELEASED

from .config import RadFMConfig
from .modeling import LLM_EMBEDDING_KEY, SHARED_EMBEDDING_KEY, RadFMForCausalLM

#: Unused heads of RadFM's embedding layer, as state-dict prefixes (dropped on load by default).
UNUSED_GROUPS = (
    "embedding_layer.bert_model.",
    "embedding_layer.bert_projection_fc.",
    "embedding_layer.transformer_decoder.",
    "embedding_layer.transformer_decoder_mlp.",
    "embedding_layer.cls_head.",
    "embedding_layer.output_upscaling.",
)

#: Persistent buffers of old transformers versions that this model does not store.
LEGACY_BUFFER_GROUPS = {
    "rotary_emb.inv_freq": re.compile(r"^lang_model\.model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$"),
    "bert_model.embeddings.position_ids": re.compile(r"^embedding_layer\.bert_model\.embeddings\.position_ids$"),
}


def classify_key(name: str) -> tuple[str, str | None]:
    """``("legacy", group)``, ``("unused", group)`` or ``("model", None)`` for a checkpoint key."""
    for group, pattern in LEGACY_BUFFER_GROUPS.items():
        if pattern.match(name):
            return "legacy", group
    # Longest prefix first: "transformer_decoder_mlp." must not count as "transformer_decoder.".
    for prefix in sorted(UNUSED_GROUPS, key=len, reverse=True):
        if name.startswith(prefix):
            return "unused", prefix[len("embedding_layer."):-1]
    return "model", None


# ---------------------------------------------------------------------------------------------- official listing
@dataclass(frozen=True)
class UnusedHeadSizes:
    """Sizes of RadFM's unused heads. The decoder/upscaling widths follow ``vision_dim`` as in RadFM."""

    bert_hidden: int = 768
    bert_layers: int = 12
    bert_intermediate: int = 3072
    bert_vocab: int = 30522
    bert_max_positions: int = 512
    bert_type_vocab: int = 2
    decoder_layers: int = 4
    decoder_ffn: int = 2048

    @classmethod
    def tiny(cls) -> UnusedHeadSizes:
        return cls(bert_hidden=16, bert_layers=2, bert_intermediate=32, bert_vocab=50, bert_max_positions=24,
                   decoder_layers=2, decoder_ffn=24)


Shape = tuple[int, ...]


def _llama_shapes(c: RadFMConfig, include_legacy: bool) -> dict[str, tuple[Shape, torch.dtype]]:
    f = torch.float32
    h, i = c.hidden_size, c.intermediate_size
    head_dim = h // c.num_attention_heads
    kv = (c.num_key_value_heads or c.num_attention_heads) * head_dim
    out: dict[str, tuple[Shape, torch.dtype]] = {"lang_model.model.embed_tokens.weight": ((c.vocab_size, h), f)}
    for L in range(c.num_hidden_layers):
        p = f"lang_model.model.layers.{L}."
        out[p + "self_attn.q_proj.weight"] = ((h, h), f)
        out[p + "self_attn.k_proj.weight"] = ((kv, h), f)
        out[p + "self_attn.v_proj.weight"] = ((kv, h), f)
        out[p + "self_attn.o_proj.weight"] = ((h, h), f)
        if include_legacy:
            out[p + "self_attn.rotary_emb.inv_freq"] = ((head_dim // 2,), f)
        out[p + "mlp.gate_proj.weight"] = ((i, h), f)
        out[p + "mlp.up_proj.weight"] = ((i, h), f)
        out[p + "mlp.down_proj.weight"] = ((h, i), f)
        out[p + "input_layernorm.weight"] = ((h,), f)
        out[p + "post_attention_layernorm.weight"] = ((h,), f)
    out["lang_model.model.norm.weight"] = ((h,), f)
    out["lang_model.lm_head.weight"] = ((c.vocab_size, h), f)
    return out


def _bert_shapes(s: UnusedHeadSizes, include_legacy: bool) -> dict[str, tuple[Shape, torch.dtype]]:
    f = torch.float32
    d, inter = s.bert_hidden, s.bert_intermediate
    p = "embedding_layer.bert_model."
    out: dict[str, tuple[Shape, torch.dtype]] = {}
    if include_legacy:
        out[p + "embeddings.position_ids"] = ((1, s.bert_max_positions), torch.int64)
    out[p + "embeddings.word_embeddings.weight"] = ((s.bert_vocab, d), f)
    out[p + "embeddings.position_embeddings.weight"] = ((s.bert_max_positions, d), f)
    out[p + "embeddings.token_type_embeddings.weight"] = ((s.bert_type_vocab, d), f)
    out[p + "embeddings.LayerNorm.weight"] = ((d,), f)
    out[p + "embeddings.LayerNorm.bias"] = ((d,), f)
    for L in range(s.bert_layers):
        q = f"{p}encoder.layer.{L}."
        for name in ("query", "key", "value"):
            out[q + f"attention.self.{name}.weight"] = ((d, d), f)
            out[q + f"attention.self.{name}.bias"] = ((d,), f)
        out[q + "attention.output.dense.weight"] = ((d, d), f)
        out[q + "attention.output.dense.bias"] = ((d,), f)
        out[q + "attention.output.LayerNorm.weight"] = ((d,), f)
        out[q + "attention.output.LayerNorm.bias"] = ((d,), f)
        out[q + "intermediate.dense.weight"] = ((inter, d), f)
        out[q + "intermediate.dense.bias"] = ((inter,), f)
        out[q + "output.dense.weight"] = ((d, inter), f)
        out[q + "output.dense.bias"] = ((d,), f)
        out[q + "output.LayerNorm.weight"] = ((d,), f)
        out[q + "output.LayerNorm.bias"] = ((d,), f)
    out[p + "pooler.dense.weight"] = ((d, d), f)
    out[p + "pooler.dense.bias"] = ((d,), f)
    return out


def official_state_dict_shapes(
    config: RadFMConfig,
    heads: UnusedHeadSizes = UnusedHeadSizes(),
    include_unused: bool = True,
    include_legacy: bool = True,
) -> dict[str, tuple[Shape, torch.dtype]]:
    """RadFM's released state-dict listing (names -> (shape, dtype)) for ``config``, in checkpoint order.

    Generated from the rules of the RadFM report §6.3: ``lang_model.*`` (LLaMA, transformers 4.28.1 layout with
    per-layer ``rotary_emb.inv_freq``), then ``embedding_layer.*`` in module-registration order.
    ``include_unused=False`` leaves out the unused heads; ``include_legacy=False`` the legacy buffers.
    """
    f = torch.float32
    c = config
    vd, hid = c.vision_dim, c.hidden_size
    out = _llama_shapes(c, include_legacy)
    e = "embedding_layer."
    out[e + "weight"] = ((c.vocab_size, hid), f)
    out[e + "figure_token_weight"] = ((2, hid), f)
    if include_unused:
        out.update(_bert_shapes(heads, include_legacy))
        out[e + "bert_projection_fc.weight"] = ((vd, heads.bert_hidden), f)
        out[e + "bert_projection_fc.bias"] = ((vd,), f)
    v = e + "vision_encoder."
    out[v + "to_patch_embedding.1.weight"] = ((c.patch_dim,), f)
    out[v + "to_patch_embedding.1.bias"] = ((c.patch_dim,), f)
    out[v + "to_patch_embedding.2.weight"] = ((vd, c.patch_dim), f)
    out[v + "to_patch_embedding.2.bias"] = ((vd,), f)
    out[v + "to_patch_embedding.3.weight"] = ((vd,), f)
    out[v + "to_patch_embedding.3.bias"] = ((vd,), f)
    out[v + "pos_embedding.row_embed.weight"] = ((c.pos_row_size, c.pos_embed_dim), f)
    out[v + "pos_embedding.col_embed.weight"] = ((c.pos_col_size, c.pos_embed_dim), f)
    out[v + "pos_embedding.dep_embed.weight"] = ((c.pos_dep_size, c.pos_embed_dim), f)
    inner = c.vision_heads * c.vision_dim_head
    for L in range(c.vision_depth):
        p = f"{v}transformer.layers.{L}."
        out[p + "0.norm.weight"] = ((vd,), f)
        out[p + "0.norm.bias"] = ((vd,), f)
        out[p + "0.fn.to_qkv.weight"] = ((3 * inner, vd), f)
        out[p + "0.fn.to_out.0.weight"] = ((vd, inner), f)
        out[p + "0.fn.to_out.0.bias"] = ((vd,), f)
        out[p + "1.norm.weight"] = ((vd,), f)
        out[p + "1.norm.bias"] = ((vd,), f)
        out[p + "1.fn.net.0.weight"] = ((c.vision_mlp_dim, vd), f)
        out[p + "1.fn.net.0.bias"] = ((c.vision_mlp_dim,), f)
        out[p + "1.fn.net.3.weight"] = ((vd, c.vision_mlp_dim), f)
        out[p + "1.fn.net.3.bias"] = ((vd,), f)
    if include_unused:
        up1, up2 = vd // 4, vd // 8
        u = e + "output_upscaling."
        out[u + "0.weight"] = ((vd, up1, 2, 2, 2), f)
        out[u + "0.bias"] = ((up1,), f)
        for name in ("weight", "bias", "running_mean", "running_var"):
            out[u + f"1.{name}"] = ((up1,), f)
        out[u + "1.num_batches_tracked"] = ((), torch.int64)
        out[u + "3.weight"] = ((up1, up2, 2, 2, 2), f)
        out[u + "3.bias"] = ((up2,), f)
        for L in range(heads.decoder_layers):
            p = f"{e}transformer_decoder.layers.{L}."
            for attn in ("self_attn", "multihead_attn"):
                out[p + f"{attn}.in_proj_weight"] = ((3 * vd, vd), f)
                out[p + f"{attn}.in_proj_bias"] = ((3 * vd,), f)
                out[p + f"{attn}.out_proj.weight"] = ((vd, vd), f)
                out[p + f"{attn}.out_proj.bias"] = ((vd,), f)
            out[p + "linear1.weight"] = ((heads.decoder_ffn, vd), f)
            out[p + "linear1.bias"] = ((heads.decoder_ffn,), f)
            out[p + "linear2.weight"] = ((vd, heads.decoder_ffn), f)
            out[p + "linear2.bias"] = ((vd,), f)
            for norm in ("norm1", "norm2", "norm3"):
                out[p + f"{norm}.weight"] = ((vd,), f)
                out[p + f"{norm}.bias"] = ((vd,), f)
        out[e + "transformer_decoder.norm.weight"] = ((vd,), f)
        out[e + "transformer_decoder.norm.bias"] = ((vd,), f)
        out[e + "transformer_decoder_mlp.0.weight"] = ((up1, vd), f)
        out[e + "transformer_decoder_mlp.0.bias"] = ((up1,), f)
        out[e + "transformer_decoder_mlp.2.weight"] = ((up2, up1), f)
        out[e + "transformer_decoder_mlp.2.bias"] = ((up2,), f)
    pinner = c.perceiver_heads * c.perceiver_dim_head
    p = e + "perceiver."
    out[p + "latents"] = ((c.num_latents, vd), f)
    for L in range(c.perceiver_depth):
        q = f"{p}layers.{L}."
        for norm in ("norm_media", "norm_latents"):
            out[q + f"0.{norm}.weight"] = ((vd,), f)
            out[q + f"0.{norm}.bias"] = ((vd,), f)
        out[q + "0.to_q.weight"] = ((pinner, vd), f)
        out[q + "0.to_kv.weight"] = ((2 * pinner, vd), f)
        out[q + "0.to_out.weight"] = ((vd, pinner), f)
        out[q + "1.0.weight"] = ((vd,), f)
        out[q + "1.0.bias"] = ((vd,), f)
        out[q + "1.1.weight"] = ((vd * c.perceiver_ff_mult, vd), f)
        out[q + "1.3.weight"] = ((vd, vd * c.perceiver_ff_mult), f)
    out[p + "norm.weight"] = ((vd,), f)
    out[p + "norm.bias"] = ((vd,), f)
    out[e + "fc.weight"] = ((hid, vd), f)
    out[e + "fc.bias"] = ((hid,), f)
    if include_unused:
        out[e + "cls_head.weight"] = ((1, up2), f)
        out[e + "cls_head.bias"] = ((1,), f)
    return out


# ---------------------------------------------------------------------------------------------- loading
@dataclass
class OfficialLoadReport:
    """What ``load_official_checkpoint`` did with the keys of the released checkpoint."""

    loaded: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    dropped_numel: dict[str, int] = field(default_factory=dict)
    legacy_buffers: dict[str, int] = field(default_factory=dict)
    inv_freq_matches: bool | None = None
    embedding_source: str = ""
    unused_tensors: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def summary(self) -> str:
        lines = [f"loaded {self.loaded} tensors; shared embedding from {self.embedding_source}"]
        for group, n in self.dropped.items():
            lines.append(f"unused {group}: {n} tensors, {self.dropped_numel[group]:,} elements "
                         f"({'kept in report' if self.unused_tensors else 'dropped'})")
        for group, n in self.legacy_buffers.items():
            lines.append(f"legacy buffer {group}: {n} dropped")
        if self.inv_freq_matches is not None:
            lines.append(f"legacy rotary inv_freq equals recomputed: {self.inv_freq_matches}")
        return "\n".join(lines)


def load_official_checkpoint(
    path: str | Path,
    config: RadFMConfig | None = None,
    drop_unused: bool = True,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
) -> tuple[RadFMForCausalLM, OfficialLoadReport]:
    """Load RadFM's released ``pytorch_model.bin`` into a ``RadFMForCausalLM`` (eval mode). See the module docstring.

    The model records RadFM's tokenizer (``config.tokenizer`` = ``RADFM_RELEASED``): the weights were trained on
    its ids."""
    config = dataclasses.replace(config or RadFMConfig.from_preset("radfm-13b"), tokenizer=RADFM_RELEASED.to_dict())
    raw = torch.load(str(path), map_location="cpu", mmap=True, weights_only=True)
    if not isinstance(raw, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(raw).__name__})")

    report = OfficialLoadReport()
    expected = official_state_dict_shapes(config, include_unused=False, include_legacy=False)
    state: dict[str, torch.Tensor] = {}
    legacy_inv_freq: list[torch.Tensor] = []
    unknown: list[str] = []
    for name, tensor in raw.items():
        kind, group = classify_key(name)
        if kind == "legacy":
            report.legacy_buffers[group] = report.legacy_buffers.get(group, 0) + 1
            if group == "rotary_emb.inv_freq":
                legacy_inv_freq.append(tensor)
        elif kind == "unused":
            report.dropped[group] = report.dropped.get(group, 0) + 1
            report.dropped_numel[group] = report.dropped_numel.get(group, 0) + tensor.numel()
            if not drop_unused:
                report.unused_tensors[name] = tensor
        elif name in expected:
            state[name] = tensor
        else:
            unknown.append(name)
    del raw

    # RadFM's forward read the text rows through embedding_layer.weight (same Parameter as embed_tokens).
    if SHARED_EMBEDDING_KEY in state:
        shared = state.pop(SHARED_EMBEDDING_KEY)
        other = state.get(LLM_EMBEDDING_KEY)
        if other is not None and not _same_tensor(shared, other):
            report.embedding_source = f"{SHARED_EMBEDDING_KEY} (differs from {LLM_EMBEDDING_KEY}; that copy ignored)"
        else:
            report.embedding_source = SHARED_EMBEDDING_KEY
        state[LLM_EMBEDDING_KEY] = shared
    elif LLM_EMBEDDING_KEY in state:
        report.embedding_source = LLM_EMBEDDING_KEY

    expected.pop(SHARED_EMBEDDING_KEY)
    missing = [k for k in expected if k not in state]
    wrong = [f"{k}: {tuple(state[k].shape)} != {expected[k][0]}" for k in expected
             if k in state and tuple(state[k].shape) != expected[k][0]]
    if unknown or missing or wrong:
        raise ValueError(
            f"{path} does not match the RadFM layout for this config: "
            f"unknown keys {unknown[:10]} ({len(unknown)}), missing keys {missing[:10]} ({len(missing)}), "
            f"shape mismatches {wrong[:10]} ({len(wrong)})"
        )

    for name, tensor in state.items():
        if tensor.is_floating_point() and dtype is not None and tensor.dtype != dtype:
            tensor = tensor.to(dtype)
        state[name] = tensor.to(device)
    report.loaded = len(state)

    model = RadFMForCausalLM._from_state_dict(config, state, device)
    if legacy_inv_freq:
        fresh = model.lang_model.model.rotary_emb.inv_freq.float().cpu()
        report.inv_freq_matches = all(
            t.shape == fresh.shape and torch.allclose(t.float(), fresh, rtol=1e-6, atol=0) for t in legacy_inv_freq
        )
    return model, report


def _same_tensor(a: torch.Tensor, b: torch.Tensor) -> bool:
    if a.shape != b.shape:
        return False
    if a.data_ptr() == b.data_ptr() and a.stride() == b.stride():
        return True
    return bool(torch.equal(a, b))
