"""Tests of model/: config, ViT-3D, perceiver, image-token embedding, loss, training step, generation."""

from __future__ import annotations

import math
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch
import torch.nn.functional as F

from model import (
    PositionEmbedding3D,
    RadFMConfig,
    RadFMEmbedding,
    RadFMForCausalLM,
    ViT3D,
    causal_lm_loss,
    embed_image_tokens,
    get_config,
    one_hot_embed_image_tokens,
    position_ids_from_attention_mask,
)
from model.perceiver import PerceiverResampler
from shards_spec.layout import IGNORE_INDEX, IMAGE_SPAN_LEN, IMAGE_TOKENS_PER_IMAGE, ImageTokenIds

BASE_VOCAB = 32000
TOK = ImageTokenIds(BASE_VOCAB)
EOS = 2


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)


def tiny_model(**overrides) -> RadFMForCausalLM:
    torch.manual_seed(0)
    return RadFMForCausalLM(get_config("tiny", **overrides))


# ------------------------------------------------------------------------------------------------ config
def test_presets_and_json_roundtrip(tmp_path):
    big = get_config("radfm-13b")
    assert (big.hidden_size, big.intermediate_size, big.num_hidden_layers, big.num_attention_heads) == (
        5120, 13824, 40, 40)
    assert (big.vocab_size, big.max_position_embeddings, big.rms_norm_eps) == (32000, 2048, 1e-6)
    assert (big.vision_dim, big.vision_depth, big.vision_heads, big.vision_dim_head, big.vision_mlp_dim) == (
        768, 12, 8, 64, 2048)
    assert (big.patch_size, big.frame_patch_size, big.patch_dim, big.pos_embed_dim) == (32, 4, 12288, 256)
    assert (big.num_latents, big.perceiver_depth, big.perceiver_heads, big.perceiver_ff_mult) == (32, 6, 8, 4)
    llama = big.to_llama_config()
    assert llama.hidden_size == 5120 and llama.vocab_size == 32000 and not llama.tie_word_embeddings
    for name in ("tiny", "radfm-13b"):
        cfg = get_config(name)
        cfg.to_json_file(tmp_path / f"{name}.json")
        assert RadFMConfig.from_json_file(tmp_path / f"{name}.json") == cfg
    tiny = get_config("tiny", vision_depth=3)
    assert tiny.vision_depth == 3 and tiny.vocab_size == BASE_VOCAB
    with pytest.raises(ValueError):
        RadFMConfig.from_dict({**tiny.to_dict(), "bogus": 1})
    with pytest.raises(KeyError):
        get_config("nope")


def test_tiny_model_size_and_vocab():
    model = tiny_model()
    n = sum(p.numel() for p in model.parameters())
    assert 1_000_000 < n < 10_000_000
    # Image tokens are not in the LLM vocabulary: lm_head and embed_tokens have the base rows only.
    assert model.lang_model.lm_head.weight.shape[0] == BASE_VOCAB
    assert model.lang_model.model.embed_tokens.weight.shape[0] == BASE_VOCAB
    assert model.embedding_layer.weight is model.lang_model.model.embed_tokens.weight


# ------------------------------------------------------------------------------------------------ vision
@pytest.mark.parametrize("shape, n_tokens", [((512, 512, 4), 256), ((256, 256, 16), 256), ((64, 96, 8), 12)])
def test_vit_token_counts(shape, n_tokens):
    cfg = get_config("tiny")
    vit = ViT3D(cfg).eval()
    with torch.no_grad():
        out = vit(torch.randn(1, 3, *shape))
    assert out.shape == (1, n_tokens, cfg.vision_dim)


def test_vit_rejects_bad_shapes():
    vit = ViT3D(get_config("tiny"))
    with pytest.raises(ValueError, match="multiple of the patch size"):
        vit(torch.randn(1, 3, 64, 64, 6))
    with pytest.raises(ValueError, match="does not fit"):
        vit(torch.randn(1, 3, 32 * 17, 32, 4))  # 17 rows > 16-row table


