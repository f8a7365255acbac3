"""Text and tokens: RadFM's token layout for one sample (SPEC §3.3), used by every source, and its preview.

The tokenizer (``shards_spec.tokenizer.load_tokenizer``) is a LLaMA-style SentencePiece model with RadFM's ids:
pad 0, BOS 1, EOS 2, ``<image>`` V, ``</image>`` V+1, ``<imageK>`` V+2+K (V = 32000 for LLaMA). This module
decides what is encoded, reproducing RadFM's ``multi_dataset.py`` with transformers 4.28.1 token for token:

1. Image ``i`` at offset ``p`` of the question or answer: the span ``<image>`` ``<image{32i}>`` …
   ``<image{32i+31}>`` ``</image>`` goes before character ``max(p-1, 0)`` (several images at one position in
   image order). Then every ``•`` is removed from the answer.
2. The text is ``question + " " + answer`` (one space, also when either is empty).
3. The text is cut at the image spans; a text chunk loses its whitespace on every side that touches a span
   (``str.strip``: spaces, newlines, tabs, other Unicode whitespace); empty chunks vanish; every remaining chunk is
   SentencePiece-encoded on its own, so it gets its own leading ``▁``.
4. ``input_ids`` = BOS + those tokens + EOS. Labels: -100 on the first ``n_question_tokens`` tokens (BOS + the
   question encoded alone by rules 1–3), on image tokens and on pad ids; EOS is learned.
5. Over-long (more than ``TextConfig.max_length`` tokens): the answer is cut after its last whole word that fits,
   then EOS (RadFM cut mid-word and dropped EOS). Rejected as ``too_long`` if fewer than
   ``TextConfig.min_answer_tokens`` answer tokens would remain or an answer image would be cut.
6. Loss weights: 0 where the label is -100, 1 normally, ``keyword_weight`` (3) on learned tokens overlapping a
   medical keyword's characters in the answer (``pipelines.keywords``).

Preview (the build's code path, one JSON line in, one out)::

    echo '{"question": "Is there an effusion?", "answer": "Yes.", "images": [{"where": "question", "pos": 21}]}' \\
        | python -m pipelines.text [--tokenizer DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipelines.config import TextConfig
from pipelines.records import ImagePlacement
from shards_spec.layout import IGNORE_INDEX, WEIGHT_IGNORED, WEIGHT_NORMAL
from shards_spec.tokenizer import DEFAULT_TOKENIZER, Tokenizer, TokenizerError, load_tokenizer

__all__ = ["DEFAULT_TOKENIZER", "Encoded", "ImagePlacement", "TokenizerError", "TooLong", "encode", "encode_text",
           "load_tokenizer", "main"]

#: Removed from every answer after the image spans are placed (RadFM's ``text_add_image``).
BULLET = "•"
_QUESTION, _ANSWER, _SEPARATOR = 0, 1, 2


class TooLong(ValueError):
    reason = "too_long"


@dataclass
class Encoded:
    input_ids: np.ndarray
    labels: np.ndarray
    loss_weight: np.ndarray
    question: str
    answer: str  # as given (``•`` included), shortened when ``truncated``
    image_spans: list[dict]
    n_question_tokens: int
    truncated: bool
    keywords: list[str] = field(default_factory=list)


# --- layout --------------------------------------------------------------------------------------------------------
# A sample's text as a list of items: an int is an image index (its 34-token span), a _Run is a stretch of text
# between image positions.


@dataclass
class _Run:
    text: str
    answer_index: Sequence[int] | None  # per character of ``text``: its index in the original answer (None: not answer)


def _items(text: str, part: int, placements: list[tuple[int, int]]) -> list[int | _Run]:
    """Rule 1 for one part: ``placements`` are (image index, p) in image order; every image goes before character
    ``_insert_at(p)``, and ``•`` leaves the answer."""
    buckets: dict[int, list[int]] = {}
    for image_index, p in placements:
        buckets.setdefault(_insert_at(p, len(text)), []).append(image_index)
    out: list[int | _Run] = []
    start = 0
    for at in sorted(buckets):
        if at > start:
            out.append(_run(text, part, start, at))
        out.extend(buckets[at])
        start = at
    if start < len(text):
        out.append(_run(text, part, start, len(text)))
    return out


def _run(text: str, part: int, lo: int, hi: int) -> _Run:
    if part != _ANSWER:
        return _Run(text[lo:hi], None)
    if BULLET not in text[lo:hi]:
        return _Run(text[lo:hi], range(lo, hi))
    kept = [i for i in range(lo, hi) if text[i] != BULLET]
    return _Run("".join(text[i] for i in kept), kept)


def _insert_at(p: int, length: int) -> int:
    """RadFM's position rule ``max(p-1, 0)``; past the end (RadFM: IndexError) means after the last character."""
    return min(max(p - 1, 0), length)


