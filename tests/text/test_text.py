"""Tokens, image spans, labels, loss weights, truncation (pipelines.text, pipelines.keywords)."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.config import TextConfig
from pipelines.keywords import KeywordMatcher, make_matcher
from pipelines.text import ImagePlacement, TooLong, encode, load_tokenizer
from shards_spec.layout import IGNORE_INDEX, ImageTokenIds


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(None, max_images=10)


def test_default_tokenizer_is_llama_32k_with_radfm_image_ids(tok):
    assert tok.ids.base_vocab == 32000
    assert (tok.bos_id, tok.eos_id) == (1, 2)
    assert tok.hf.convert_tokens_to_ids(["<image>", "</image>", "<image0>", "<image31>", "<image32>"]) == [32000, 32001, 32002, 32033, 32034]
    assert tok.convert_ids_to_tokens([0, 1, 2, 32000, 32001, 32002, 32033]) == ["<unk>", "<s>", "</s>", "<image>", "</image>", "<image0>", "<image31>"]
    assert tok.fingerprint.startswith("sha256:") and tok.identity.pad_id == 0


def test_image_span_layout_and_labels(tok):
    q, a = "Write a radiology report for this image?", "Findings: Mild cardiomegaly. Impression: Stable."
    enc = encode(tok, q, a, [ImagePlacement("question", len(q))], [], TextConfig())
    ids, labels = enc.input_ids.tolist(), enc.labels.tolist()
    assert ids[0] == 1 and labels[0] == IGNORE_INDEX
    span = enc.image_spans[0]
    s = span["token_start"]
    assert ids[s : s + 34] == [32000, *range(32002, 32034), 32001]
    # RadFM's rule: position len(question) puts the image before the last character ("?")
    assert tok.decode(ids[s + 34 : s + 35]).strip() == "?"
    assert all(label == IGNORE_INDEX for label in labels[: enc.n_question_tokens])
    answer_labels = labels[enc.n_question_tokens :]
    assert all(label == t for label, t in zip(answer_labels, ids[enc.n_question_tokens :]))
    assert tok.decode(ids[enc.n_question_tokens :]).startswith("Findings")
    assert ids[-1] == 2 and labels[-1] == 2 and enc.loss_weight[-1] == 1.0
    assert np.all(enc.loss_weight[np.asarray(labels) == IGNORE_INDEX] == 0)


def test_second_image_uses_next_placeholders_and_start_position(tok):
    q = "Compare these scans."
    enc = encode(tok, q, "Stable.", [ImagePlacement("question", 0), ImagePlacement("question", len(q))], [], TextConfig())
    ids = enc.input_ids
    starts = [s["token_start"] for s in enc.image_spans]
    assert starts[0] == 1  # right after BOS
    assert ids[starts[1] : starts[1] + 34].tolist() == ImageTokenIds(32000).span(1)
    assert int(np.sum(ids == 32000)) == 2


def test_image_in_answer_is_not_learned(tok):
    enc = encode(tok, "", "Figure shows a nodule.", [ImagePlacement("answer", 0)], [], TextConfig())
    ids, labels = enc.input_ids, enc.labels
    assert ids[1] == 32000
    assert np.all(labels[ids >= 32000] == IGNORE_INDEX)
    assert np.any(labels != IGNORE_INDEX)


def test_keyword_weights_cover_in_context_tokens(tok):
    m = make_matcher()
    a = "Findings: No pleural effusions or pneumothorax. Impression: Cardiomegaly."
    enc = encode(tok, "Report?", a, [ImagePlacement("question", 7)], m.find(a), TextConfig())
    pieces = tok.convert_ids_to_tokens(enc.input_ids.tolist())
    weighted = "".join(p for p, w in zip(pieces, enc.loss_weight) if w == 3.0).replace("\u2581", " ")
    assert "pleural effusions" in weighted and "pneumothorax" in weighted and "Cardiomegaly" in weighted
    assert "Findings" not in weighted and " No" not in weighted
    assert set(enc.keywords) == {"pleural effusion", "pneumothorax", "cardiomegaly"}


def test_keyword_matcher_longest_match_plurals_and_word_boundaries():
    m = KeywordMatcher(["effusion", "pleural effusion", "opacity", "mass"])
    text = "Pleural effusions, opacities; massive? no: a mass."
    spans = m.find(text)
    assert [(text[s:e], t) for s, e, t in spans] == [("Pleural effusions", "pleural effusion"), ("opacities", "opacity"), ("mass", "mass")]


def test_keywords_none_and_bad_spec():
    assert make_matcher("none").find("pneumothorax") == []
    with pytest.raises(ValueError):
        make_matcher("umls")
    with pytest.raises(RuntimeError, match="not installed"):
        make_matcher("lexicon+spacy:definitely_not_a_model")


def test_long_answer_is_shortened_at_a_word_boundary(tok):
    a = "The lungs are clear. " * 400
    cfg = TextConfig(max_length=128)
    enc = encode(tok, "Report?", a, [ImagePlacement("question", 7)], [], cfg)
    assert enc.truncated and enc.input_ids.size == 128
    assert enc.input_ids[-1] == 2
    assert a.startswith(enc.answer) and len(enc.answer) < len(a)
    assert enc.image_spans[0]["token_start"] == 1 + len(tok.encode_ids("Report"))
    assert a[len(enc.answer)] == " " and enc.answer.endswith("clear.")  # cut after a whole word


def test_too_long_question_or_cut_image_is_rejected(tok):
    cfg = TextConfig(max_length=64, min_answer_tokens=8)
    with pytest.raises(TooLong):  # question + image span leave no room for the answer
        encode(tok, "word " * 40, "yes it is", [ImagePlacement("question", 0)], [], cfg)
    with pytest.raises(TooLong):  # the image span sits in the part that would be cut
        encode(tok, "Q?", "word " * 60, [ImagePlacement("answer", 200)], [], cfg)


def test_encoding_is_deterministic(tok):
    args = ("Report?", "Findings: small effusion.", [ImagePlacement("question", 7)], [(10, 25, "x")], TextConfig())
    a, b = encode(tok, *args), encode(tok, *args)
    assert np.array_equal(a.input_ids, b.input_ids) and np.array_equal(a.loss_weight, b.loss_weight)


def test_a_tokenizer_without_sentencepiece_model_is_refused(tmp_path):
    """The layout is RadFM's (LLaMA-style SentencePiece); a word-level Hugging Face folder cannot give it."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    from shards_spec.tokenizer import TokenizerError

    backend = Tokenizer(models.WordLevel({"<unk>": 0, "<s>": 1, "</s>": 2, "report": 3}, unk_token="<unk>"))
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>").save_pretrained(tmp_path)
    with pytest.raises(TokenizerError, match="no tokenizer.model"):
        load_tokenizer(tmp_path)