def test_position_embedding_index_rule():
    cfg = get_config("tiny")
    pe = PositionEmbedding3D(cfg)
    assert PositionEmbedding3D.table_indices(16, 16).tolist() == list(range(16))  # 512 x 512
    assert PositionEmbedding3D.table_indices(8, 16).tolist() == [1, 3, 5, 7, 9, 11, 13, 15]  # 256 x 256
    assert PositionEmbedding3D.table_indices(1, 128).tolist() == [127]  # D = 4
    assert PositionEmbedding3D.table_indices(4, 128).tolist() == [31, 63, 95, 127]  # D = 16
    assert PositionEmbedding3D.table_indices(16, 128).tolist() == list(range(7, 128, 8))  # D = 64
    h, w, d = 8, 16, 4
    pos = pe(h, w, d)
    assert pos.shape == (h * w * d, cfg.vision_dim)
    row, col, dep = pe.row_embed.weight, pe.col_embed.weight, pe.dep_embed.weight
    for i, j, k in [(0, 0, 0), (3, 5, 2), (7, 15, 3)]:
        t = (i * w + j) * d + k  # height-major, then width, then depth
        expected = torch.cat([row[(i + 1) * 2 - 1], col[j], dep[(k + 1) * 32 - 1]])
        torch.testing.assert_close(pos[t], expected)


def test_patch_order_matches_radfm_layout():
    """Token t = (i*w + j)*d + k; inside a patch the vector is ordered (p1, p2, pf, channel), channel fastest."""
    vit = ViT3D(get_config("tiny"))
    img = torch.arange(3 * 64 * 96 * 8, dtype=torch.float32).reshape(1, 3, 64, 96, 8)
    patches = vit.to_patch_embedding[0](img)
    h, w, d = 2, 3, 2
    assert patches.shape == (1, h * w * d, 12288)
    for i, j, k in [(0, 0, 0), (1, 2, 1), (0, 1, 1)]:
        block = img[0, :, i * 32:(i + 1) * 32, j * 32:(j + 1) * 32, k * 4:(k + 1) * 4]  # [c, p1, p2, pf]
        torch.testing.assert_close(patches[0, (i * w + j) * d + k], block.permute(1, 2, 3, 0).reshape(-1))


def _manual_attention(x, to_qkv, to_out, heads):
    q, k, v = to_qkv(x).chunk(3, dim=-1)
    q, k, v = (t.reshape(*t.shape[:2], heads, -1).transpose(1, 2) for t in (q, k, v))
    attn = (q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])).softmax(-1)
    return to_out((attn @ v).transpose(1, 2).flatten(2))


def test_vit_matches_manual_reference():
    cfg = get_config("tiny")
    vit = ViT3D(cfg).eval()
    img = torch.randn(2, 3, 64, 64, 8)
    with torch.no_grad():
        x = vit.to_patch_embedding(img) + vit.pos_embedding(2, 2, 2)
        for attn, ff in vit.transformer.layers:
            x = _manual_attention(attn.norm(x), attn.fn.to_qkv, attn.fn.to_out, cfg.vision_heads) + x
            x = ff.fn.net[3](F.gelu(ff.fn.net[0](ff.norm(x)))) + x
        torch.testing.assert_close(vit(img), x, rtol=1e-5, atol=1e-5)


def test_perceiver_matches_manual_reference():
    cfg = get_config("tiny")
    perceiver = PerceiverResampler(cfg).eval()
    media = torch.randn(3, 20, cfg.vision_dim)
    with torch.no_grad():
        lat = perceiver.latents.expand(3, -1, -1)
        for attn, ff in perceiver.layers:
            m, l_ = attn.norm_media(media), attn.norm_latents(lat)
            q = attn.to_q(l_).reshape(3, -1, cfg.perceiver_heads, cfg.perceiver_dim_head).transpose(1, 2)
            k, v = attn.to_kv(torch.cat([m, l_], 1)).chunk(2, -1)
            k, v = (t.reshape(3, -1, cfg.perceiver_heads, cfg.perceiver_dim_head).transpose(1, 2) for t in (k, v))
            sim = (q / math.sqrt(cfg.perceiver_dim_head)) @ k.transpose(-1, -2)
            sim = sim - sim.amax(-1, keepdim=True)
            out = (sim.softmax(-1) @ v).transpose(1, 2).flatten(2)
            lat = attn.to_out(out) + lat
            lat = ff(lat) + lat
        expected = perceiver.norm(lat)
        got = perceiver(media)
    assert got.shape == (3, cfg.num_latents, cfg.vision_dim)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------------------------ embedding