@dataclass
class _Tokens:
    ids: list[int]  # without BOS / EOS
    answer_chars: list[tuple[int, int] | None]  # per token: the answer characters it covers
    image_starts: dict[int, int]  # image index -> token index of its <image>


def _tokenize(tok: Tokenizer, items: list[int | _Run]) -> _Tokens:
    """Rules 3: cut at image spans, strip whitespace touching a span, encode each chunk alone."""
    image = tok.ids
    out = _Tokens([], [], {})
    texts: list[str] = []
    answer_index: list[int] = []
    answer_from = -1  # chunk position where the answer characters begin (they end every chunk they are in)
    after_image = False

    def flush(before_image: bool) -> None:
        text = "".join(texts)
        lo, hi = 0, len(text)
        if after_image:
            lo = hi - len(text.lstrip())  # str.strip's whitespace is str.isspace's
        if before_image:
            hi = lo + len(text[lo:].rstrip())
        if lo >= hi:
            return
        first_answer = answer_from if answer_from >= 0 else hi
        for tid, b, e in tok.encode_chunk(text[lo:hi]):
            first = max(b + lo, first_answer)
            last = e + lo
            out.ids.append(tid)
            out.answer_chars.append(
                (answer_index[first - answer_from], answer_index[last - 1 - answer_from] + 1) if last > first else None)

    for item in items:
        if isinstance(item, int):
            flush(before_image=True)
            texts, answer_index, answer_from = [], [], -1
            out.image_starts[item] = len(out.ids)
            span = image.span(item)
            out.ids.extend(span)
            out.answer_chars.extend([None] * len(span))
            after_image = True
        elif item.text:
            if item.answer_index is not None:
                if answer_from < 0:
                    answer_from = sum(map(len, texts))
                answer_index.extend(item.answer_index)
            texts.append(item.text)
    flush(before_image=False)
    return out


_QUESTION_LENGTHS: dict[tuple, int] = {}


def _question_length(tok: Tokenizer, question: str, q_place: list[tuple[int, int]], q_items: list[int | _Run]) -> int:
    """RadFM's question_length: BOS + the question encoded alone (memoised: prompts repeat across samples)."""
    key = (tok.fingerprint, tok.max_images, question, tuple(q_place))
    n = _QUESTION_LENGTHS.get(key)
    if n is None:
        if len(_QUESTION_LENGTHS) >= 65536:
            _QUESTION_LENGTHS.clear()
        n = _QUESTION_LENGTHS[key] = 1 + len(_tokenize(tok, q_items).ids)
    return n


def _keyword_chars(keyword_spans: list[tuple[int, int, str]], length: int) -> bytearray:
    """Per answer character (and one past the end): 1 where a keyword span covers it."""
    mask = bytearray(length + 1)
    for start, end, _ in keyword_spans:
        mask[max(start, 0):max(end, 0)] = b"\x01" * max(0, min(end, length + 1) - max(start, 0))
    return mask


