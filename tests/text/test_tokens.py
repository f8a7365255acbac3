"""RadFM's token layout, token for token (shards_spec.tokenizer, pipelines.text, the preview CLI).

The expected ids come from ``tests/data/radfm_layout.json``, frozen by ``tools/radfm_tokens.py --freeze`` from an
independent re-implementation of RadFM's ``multi_dataset.py`` run with transformers 4.28.1 (``tools/radfm_reference.py``)
on the *fixture folder*: the default tokenizer model inside RadFM's shipped configuration files (empty BOS/EOS/UNK
strings, ``config.json`` bos 0 / eos 1). The folder is rebuilt here from the frozen file and the installed model.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipelines.config import TextConfig
from pipelines.keywords import make_matcher
from pipelines.text import ImagePlacement, TooLong, encode, preview
from shards_spec.layout import IGNORE_INDEX
from shards_spec.tokenizer import (
    RADFM_RELEASED,
    TokenizerError,
    TokenizerIdentity,
    default_model_file,
    fingerprint_of,
    load_tokenizer,
)

ROOT = Path(__file__).resolve().parents[2]
FROZEN = json.loads((ROOT / "tests" / "data" / "radfm_layout.json").read_text("utf-8"))
CASES = FROZEN["cases"]
DOCUMENTED = {"literal-markup", "radfm-raises"}


def _write_folder(target: Path, files: dict) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (target / name).write_text(json.dumps(content))
    shutil.copyfile(default_model_file(), target / "tokenizer.model")
    return target


@pytest.fixture(scope="module")
def radfm_style(tmp_path_factory) -> Path:
    """RadFM's Language_files configuration around the default tokenizer model."""
    return _write_folder(tmp_path_factory.mktemp("tok") / "radfm_style", FROZEN["folder"])


@pytest.fixture(scope="module")
def tok(radfm_style):
    return load_tokenizer(radfm_style)


@pytest.fixture(scope="module")
def matcher():
    return make_matcher("lexicon")


def _ours(tok, matcher, case: dict) -> dict:
    return preview(tok, matcher, TextConfig(max_length=case["max_length"]), case)


# ---------------------------------------------------------------------------------------------- the loader
def test_radfm_config_quirks_change_nothing(tok):
    """Empty BOS/EOS/UNK strings and config.json bos 0 / eos 1 are overridden as RadFM's code did."""
    default = load_tokenizer(None)
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.identity.base_vocab) == (0, 1, 2, 32000)
    assert tok.identity == default.identity and tok.fingerprint == default.fingerprint
    assert tok.convert_ids_to_tokens([0, 1, 2, 32000, 32001, 32002, 35201]) == [
        "<unk>", "<s>", "</s>", "<image>", "</image>", "<image0>", "<image3199>"]
    assert tok.special_ids() == {"pad": 0, "bos": 1, "eos": 2, "base_vocab": 32000}


def test_fingerprint_covers_the_model_and_the_layout(tmp_path, tok):
    bare = load_tokenizer(default_model_file())  # a bare tokenizer.model file
    assert bare.identity == tok.identity
    assert tok.identity.model_sha256 and tok.identity.layout
    assert tok.fingerprint != RADFM_RELEASED.fingerprint  # LLaMA's model differs from the default one
    d = tok.identity.to_dict()
    assert TokenizerIdentity.from_dict(d) == tok.identity and json.loads(json.dumps(d)) == d
    with pytest.raises(ValueError, match="does not match its fields"):
        TokenizerIdentity.from_dict({**d, "model_sha256": "0" * 64})
    other = TokenizerIdentity.create("0" * 64, 32000)
    assert other != tok.identity and other.fingerprint != tok.fingerprint
    assert TokenizerIdentity.create(tok.identity.model_sha256, 32000, layout="radfm-llama/0") != tok.identity
    assert fingerprint_of(d) == fingerprint_of(tok.fingerprint) == tok.fingerprint


def test_standard_llama_folder_gives_the_same_ids(tmp_path, tok):
    """A Hugging Face Llama folder (real BOS/EOS strings, added_tokens_decoder, legacy flag) loads to the same
    identity; a folder that already holds RadFM's image tokens at their ids too."""
    decoder = {"0": {"content": "<unk>", "special": True}, "1": {"content": "<s>", "special": True},
               "2": {"content": "</s>", "special": True}}
    std = _write_folder(tmp_path / "std", {
        "tokenizer_config.json": {"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>",
                                  "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False,
                                  "legacy": False, "added_tokens_decoder": decoder},
        "special_tokens_map.json": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}})
    assert load_tokenizer(std).identity == tok.identity
    saved = _write_folder(tmp_path / "saved", {"added_tokens.json": {"<image>": 32000, "</image>": 32001, "<image0>": 32002}})
    assert load_tokenizer(saved).identity == tok.identity