def _random_ids(image_counts: list[int], length: int, gen: torch.Generator) -> torch.Tensor:
    """Random ids per sample: text ids, figure ids and placeholders of that sample's own images only."""
    rows = []
    for s in image_counts:
        ids = torch.randint(0, BASE_VOCAB, (length,), generator=gen)
        kinds = torch.randint(0, 3, (length,), generator=gen)
        ids = torch.where(kinds == 1, BASE_VOCAB + torch.randint(0, 2, (length,), generator=gen), ids)
        if s:
            img = TOK.first_placeholder + torch.randint(0, IMAGE_TOKENS_PER_IMAGE * s, (length,), generator=gen)
            ids = torch.where(kinds == 2, img, ids)
        rows.append(ids)
    return torch.stack(rows)


def test_gather_equals_one_hot_reference():
    gen = torch.Generator().manual_seed(7)
    hidden, image_counts = 24, [1, 3, 0, 2]
    s_max = max(image_counts)
    text = torch.randn(BASE_VOCAB, hidden, dtype=torch.float64)
    figure = torch.randn(2, hidden, dtype=torch.float64)
    images = torch.randn(len(image_counts), s_max * IMAGE_TOKENS_PER_IMAGE, hidden, dtype=torch.float64)
    ids = _random_ids(image_counts, 300, gen)
    assert (ids >= TOK.first_placeholder).any() and ((ids == TOK.start) | (ids == TOK.end)).any()
    got = embed_image_tokens(ids, text, figure, images)
    ref = one_hot_embed_image_tokens(ids, text, figure, images)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)
    # Spot-check the mapping rule directly: <imageK> of sample b is row K of that sample's image rows.
    b, t = (ids >= TOK.first_placeholder).nonzero()[0].tolist()
    torch.testing.assert_close(got[b, t], images[b, ids[b, t] - TOK.first_placeholder])