def _encode_once(tok: Tokenizer, question: str, answer: str, placements: list[ImagePlacement],
                 keyword_spans: list[tuple[int, int, str]], keyword_weight: float) -> Encoded:
    q_place = [(i, p.char) for i, p in enumerate(placements) if p.where == "question"]
    a_place = [(i, p.char) for i, p in enumerate(placements) if p.where != "question"]
    q_items = _items(question, _QUESTION, q_place)
    joined = _tokenize(tok, q_items + [_Run(" ", None)] + _items(answer, _ANSWER, a_place))
    n_question = _question_length(tok, question, q_place, q_items)

    ids = [tok.bos_id, *joined.ids, tok.eos_id]
    chars = [None, *joined.answer_chars, None]
    base, pad = tok.identity.base_vocab, tok.pad_id
    # a token's answer characters [a, b) overlap a keyword span [s, e) (s < b and a < e) exactly when one of them is
    # in the span, for non-empty spans; an empty keyword span (only a foreign entity model could give one) is tested
    # the plain way
    plain = any(e <= s for s, e, _ in keyword_spans)
    mask = _keyword_chars(keyword_spans, len(answer)) if keyword_spans and not plain else None
    labels, weights = [], []
    for i, (t, span) in enumerate(zip(ids, chars)):
        if i < n_question or t >= base or t == pad:
            labels.append(IGNORE_INDEX)
            weights.append(WEIGHT_IGNORED)
            continue
        labels.append(t)
        if span is None or not keyword_spans:
            hit = False
        elif mask is not None:
            hit = 1 in mask[span[0]:span[1]]
        else:
            hit = any(span[0] < k_end and span[1] > k_start for k_start, k_end, _ in keyword_spans)
        weights.append(keyword_weight if hit else WEIGHT_NORMAL)
    spans = [{"image": i, "where": p.where, "char": p.char, "token_start": 1 + joined.image_starts[i]}
             for i, p in enumerate(placements)]
    return Encoded(
        input_ids=np.asarray(ids, dtype=np.int32),
        labels=np.asarray(labels, dtype=np.int32),
        loss_weight=np.asarray(weights, dtype=np.float32),
        question=question,
        answer=answer,
        image_spans=spans,
        n_question_tokens=n_question,
        truncated=False,
        keywords=sorted({term for _, _, term in keyword_spans}),
    )


def encode(
    tok: Tokenizer,
    question: str,
    answer: str,
    placements: list[ImagePlacement],
    keyword_spans: list[tuple[int, int, str]],
    cfg: TextConfig,
) -> Encoded:
    """Tokenize one sample (module docstring, rules 1–6). ``keyword_spans`` are (start, end, term) character spans
    of ``answer``; ``placements[i]`` is where image ``i`` goes. Raises :class:`TooLong`."""
    enc = _encode_once(tok, question, answer, placements, keyword_spans, cfg.keyword_weight)
    if enc.input_ids.size <= cfg.max_length:
        return enc
    return _shorten(tok, question, answer, placements, keyword_spans, cfg, enc.input_ids.size)


def _shorten(tok: Tokenizer, question: str, answer: str, placements: list[ImagePlacement],
             keyword_spans: list[tuple[int, int, str]], cfg: TextConfig, n_full: int) -> Encoded:
    """Rule 5: the longest answer prefix ending at a whole word that fits (binary search over word ends)."""
    last_image = max((_insert_at(p.char, len(answer)) for p in placements if p.where != "question"), default=0)
    word_ends = [e for e in range(max(last_image, 1), len(answer))
                 if not answer[e - 1].isspace() and answer[e].isspace()]

    def attempt(end: int) -> Encoded:
        kept = [s for s in keyword_spans if s[1] <= end]
        return _encode_once(tok, question, answer[:end], placements, kept, cfg.keyword_weight)

    best: Encoded | None = None
    lo, hi = 0, len(word_ends) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        enc = attempt(word_ends[mid])
        if enc.input_ids.size <= cfg.max_length:
            best, lo = enc, mid + 1
        else:
            hi = mid - 1
    limit = f"{n_full} tokens > max_length {cfg.max_length}"
    if best is None:
        where = "an image in the answer sits past the limit" if last_image else "no whole answer word fits"
        raise TooLong(f"{limit}: {where}")
    n_answer = best.input_ids.size - best.n_question_tokens - 1
    if n_answer < cfg.min_answer_tokens:
        raise TooLong(f"{limit}, and only {max(n_answer, 0)} answer tokens would remain (min_answer_tokens "
                      f"{cfg.min_answer_tokens})")
    best.truncated = True
    return best


