"""Tests of checkpoint handling: the official RadFM layout, load_official_checkpoint, save/from_pretrained."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
from safetensors import safe_open

from model import (
    RadFMForCausalLM,
    UnusedHeadSizes,
    get_config,
    load_official_checkpoint,
    official_state_dict_shapes,
)
from model.checkpoint import classify_key
from shards_spec.layout import ImageTokenIds
from shards_spec.tokenizer import RADFM_RELEASED

TOK = ImageTokenIds(32000)
TINY_HEADS = UnusedHeadSizes.tiny()
UNUSED = ("bert_model", "bert_projection_fc", "transformer_decoder", "transformer_decoder_mlp", "cls_head",
          "output_upscaling")


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _numel(listing, prefix: str) -> int:
    total = 0
    for name, (shape, _) in listing.items():
        if name.startswith(prefix):
            n = 1
            for s in shape:
                n *= s
            total += n
    return total


def _inputs(gen: torch.Generator):
    """Two left-padded rows: one with two images, one with one image (its second image slot is zero padding)."""
    rows = [
        [1, 50, 60, *TOK.span(0), 70, *TOK.span(1), 80, 90],
        [1, 40, 41, 42, *TOK.span(0), *range(43, 60)],
    ]
    length = max(map(len, rows))
    ids = torch.zeros(2, length, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, row in enumerate(rows):
        ids[b, length - len(row):] = torch.tensor(row)
        mask[b, length - len(row):] = 1
    vision_x = torch.zeros(2, 2, 3, 64, 64, 8)
    vision_x[0] = torch.randn(2, 3, 64, 64, 8, generator=gen)
    vision_x[1, 0] = torch.randn(3, 64, 64, 8, generator=gen)
    return ids, mask, vision_x


# ------------------------------------------------------------------------------------------------ listing
def test_official_listing_at_13b_equals_meta_model():
    cfg = get_config("radfm-13b")
    rss_before = _rss_bytes()
    with torch.device("meta"):
        model = RadFMForCausalLM(cfg)
    assert all(t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert _rss_bytes() - rss_before < 512 * 2**20  # nothing of the 13B weights was allocated

    full = official_state_dict_shapes(cfg)
    assert len([k for k in full if k.startswith("lang_model.")]) == 403
    assert len([k for k in full if k.startswith("embedding_layer.")]) == 505

    expected = official_state_dict_shapes(cfg, include_unused=False, include_legacy=False)
    state = model.state_dict()
    assert list(state) == list(expected)  # same names, same order as the released checkpoint
    for name, tensor in state.items():
        assert tuple(tensor.shape) == expected[name][0], name
    dropped = set(full) - set(expected)
    assert {classify_key(k)[0] for k in dropped} == {"legacy", "unused"}
    assert all(classify_key(k)[0] == "model" for k in expected)

    # Element counts from the RadFM report, §6.3.
    e = "embedding_layer."
    assert _numel(full, e + "weight") == 163_840_000
    assert _numel(full, e + "figure_token_weight") == 10_240
    assert _numel(full, e + "vision_encoder.") == 66_208_000
    assert _numel(full, e + "perceiver.") == 37_802_496
    assert _numel(full, e + "fc.") == 3_937_280
    assert _numel(full, e + "bert_model.") == 109_482_752
    assert _numel(full, e + "bert_projection_fc.") == 590_592
    assert _numel(full, e + "output_upscaling.") == 1_328_161
    assert _numel(full, e + "transformer_decoder.") == 31_513_088
    assert _numel(full, e + "transformer_decoder_mlp.") == 166_176
    assert _numel(full, e + "cls_head.") == 97
    llama_params = sum(p.numel() for p in model.lang_model.parameters())
    assert llama_params == 13_015_864_320
    assert _numel(expected, "lang_model.") == 13_015_864_320
    vision_path = sum(p.numel() for n, p in model.embedding_layer.named_parameters() if n != "weight")
    assert vision_path == 66_208_000 + 37_802_496 + 3_937_280 + 10_240


def test_official_listing_at_tiny_equals_model():
    cfg = get_config("tiny")
    state = RadFMForCausalLM(cfg).state_dict()
    expected = official_state_dict_shapes(cfg, include_unused=False, include_legacy=False)
    assert list(state) == list(expected)
    assert all(tuple(state[k].shape) == expected[k][0] for k in state)


# ------------------------------------------------------------------------------------------------ official loader
def write_official_tiny_checkpoint(path, reference: RadFMForCausalLM, gen: torch.Generator) -> dict:
    """torch.save a dict with every key of RadFM's release (tiny sizes), model tensors taken from ``reference``."""
    ref_state = reference.state_dict()
    inv_freq = reference.lang_model.model.rotary_emb.inv_freq
    out = {}
    for name, (shape, dtype) in official_state_dict_shapes(reference.config, TINY_HEADS).items():
        if name in ref_state:
            out[name] = ref_state[name]  # embedding_layer.weight and embed_tokens share storage, as in RadFM
        elif name.endswith("rotary_emb.inv_freq"):
            out[name] = inv_freq.clone()
        elif name.endswith("position_ids"):
            out[name] = torch.arange(shape[1]).unsqueeze(0)
        elif dtype == torch.int64:
            out[name] = torch.tensor(7)
        else:
            out[name] = torch.randn(shape, generator=gen)
    assert out["embedding_layer.weight"].data_ptr() == out["lang_model.model.embed_tokens.weight"].data_ptr()
    torch.save(out, path)
    return out