def test_embedding_module_matches_one_hot_and_gradients_flow():
    cfg = get_config("tiny", vision_dropout=0.0, vision_emb_dropout=0.0)
    torch.manual_seed(3)
    model = RadFMForCausalLM(cfg)
    emb = model.embedding_layer
    image_counts = [2, 1, 3]
    vision_x = torch.randn(3, 3, 3, 32, 32, 4)
    ids = _random_ids(image_counts, 120, torch.Generator().manual_seed(11))
    ids[:, 0] = 5  # row 5 is used, so it must receive a gradient
    upstream = torch.randn(3, 120, cfg.hidden_size)

    def run(fn):
        emb.zero_grad(set_to_none=True)
        model.lang_model.zero_grad(set_to_none=True)
        image_rows = emb.encode_images(vision_x)
        out = fn(ids, emb.weight, emb.figure_token_weight, image_rows)
        (out * upstream).sum().backward()
        grads = {n: p.grad.clone() for n, p in emb.named_parameters() if p.grad is not None}
        return out.detach(), grads

    out_g, grads_g = run(embed_image_tokens)
    out_r, grads_r = run(one_hot_embed_image_tokens)
    torch.testing.assert_close(out_g, out_r, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(emb(ids, vision_x), out_g, rtol=1e-5, atol=1e-6)
    assert grads_g.keys() == grads_r.keys()
    for name in grads_g:
        torch.testing.assert_close(grads_g[name], grads_r[name], rtol=1e-4, atol=1e-6, msg=name)
    # Gradients reach the figure rows, the vision tower, the perceiver, fc and the shared text embedding.
    for name in ("figure_token_weight", "vision_encoder.to_patch_embedding.2.weight",
                 "vision_encoder.transformer.layers.0.0.fn.to_qkv.weight", "perceiver.latents", "fc.weight"):
        assert grads_g[name].abs().sum() > 0, name
    text_grad = model.lang_model.model.embed_tokens.weight.grad
    assert text_grad is not None and text_grad[5].abs().sum() > 0
    unused = torch.ones(BASE_VOCAB, dtype=torch.bool)
    unused[ids[ids < BASE_VOCAB]] = False
    assert text_grad[unused].abs().sum() == 0  # rows of non-text positions get nothing (not even row 0)


def test_embedding_rejects_out_of_range_ids():
    emb = RadFMEmbedding(get_config("tiny"))
    vision_x = torch.randn(2, 2, 3, 32, 32, 4)  # S_max = 2 -> ids must be < 32002 + 64
    ok = torch.tensor([[1, TOK.start, TOK.placeholder(63), TOK.end], [1, 2, 3, 4]])
    assert emb(ok, vision_x).shape == (2, 4, emb.weight.shape[1])
    bad = ok.clone()
    bad[1, 2] = TOK.placeholder(64)
    with pytest.raises(ValueError, match="image-token id 32066"):
        emb(bad, vision_x)
    with pytest.raises(ValueError, match="image-token rows"):
        emb(ok, None)  # placeholders without images
    with pytest.raises(ValueError, match="negative"):
        emb(torch.tensor([[-1, 3]]), None)


# ------------------------------------------------------------------------------------------------ loss
def test_weighted_loss_equals_hand_computation():
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 5, 7, generator=gen, requires_grad=True)
    labels = torch.tensor([[-100, 3, 1, -100, 6], [-100, -100, 0, 2, 4]])
    weights = torch.tensor([[0.0, 1.0, 3.0, 5.0, 1.0], [2.0, 0.0, 1.0, 1.0, 3.0]])  # 5.0 sits on a -100 label

    def ce(b, t):  # logits at t-1 predict label at t
        return -torch.log_softmax(logits[b, t - 1].double(), -1)[labels[b, t]].item()

    terms = [(0, 1, 1.0), (0, 2, 3.0), (0, 4, 1.0), (1, 2, 1.0), (1, 3, 1.0), (1, 4, 3.0)]
    expected_weighted = sum(w * ce(b, t) for b, t, w in terms) / sum(w for _, _, w in terms)
    expected_mean = sum(ce(b, t) for b, t, _ in terms) / len(terms)

    loss, acc, n_tokens, weight_sum = causal_lm_loss(logits, labels, weights, "weighted")
    assert loss.item() == pytest.approx(expected_weighted, rel=1e-5)
    assert n_tokens.item() == 6 and weight_sum.item() == 10.0
    mean, _, _, _ = causal_lm_loss(logits, labels, weights, "mean")
    assert mean.item() == pytest.approx(expected_mean, rel=1e-5)
    no_weights, _, _, _ = causal_lm_loss(logits, labels, None, "weighted")
    assert no_weights.item() == pytest.approx(expected_mean, rel=1e-5)
    # Standard shifted mean cross-entropy agrees with the "mean" option.
    ref = F.cross_entropy(logits[:, :-1].reshape(-1, 7), labels[:, 1:].reshape(-1), ignore_index=-100)
    assert mean.item() == pytest.approx(ref.item(), rel=1e-6)

    # Weight 3 instead of 1 on one keyword token moves the loss as the formula says.
    w1 = weights.clone()
    w1[0, 2] = 1.0
    terms1 = [(b, t, 1.0 if (b, t) == (0, 2) else w) for b, t, w in terms]
    expected1 = sum(w * ce(b, t) for b, t, w in terms1) / sum(w for _, _, w in terms1)
    loss1, _, _, _ = causal_lm_loss(logits, labels, w1)
    assert loss1.item() == pytest.approx(expected1, rel=1e-5)
    assert loss1.item() != pytest.approx(loss.item(), rel=1e-3)

    with pytest.raises(ValueError):
        causal_lm_loss(logits, labels, weights, "sum")


def test_token_accuracy():
    logits = torch.full((1, 4, 5), -10.0)
    labels = torch.tensor([[-100, 1, 2, 3]])
    logits[0, 0, 1] = 10  # predicts label 1: correct
    logits[0, 1, 4] = 10  # predicts 4 instead of 2: wrong
    logits[0, 2, 3] = 10  # correct
    _, acc, n, _ = causal_lm_loss(logits, labels)
    assert n.item() == 3 and acc.item() == pytest.approx(2 / 3)