@pytest.mark.parametrize("files, match", [
    ({"tokenizer_config.json": {"add_bos_token": False}}, "add_bos_token is false"),
    ({"tokenizer_config.json": {"add_eos_token": True}}, "add_eos_token is true"),
    ({"added_tokens.json": {"<image>": 32005}}, "'<image>' has id 32005"),
    ({"added_tokens.json": {"<pad>": 32000}}, "'<pad>' has id 32000"),
])
def test_folders_that_would_change_ids_are_refused(tmp_path, files, match):
    with pytest.raises(TokenizerError, match=match):
        load_tokenizer(_write_folder(tmp_path / "bad", files))


def test_non_llama_sentencepiece_models_are_refused(tmp_path):
    import sentencepiece as spm

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(f"the lungs are clear {i} no effusion or pneumothorax" for i in range(200)))
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / "t5like"), vocab_size=40,
                                   pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2)
    with pytest.raises(TokenizerError, match="<unk> 0 \\(also pad\\), <s> 1, </s> 2"):
        load_tokenizer(tmp_path / "t5like.model")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / "small"), vocab_size=40, minloglevel=2)
    small = load_tokenizer(tmp_path / "small.model")  # LLaMA-style ids, another vocabulary: images at 40, 41, 42+K
    assert small.identity.base_vocab == 40 and small.ids.span(0)[:3] == [40, 42, 43]
    (tmp_path / "junk.model").write_bytes(b"not a model")
    with pytest.raises(TokenizerError, match="not a SentencePiece model"):
        load_tokenizer(tmp_path / "junk.model")
    with pytest.raises(TokenizerError, match="no such folder"):
        load_tokenizer(tmp_path / "missing")


# ---------------------------------------------------------------------------------------------- RadFM's layout
@pytest.mark.parametrize("case", [c for c in CASES if c["class"] not in DOCUMENTED | {"over-long"}],
                         ids=lambda c: c["id"])
def test_ids_and_labels_equal_radfm(tok, matcher, case):
    ours, radfm = _ours(tok, matcher, case), case["radfm"]
    assert ours["input_ids"] == radfm["input_ids"], f"{case['id']}: {ours['text']}"
    assert ours["labels"] == radfm["labels"]
    assert not ours["truncated"]


@pytest.mark.parametrize("case", [c for c in CASES if c["class"] == "over-long"], ids=lambda c: c["id"])
def test_over_long_answer_cut_after_a_whole_word(tok, matcher, case):
    """RadFM's ids up to the cut, the cut before a token that starts a word, then EOS (learned)."""
    ours, radfm = _ours(tok, matcher, case), case["radfm"]
    ids, k = ours["input_ids"], len(ours["input_ids"]) - 1
    assert ours["truncated"] and len(ids) <= case["max_length"]
    assert len(ids) > case["max_length"] - 12  # not cut much earlier than needed
    assert ids[:k] == radfm["input_ids"][:k] and ours["labels"][:k] == radfm["labels"][:k]
    assert ids[-1] == 2 and ours["labels"][-1] == 2
    assert tok.piece(radfm["input_ids"][k]).startswith("\u2581")  # RadFM's next token begins a new word
    assert case["answer"].startswith(ours["answer"]) and case["answer"][len(ours["answer"])].isspace()


def test_over_long_with_an_answer_image_past_the_limit_is_rejected(tok):
    with pytest.raises(TooLong, match="image in the answer"):
        encode(tok, "Q?", "word " * 60 + "end", [ImagePlacement("answer", 300)], [], TextConfig(max_length=64))
    with pytest.raises(TooLong, match="no whole answer word fits"):
        encode(tok, "word " * 70, "yes it is", [], [], TextConfig(max_length=64))
    with pytest.raises(TooLong, match="no whole answer word fits"):  # one endless word is never cut
        encode(tok, "Q?", "x" * 400, [], [], TextConfig(max_length=64))


def test_whitespace_next_to_image_spans(tok):
    """The subtle rule: whitespace touching a span is dropped and the chunk after a span gets its own ▁."""
    cfg = TextConfig()
    for question in ("Compare these two ", "Compare these two\n", "Compare these two"):
        enc = encode(tok, question, "Stable.", [ImagePlacement("question", len(question) + 1)], [], cfg)
        pieces = tok.convert_ids_to_tokens(enc.input_ids.tolist())
        s = enc.image_spans[0]["token_start"]
        assert pieces[s - 1] == "\u2581two" and pieces[s + 34] == "\u2581St", pieces  # no lone ▁, answer gets its ▁
    enc = encode(tok, "", "Yes", [], [], cfg)  # empty question: the joining space is a token of the answer
    assert tok.convert_ids_to_tokens(enc.input_ids.tolist()) == ["<s>", "\u2581", "\u2581Yes", "</s>"]
    assert enc.labels.tolist() == [IGNORE_INDEX, *enc.input_ids[1:].tolist()]