def encode_text(tok: Tokenizer, matcher, question: str, answer: str, placements: list[ImagePlacement],
                cfg: TextConfig) -> Encoded:
    """The build's text step: keywords of ``answer`` found by ``matcher`` (``pipelines.keywords``), then
    :func:`encode`. The preview below calls exactly this."""
    return encode(tok, question, answer, placements, matcher.find(answer), cfg)


# --- preview -------------------------------------------------------------------------------------------------------
def _placements(images) -> list[ImagePlacement]:
    if not isinstance(images, list):
        raise ValueError("'images' must be a list of {\"where\": \"question\"|\"answer\", \"pos\": int}")
    out = []
    for im in images:
        if not isinstance(im, dict) or im.get("where") not in ("question", "answer") or not isinstance(im.get("pos"), int):
            raise ValueError(f"bad image entry {im!r}: expected {{\"where\": \"question\"|\"answer\", \"pos\": int}}")
        out.append(ImagePlacement(im["where"], im["pos"]))
    return out


def preview(tok: Tokenizer, matcher, cfg: TextConfig, sample: dict) -> dict:
    """One preview answer: ``input_ids``, ``labels``, ``loss_weight``, ``text`` (``Tokenizer.render``) and the
    meta values the build would store."""
    if not isinstance(sample, dict):
        raise ValueError("each line must be a JSON object")
    question, answer = sample.get("question", ""), sample.get("answer", "")
    if not isinstance(question, str) or not isinstance(answer, str):
        raise ValueError("'question' and 'answer' must be strings")
    enc = encode_text(tok, matcher, question, answer, _placements(sample.get("images", [])), cfg)
    out = {
        "input_ids": enc.input_ids.tolist(),
        "labels": enc.labels.tolist(),
        "loss_weight": [float(w) for w in enc.loss_weight],
        "text": tok.render(enc.input_ids, enc.labels, enc.loss_weight, enc.n_question_tokens),
        "n_question_tokens": enc.n_question_tokens,
        "image_spans": enc.image_spans,
        "keywords": enc.keywords,
        "truncated": enc.truncated,
        "tokenizer": tok.fingerprint,
    }
    if enc.truncated:
        out["answer"] = enc.answer
    if "id" in sample:
        out = {"id": sample["id"], **out}
    return out


def main(argv: list[str] | None = None) -> int:
    from pipelines.keywords import make_matcher

    d = TextConfig()
    ap = argparse.ArgumentParser(
        prog="python -m pipelines.text",
        description="Token preview: reads JSON lines {\"question\": str, \"answer\": str, \"images\": [{\"where\": "
                    "\"question\"|\"answer\", \"pos\": int}]} on stdin and writes one JSON line per input with "
                    "input_ids, labels, loss_weight and a readable 'text', through the build's code path. "
                    "'pos' follows RadFM: the image goes before character max(pos-1, 0).")
    ap.add_argument("--tokenizer", default=DEFAULT_TOKENIZER,
                    help="tokenizer folder or tokenizer.model (default: the build's default tokenizer)")
    ap.add_argument("--keywords", default="lexicon", help="lexicon | lexicon+spacy:MODEL | none (as the build; a "
                    "dataset's own label names are not included)")
    ap.add_argument("--max-length", type=int, default=d.max_length)
    ap.add_argument("--min-answer-tokens", type=int, default=d.min_answer_tokens)
    args = ap.parse_args(argv)
    try:
        tok = load_tokenizer(args.tokenizer)
        matcher = make_matcher(args.keywords)
    except (TokenizerError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cfg = TextConfig(max_length=args.max_length, min_answer_tokens=args.min_answer_tokens)
    failed = 0
    for n, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            out = preview(tok, matcher, cfg, json.loads(line))
        except (ValueError, TooLong) as exc:  # json.JSONDecodeError is a ValueError
            failed += 1
            out = {"line": n, "error": f"{getattr(exc, 'reason', 'bad_input')}: {exc}"}
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