def test_zero_weight_batch_gives_zero_loss_with_graph():
    logits = torch.randn(2, 4, 6, requires_grad=True)
    labels = torch.tensor([[-100, 1, 2, 3], [-100, -100, -100, -100]])
    weights = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    loss, acc, n, wsum = causal_lm_loss(logits, labels, weights)
    assert loss.item() == 0.0 and not torch.isnan(loss) and wsum.item() == 0.0
    loss.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() == 0
    all_ignored = torch.full_like(labels, -100)
    loss2, acc2, n2, _ = causal_lm_loss(logits, all_ignored, None, "mean")
    assert loss2.item() == 0.0 and acc2.item() == 0.0 and n2.item() == 0 and loss2.requires_grad


# ------------------------------------------------------------------------------------------------ training
def build_training_batch(gen: torch.Generator):
    """Two samples laid out like the shards: BOS, question (+ image spans) masked, answer + EOS as targets, pads."""
    samples = [
        dict(question=[11, 12, 13], images=2, answer=[501, 502, 503, 504, 505], keyword={2}),
        dict(question=[21, 22], images=1, answer=[601, 602, 603], keyword=set()),
    ]
    rows = []
    for s in samples:
        q = [1, *s["question"]]
        for i in range(s["images"]):
            q += TOK.span(i)
        ids = q + s["answer"] + [EOS]
        labels = [IGNORE_INDEX] * len(q) + s["answer"] + [EOS]
        weights = [0.0] * len(q) + [3.0 if j in s["keyword"] else 1.0 for j in range(len(s["answer"]))] + [1.0]
        rows.append((ids, labels, weights))
    length = max(len(r[0]) for r in rows) + 3
    ids = torch.zeros(2, length, dtype=torch.long)
    labels = torch.full((2, length), IGNORE_INDEX)
    weights = torch.zeros(2, length)
    mask = torch.zeros(2, length, dtype=torch.long)
    for b, (i, l_, w) in enumerate(rows):
        ids[b, : len(i)] = torch.tensor(i)
        labels[b, : len(i)] = torch.tensor(l_)
        weights[b, : len(i)] = torch.tensor(w)
        mask[b, : len(i)] = 1
    vision_x = torch.zeros(2, 2, 3, 64, 64, 4)
    vision_x[0] = torch.randn(2, 3, 64, 64, 4, generator=gen)
    vision_x[1, :1] = torch.randn(1, 3, 64, 64, 4, generator=gen)  # second slot of sample 1 is zero padding
    assert (ids >= TOK.first_placeholder).sum() == 3 * IMAGE_TOKENS_PER_IMAGE
    assert (ids == TOK.start).sum() == 3 and IMAGE_SPAN_LEN == 34
    return ids, mask, vision_x, labels, weights


def test_tiny_model_trains_on_fixed_batch():
    model = tiny_model()
    model.train()
    ids, mask, vision_x, labels, weights = build_training_batch(torch.Generator().manual_seed(2))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        out = model(ids, mask, vision_x, labels=labels, loss_weight=weights)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert out.logits.shape == (*ids.shape, BASE_VOCAB)
    assert out.n_tokens.item() == 10  # 5 + 3 answer tokens + 2 EOS
    assert losses[0] > 9.0  # ~ log(32000) at init
    assert losses[-1] < 0.3 * losses[0], losses
    model.eval()
    with torch.no_grad():
        final = model(ids, mask, vision_x, labels=labels, loss_weight=weights)
    assert final.loss.item() < 0.1 * losses[0]
    assert final.token_accuracy.item() >= 0.8, final.token_accuracy
    assert model.embeddings_tied()