def test_bullets_are_removed_from_answers_only(tok):
    enc = encode(tok, "Bullet • here?", "• Effusion\n• Mass", [], [], TextConfig())
    text = tok.decode(enc.input_ids)
    assert "•" in text.split("</s>")[0][:20] and text.count("•") == 1
    assert enc.answer == "• Effusion\n• Mass"  # meta keeps the answer as given


def test_keyword_parts_of_compounds_are_weighted(tok, matcher):
    answer = "A mass-like opacity with effusion's margins; post-pneumonia scarring."
    out = preview(tok, matcher, TextConfig(), {"question": "Describe the lesion.", "answer": answer, "images": []})
    pieces = tok.convert_ids_to_tokens(out["input_ids"])
    weighted = "".join(p for p, w in zip(pieces, out["loss_weight"]) if w == 3.0).replace("\u2581", " ")
    assert {"mass", "effusion", "pneumonia"} <= set(out["keywords"])
    for word in ("mass", "effusion", "pneumonia"):
        assert word in weighted.replace(" ", "")
    for word in ("like", "post", "margins"):
        assert word not in weighted
    m = make_matcher("lexicon")
    text = "No massive bleed; x-ray and X ray."
    assert [text[s:e] for s, e, _ in m.find(text)] == ["x-ray", "X ray"]


def test_documented_differences(tok, matcher):
    """Literal '<image>' / '</s>' in source text stays text (RadFM turned '<image>' into an image slot); a
    position past the text (RadFM: IndexError) puts the image after the last character."""
    for case in (c for c in CASES if c["class"] == "literal-markup"):
        ours = _ours(tok, matcher, case)
        assert sum(t >= 32000 for t in ours["input_ids"]) == 34 * len(case["images"])
        assert 1 not in ours["input_ids"][1:] and ours["input_ids"].count(2) == 1
    for case in (c for c in CASES if c["class"] == "radfm-raises"):
        assert "error" in case["radfm"]
        ours = _ours(tok, matcher, case)
        assert ours["image_spans"][0]["token_start"] > 0


def test_encoding_is_a_pure_function_of_the_meta(tok, matcher):
    """Re-encoding (question, answer, image positions) gives the same ids: the meta is enough to reproduce them."""
    case = next(c for c in CASES if c["class"] == "over-long")
    first = _ours(tok, matcher, case)
    again = _ours(tok, matcher, {**case, "answer": first["answer"]})
    assert again["input_ids"] == first["input_ids"] and not again["truncated"]


# ---------------------------------------------------------------------------------------------- the preview CLI
def test_preview_cli(radfm_style):
    cases = [c for c in CASES if c["class"] in ("several-images", "unicode")][:4]
    lines = [json.dumps({k: c[k] for k in ("question", "answer", "images")}) for c in cases]
    lines += ["not json", json.dumps({"question": "q", "answer": "a", "images": [{"where": "side", "pos": 0}]})]
    proc = subprocess.run([sys.executable, "-m", "pipelines.text", "--tokenizer", str(radfm_style)], cwd=ROOT,
                          input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr  # two bad lines
    out = [json.loads(x) for x in proc.stdout.splitlines()]
    assert len(out) == len(lines)
    for c, o in zip(cases, out):
        assert o["input_ids"] == c["radfm"]["input_ids"] and o["labels"] == c["radfm"]["labels"]
        assert len(o["loss_weight"]) == len(o["input_ids"]) and "[IMG 0]" in o["text"] and o["text"].startswith("⟦<s>")
    assert out[-2]["error"].startswith("bad_input") and out[-1]["error"].startswith("bad_input")
    bad = subprocess.run([sys.executable, "-m", "pipelines.text", "--tokenizer", str(radfm_style / "nope")], cwd=ROOT,
                         input="", capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and len(bad.stderr.strip().splitlines()) == 1


def test_demo_shards_reencode_through_the_preview(demo_shards):
    """The build and the preview share one code path: every demo sample's meta re-encodes to its stored ids."""
    from shards_spec.reader import iter_raw_samples

    tok, matcher = load_tokenizer(None), make_matcher("lexicon")
    n = 0
    for tar in sorted(demo_shards.rglob("*.tar"))[:6]:
        for raw in iter_raw_samples(tar):
            d = raw.decode()
            meta = d["meta.json"]
            assert meta["tokenizer"] == tok.fingerprint and meta["special_ids"] == tok.special_ids()
            images = [{"where": s["where"], "pos": s["char"]} for s in meta["image_spans"]]
            out = preview(tok, matcher, TextConfig(), {"question": meta["question"], "answer": meta["answer"],
                                                       "images": images})
            assert out["input_ids"] == d["input_ids.npy"].tolist() and out["labels"] == d["labels.npy"].tolist()
            assert out["n_question_tokens"] == meta["n_question_tokens"]
            learned = np.asarray(out["labels"]) != IGNORE_INDEX
            assert np.array_equal(np.asarray(out["loss_weight"]) > 0, learned)
            n += 1
    assert n > 10