def test_load_official_checkpoint_tiny(tmp_path):
    cfg = get_config("tiny")
    torch.manual_seed(21)
    reference = RadFMForCausalLM(cfg).eval()
    path = tmp_path / "pytorch_model.bin"
    written = write_official_tiny_checkpoint(path, reference, torch.Generator().manual_seed(1))

    model, report = load_official_checkpoint(path, config=cfg)
    assert not model.training
    assert model.config.tokenizer_identity == RADFM_RELEASED and cfg.tokenizer is None  # bound to RadFM's tokenizer
    assert model.embeddings_tied()
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    # What was dropped, by group and count.
    n_bert = 5 + 16 * TINY_HEADS.bert_layers + 2  # embeddings (position_ids counts as legacy), layers, pooler
    assert report.dropped == {
        "bert_model": n_bert,
        "bert_projection_fc": 2,
        "output_upscaling": 9,
        "transformer_decoder": 18 * TINY_HEADS.decoder_layers + 2,
        "transformer_decoder_mlp": 4,
        "cls_head": 2,
    }
    assert report.legacy_buffers == {"rotary_emb.inv_freq": cfg.num_hidden_layers,
                                     "bert_model.embeddings.position_ids": 1}
    assert report.inv_freq_matches is True
    assert report.embedding_source == "embedding_layer.weight"
    assert report.loaded == len(reference.state_dict()) - 1
    assert report.unused_tensors == {}
    assert "bert_model" in report.summary()
    assert sum(report.dropped.values()) + sum(report.legacy_buffers.values()) + report.loaded + 1 == len(written)

    # Same tensors, same outputs; rotary buffers recomputed correctly.
    for name, tensor in reference.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
    rotary, ref_rotary = model.lang_model.model.rotary_emb, reference.lang_model.model.rotary_emb
    torch.testing.assert_close(rotary.inv_freq, ref_rotary.inv_freq)
    ids, mask, vision_x = _inputs(torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model(ids, mask, vision_x).logits, reference(ids, mask, vision_x).logits,
                                   rtol=0, atol=0)
        assert torch.equal(
            model.generate(ids, vision_x, attention_mask=mask, max_new_tokens=4, eos_token_id=None),
            reference.generate(ids, vision_x, attention_mask=mask, max_new_tokens=4, eos_token_id=None),
        )

    # drop_unused=False keeps the unused tensors available in the report.
    _, kept = load_official_checkpoint(path, config=cfg, drop_unused=False)
    assert len(kept.unused_tensors) == sum(kept.dropped.values())
    name = "embedding_layer.cls_head.weight"
    assert torch.equal(kept.unused_tensors[name], written[name])


def test_loaded_official_checkpoint_trains_with_tied_embedding(tmp_path):
    cfg = get_config("tiny")
    reference = RadFMForCausalLM(cfg)
    path = tmp_path / "pytorch_model.bin"
    write_official_tiny_checkpoint(path, reference, torch.Generator().manual_seed(3))
    model, _ = load_official_checkpoint(path, config=cfg, dtype=torch.float32)
    model.train()
    ids, mask, vision_x = _inputs(torch.Generator().manual_seed(4))
    labels = torch.where(ids < 32000, ids, -100)
    out = model(ids, mask, vision_x, labels=labels)
    out.loss.backward()
    shared = model.lang_model.model.embed_tokens.weight
    assert shared.grad is not None and shared.grad.abs().sum() > 0
    assert model.embedding_layer.figure_token_weight.grad.abs().sum() > 0


def test_load_official_checkpoint_rejects_wrong_layout(tmp_path):
    cfg = get_config("tiny")
    reference = RadFMForCausalLM(cfg)
    good = write_official_tiny_checkpoint(tmp_path / "good.bin", reference, torch.Generator().manual_seed(5))

    missing = {k: v for k, v in good.items() if k != "embedding_layer.fc.bias"}
    torch.save(missing, tmp_path / "missing.bin")
    with pytest.raises(ValueError, match=r"missing keys \['embedding_layer.fc.bias'\]"):
        load_official_checkpoint(tmp_path / "missing.bin", config=cfg)

    extra = {**good, "embedding_layer.something_new.weight": torch.zeros(2)}
    torch.save(extra, tmp_path / "extra.bin")
    with pytest.raises(ValueError, match="something_new"):
        load_official_checkpoint(tmp_path / "extra.bin", config=cfg)

    with pytest.raises(ValueError, match="shape mismatches"):
        load_official_checkpoint(tmp_path / "good.bin", config=get_config("tiny", vision_mlp_dim=100))


# ------------------------------------------------------------------------------------------------ save / load
def test_save_pretrained_roundtrip(tmp_path):
    cfg = get_config("tiny")
    torch.manual_seed(8)
    model = RadFMForCausalLM(cfg).eval()
    model.save_pretrained(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["config.json", "model.safetensors"]
    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert "embedding_layer.weight" not in keys and "lang_model.model.embed_tokens.weight" in keys
    assert len(keys) == len(model.state_dict()) - 1

    loaded = RadFMForCausalLM.from_pretrained(tmp_path / "ckpt")
    assert loaded.config == cfg
    assert loaded.embeddings_tied()
    assert not loaded.training
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    ids, mask, vision_x = _inputs(torch.Generator().manual_seed(9))
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, mask, vision_x).logits, model(ids, mask, vision_x).logits,
                                   rtol=0, atol=0)
    prompt = ids[:1]
    assert torch.equal(
        loaded.generate(prompt, vision_x[:1], max_new_tokens=5, eos_token_id=None),
        model.generate(prompt, vision_x[:1], max_new_tokens=5, eos_token_id=None),
    )

    half = RadFMForCausalLM.from_pretrained(tmp_path / "ckpt", dtype=torch.bfloat16)
    assert half.embeddings_tied() and half.embedding_layer.fc.weight.dtype == torch.bfloat16
    assert half.lang_model.model.rotary_emb.inv_freq.dtype == torch.float32