def test_model_mean_loss_matches_llama_loss():
    model = tiny_model().eval()
    ids, mask, vision_x, labels, weights = build_training_batch(torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = model(ids, mask, vision_x, labels=labels, loss_weight=weights, loss_reduction="mean")
        embeds = model.embedding_layer(ids, vision_x)
        ref = model.lang_model(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss
        weighted = model(ids, mask, vision_x, labels=labels, loss_weight=weights).loss
    assert out.loss.item() == pytest.approx(ref.item(), rel=1e-5)
    assert weighted.item() != pytest.approx(out.loss.item(), rel=1e-4)  # the keyword weight matters


# ------------------------------------------------------------------------------------------------ generation
def test_position_ids_from_attention_mask():
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    assert position_ids_from_attention_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4], [0, 1, 2, 2, 2]]


def _left_pad(prompts: list[list[int]]):
    length = max(map(len, prompts))
    ids = torch.zeros(len(prompts), length, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, p in enumerate(prompts):
        ids[b, length - len(p):] = torch.tensor(p)
        mask[b, length - len(p):] = 1
    return ids, mask


@pytest.mark.parametrize("depth", [4, 16])  # 2D images (depth-4 stacks) and 3D volumes
def test_batched_left_padded_generation_equals_single(depth):
    model = tiny_model().eval()
    gen = torch.Generator().manual_seed(9)
    prompts = [
        [1, 300, 301, *TOK.span(0), 302],
        [1, 400, *TOK.span(0), *TOK.span(1), 401, 402, 403, 404, 405],
        [1, 500, 501, 502],
    ]
    counts = [1, 2, 0]
    images = [torch.randn(s, 3, 64, 64, depth, generator=gen) for s in counts]
    ids, mask = _left_pad(prompts)
    vision_x = torch.zeros(3, 2, 3, 64, 64, depth)
    for b, img in enumerate(images):
        vision_x[b, : len(img)] = img
    batch = model.generate(ids, vision_x, attention_mask=mask, max_new_tokens=8, eos_token_id=None)
    assert batch.shape == (3, 8)
    for b, prompt in enumerate(prompts):
        single = model.generate(torch.tensor([prompt]), images[b][None] if counts[b] else None,
                                max_new_tokens=8, eos_token_id=None)
        assert torch.equal(batch[b], single[0]), b


def test_cached_generation_equals_full_recompute_and_hf_generate():
    model = tiny_model().eval()
    prompt = torch.tensor([[1, 42, *TOK.span(0), 43, 44]])
    vision_x = torch.randn(1, 1, 3, 64, 64, 8)
    got = model.generate(prompt, vision_x, max_new_tokens=6, eos_token_id=None)
    seq, expected = prompt, []
    with torch.no_grad():
        for _ in range(6):
            token = model(seq, vision_x=vision_x).logits[:, -1].argmax(-1)
            expected.append(token.item())
            seq = torch.cat([seq, token[:, None]], dim=1)
        hf = model.lang_model.generate(
            inputs_embeds=model.embedding_layer(prompt, vision_x), attention_mask=torch.ones_like(prompt),
            max_new_tokens=6, do_sample=False, eos_token_id=None, pad_token_id=0)
    assert got[0].tolist() == expected
    assert hf[0, -6:].tolist() == expected


def test_generation_stops_at_eos():
    model = tiny_model().eval()
    ids, mask = _left_pad([[1, 7, 8, 9], [1, 70, 80, 90, 100, 110]])
    free = model.generate(ids, attention_mask=mask, max_new_tokens=10, eos_token_id=None)
    eos = free[0, 2].item()  # pretend the third token of row 0 is EOS
    got = model.generate(ids, attention_mask=mask, max_new_tokens=10, eos_token_id=eos, pad_token_id=-1)
    expected = []
    for row in free.tolist():
        cut = row.index(eos) + 1 if eos in row else len(row)
        expected.append(row[:cut])
    width = max(map(len, expected))
    assert got.shape == (2, width)
    for b, exp in enumerate(expected):
        assert got[b].tolist() == exp + [-1] * (width - len(exp))

    # Default EOS is id 2 (the tokenizer's </s>): force it and generation ends after one token.
    handle = model.lang_model.lm_head.register_forward_hook(
        lambda mod, inp, out: out + F.one_hot(torch.tensor(EOS), out.shape[-1]) * 1e4)
    try:
        assert model.generate(ids, attention_mask=mask, max_new_tokens=10).tolist() == [[EOS], [EOS]]
    finally:
        handle.remove()


def test_generation_sampling_options():
    model = tiny_model().eval()
    ids, mask = _left_pad([[1, 5, 6], [1, 50, 60, 70]])
    greedy = model.generate(ids, attention_mask=mask, max_new_tokens=5, eos_token_id=None)
    a = model.generate(ids, attention_mask=mask, max_new_tokens=5, eos_token_id=None, do_sample=True, seed=3)
    b = model.generate(ids, attention_mask=mask, max_new_tokens=5, eos_token_id=None, do_sample=True, seed=3)
    assert torch.equal(a, b)
    assert not torch.equal(a, greedy)  # an untrained model's distribution is nearly flat over 32000 tokens
    top1 = model.generate(ids, attention_mask=mask, max_new_tokens=5, eos_token_id=None, do_sample=True,
                          top_k=1, seed=4)
    nucleus = model.generate(ids, attention_mask=mask, max_new_tokens=5, eos_token_id=None, do_sample=True,
                             top_p=1e-9, seed=5, temperature=0.7)
    assert torch.equal(top1, greedy) and torch.equal(nucleus, greedy)
    with pytest.raises(ValueError, match="left padding"):
        model.generate(ids, attention_mask=torch.flip(mask, [1]), max_new_tokens=2)


def test_gradient_checkpointing_gives_same_gradients():
    ids, mask, vision_x, labels, weights = build_training_batch(torch.Generator().manual_seed(6))
    grads = []
    for checkpointing in (False, True):
        model = tiny_model(vision_dropout=0.0, vision_emb_dropout=0.0)
        model.train()
        if checkpointing:
            model.gradient_checkpointing_enable()
        model(ids, mask, vision_x, labels=labels, loss_weight=weights).loss.backward()
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6, msg=name)


# ------------------------------------------------------------------------------------------------ colour
def test_colour_and_grey_images_share_a_batch_and_colour_reaches_the_model():
    """A colour image (C = 3) next to a grey one (C = 1, broadcast to 3 channels) in one collated batch: the grey
    sample's logits do not depend on its neighbour, and the colour sample's channels are seen, not squashed
    (swapping two of them changes its logits)."""
    import numpy as np

    from train.collate import CollateConfig, Sample, collate

    rng = np.random.default_rng(5)
    ids = np.array([1, *TOK.span(0), 450, 1811, 338, 2], dtype=np.int32)
    labels = np.where(np.arange(ids.size) < 1 + IMAGE_SPAN_LEN, IGNORE_INDEX, ids).astype(np.int32)
    weights = (labels != IGNORE_INDEX).astype(np.float32)
    grey = rng.integers(0, 256, (1, 1, 64, 64, 1), dtype=np.uint8)
    colour = rng.integers(0, 256, (1, 3, 64, 64, 1), dtype=np.uint8)

    def batch(second: np.ndarray) -> dict:
        samples = [Sample("g", ids, labels, weights, grey), Sample("c", ids, labels, weights, second)]
        return collate(samples, CollateConfig(image_size=64), "2d")

    model = tiny_model().eval()
    with torch.no_grad():
        plain, swapped = batch(colour), batch(colour[:, [1, 0, 2]])
        assert plain["vision_x"].shape == (2, 1, 3, 64, 64, 4)
        assert not torch.equal(plain["vision_x"][1, 0, 0], plain["vision_x"][1, 0, 1])  # colour kept per channel
        assert torch.equal(plain["vision_x"][0, 0, 0], plain["vision_x"][0, 0, 2])  # grey broadcast
        inputs = ("input_ids", "attention_mask", "vision_x", "labels", "loss_weight")
        a = model(**{k: plain[k] for k in inputs})
        b = model(**{k: swapped[k] for k in inputs})
    assert torch.isfinite(a.loss) and torch.isfinite(b.loss)
    assert torch.allclose(a.logits[0], b.logits[0], atol=1e-5)  # the grey sample: unaffected by its neighbour
    assert not torch.allclose(a.logits[1], b.logits[1], atol=1e-4)  # the colour sample: its channels matter
