"""Text and tokens: one module used by every source.

* The tokenizer: by default the 32,000-piece LLaMA-style SentencePiece model that
  ``mistral-common`` carries (loaded with ``LlamaTokenizer.from_pretrained``); any
  Hugging Face tokenizer directory can be given instead (e.g. the real LLaMA one).
* Image spans exactly as RadFM: ``<image>`` + ``<image{32i}>…<image{32i+31}>`` +
  ``</image>`` for image ``i``; ids ``base``, ``base+1`` and ``base+2+K``.
* Image positions follow RadFM's rule: an offset ``p`` into the question or answer
  inserts the span before character ``max(p-1, 0)``.
* Labels: -100 on BOS, the question, image tokens and padding; EOS is appended and learned.
* Over-long samples: the answer is shortened at a token boundary (never inside an image
  span) when at least ``TextConfig.min_answer_tokens`` answer tokens survive; otherwise the
  sample is rejected with reason ``too_long``.
* Loss weights: 0 where the label is -100, 1 normally, ``keyword_weight`` (3) on tokens
  that overlap a medical keyword found in the answer *in context* (character spans of the
  answer mapped onto the tokens of the whole sentence).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.config import TextConfig
from pipelines.records import ImagePlacement
from shards_spec.layout import (
    IGNORE_INDEX,
    WEIGHT_IGNORED,
    WEIGHT_NORMAL,
    ImageTokenIds,
    image_token_strings,
)

DEFAULT_TOKENIZER = "default"


class TooLong(ValueError):
    reason = "too_long"


# --- tokenizer -----------------------------------------------------------------------


def _cache_dir() -> Path:
    base = os.environ.get("RADFM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "radfm_data"
    )
    return Path(base)


def default_tokenizer_dir() -> Path:
    """A directory holding mistral-common's ``tokenizer.model.v1`` as ``tokenizer.model``."""
    spec = importlib.util.find_spec("mistral_common")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("mistral-common is not installed; pass --tokenizer DIR")
    source = Path(spec.submodule_search_locations[0]) / "data" / "tokenizer.model.v1"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    target = _cache_dir() / f"tokenizer-llama32k-{digest}"
    model = target / "tokenizer.model"
    if not model.exists():
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / f".tokenizer.model.tmp-{os.getpid()}"
        shutil.copyfile(source, tmp)
        os.replace(tmp, model)
    return target


@dataclass
class TextTokenizer:
    """A Hugging Face tokenizer with RadFM's image tokens, plus the ids we need."""

    hf: object
    ids: ImageTokenIds
    bos_id: int | None
    eos_id: int
    fingerprint: str
    name: str

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        return self.hf.decode(list(map(int, ids)), skip_special_tokens=skip_special_tokens)


def load_tokenizer(path: str | os.PathLike | None = None, max_images: int = 10) -> TextTokenizer:
    """Load the tokenizer at ``path`` (``None``/``"default"``: mistral-common's 32k model)
    and add RadFM's image special tokens."""
    from transformers import AutoTokenizer, LlamaTokenizer

    name = str(path) if path not in (None, DEFAULT_TOKENIZER) else DEFAULT_TOKENIZER
    if name == DEFAULT_TOKENIZER:
        hf = LlamaTokenizer.from_pretrained(str(default_tokenizer_dir()))
    else:
        hf = AutoTokenizer.from_pretrained(str(path))
    if "<image>" in hf.get_vocab():
        base = hf.convert_tokens_to_ids("<image>")
    else:
        base = len(hf)
    digest = hashlib.sha256(hf.backend_tokenizer.to_str().encode("utf-8")).hexdigest()
    ids = ImageTokenIds(base)
    hf.add_special_tokens({"additional_special_tokens": image_token_strings(max_images)})
    got = hf.convert_tokens_to_ids(["<image>", "</image>", "<image0>"])
    if got != [ids.start, ids.end, ids.first_placeholder]:
        raise ValueError(f"tokenizer {name}: image tokens got ids {got}, expected {ids.start, ids.end, ids.first_placeholder}")
    if hf.eos_token_id is None:
        raise ValueError(f"tokenizer {name} has no EOS token")
    fingerprint = f"sha256:{digest[:16]}/base{base}"
    return TextTokenizer(hf, ids, hf.bos_token_id, hf.eos_token_id, fingerprint, name)


# --- image placement ---------------------------------------------------------------


def _span_text(image_index: int, ids: ImageTokenIds) -> str:
    first = 32 * image_index
    return "<image>" + "".join(f"<image{first + j}>" for j in range(32)) + "</image>"


def _insert_images(text: str, inserts: list[tuple[int, int]], ids: ImageTokenIds) -> tuple[str, list[int]]:
    """Insert spans (char position, image index) into ``text``.

    Returns the new string and, for each original character, its offset in the new string
    (plus one entry for the end of the string).
    """
    by_pos: dict[int, list[int]] = {}
    for pos, image_index in inserts:
        by_pos.setdefault(min(max(pos - 1, 0), len(text)), []).append(image_index)
    parts: list[str] = []
    char_map: list[int] = []
    prev = added = 0
    for cut in sorted(by_pos):
        parts.append(text[prev:cut])
        char_map.extend(range(prev + added, cut + added))
        spans = "".join(_span_text(i, ids) for i in by_pos[cut])
        parts.append(spans)
        added += len(spans)
        prev = cut
    parts.append(text[prev:])
    char_map.extend(range(prev + added, len(text) + added + 1))
    return "".join(parts), char_map


# --- encoding ------------------------------------------------------------------------


@dataclass
class Encoded:
    input_ids: np.ndarray
    labels: np.ndarray
    loss_weight: np.ndarray
    question: str
    answer: str
    image_spans: list[dict]
    n_question_tokens: int
    truncated: bool
    keywords: list[str] = field(default_factory=list)


def encode(
    tok: TextTokenizer,
    question: str,
    answer: str,
    placements: list[ImagePlacement],
    keyword_spans: list[tuple[int, int, str]],
    cfg: TextConfig,
) -> Encoded:
    """Tokenize one sample. ``keyword_spans`` are (start, end, term) character spans of
    ``answer``; ``placements[i]`` is where image ``i`` goes. Raises :class:`TooLong`."""
    ids = tok.ids
    q_inserts = [(p.char, i) for i, p in enumerate(placements) if p.where == "question"]
    a_inserts = [(p.char, i) for i, p in enumerate(placements) if p.where == "answer"]
    q_text, _ = _insert_images(question, q_inserts, ids)
    a_text, a_map = _insert_images(answer, a_inserts, ids)
    sep = " " if q_text and a_text else ""
    a_offset = len(q_text) + len(sep)
    enc = tok.hf(q_text + sep + a_text, add_special_tokens=False, return_offsets_mapping=True)
    token_ids = list(enc["input_ids"])
    offsets = list(enc["offset_mapping"])
    # A token belongs to the answer if it starts at or after the separator (SentencePiece
    # attaches the separating space to the answer's first piece).
    is_answer = [start >= len(q_text) for start, _ in offsets]

    # Over-long: shorten the answer at a token boundary, never inside an image span.
    prefix = 1 if tok.bos_id is not None else 0
    budget = cfg.max_length - prefix - 1  # room for BOS and EOS
    truncated = False
    if len(token_ids) > budget:
        n_question = sum(1 for a in is_answer if not a)
        n_keep_answer = budget - n_question
        if n_keep_answer < cfg.min_answer_tokens:
            raise TooLong(
                f"{len(token_ids) + prefix + 1} tokens > max_length {cfg.max_length}, "
                f"and only {max(n_keep_answer, 0)} answer tokens would remain"
            )
        dropped = token_ids[budget:]
        if any(ids.is_image_token(t) for t in dropped):
            raise TooLong(f"{len(token_ids) + prefix + 1} tokens > max_length {cfg.max_length} with an image span past the limit")
        token_ids, offsets, is_answer = token_ids[:budget], offsets[:budget], is_answer[:budget]
        truncated = True
        cut = offsets[-1][1] - a_offset  # end of the last kept token, in a_text
        a_text = a_text[:cut]
        answer = answer[: _plain_index(a_map, cut)]

    # Keyword weights: a token is a keyword token if it overlaps a keyword span.
    kw_in_text = [(a_offset + a_map[s], a_offset + a_map[e], term) for s, e, term in keyword_spans]
    weights = []
    labels = []
    for tid, (start, end), ans in zip(token_ids, offsets, is_answer):
        if not ans or ids.is_image_token(tid):
            labels.append(IGNORE_INDEX)
            weights.append(WEIGHT_IGNORED)
            continue
        labels.append(tid)
        hit = any(start < k_end and end > k_start for k_start, k_end, _ in kw_in_text)
        weights.append(cfg.keyword_weight if hit else WEIGHT_NORMAL)
    kept_keywords = sorted({term for s, e, term in kw_in_text if s < (offsets[-1][1] if offsets else 0)})

    if tok.bos_id is not None:
        token_ids.insert(0, tok.bos_id)
        labels.insert(0, IGNORE_INDEX)
        weights.insert(0, WEIGHT_IGNORED)
    token_ids.append(tok.eos_id)
    labels.append(tok.eos_id)
    weights.append(WEIGHT_NORMAL)

    input_ids = np.asarray(token_ids, dtype=np.int32)
    spans = _image_spans(input_ids, placements, ids)
    n_question = int(prefix + sum(1 for a in is_answer if not a))
    return Encoded(
        input_ids=input_ids,
        labels=np.asarray(labels, dtype=np.int32),
        loss_weight=np.asarray(weights, dtype=np.float32),
        question=question,
        answer=answer,
        image_spans=spans,
        n_question_tokens=n_question,
        truncated=truncated,
        keywords=kept_keywords,
    )


def _plain_index(char_map: list[int], new_offset: int) -> int:
    """Largest original character index whose position in the new string is <= offset."""
    lo, hi = 0, len(char_map) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if char_map[mid] <= new_offset:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _image_spans(input_ids: np.ndarray, placements: list[ImagePlacement], ids: ImageTokenIds) -> list[dict]:
    """Token start of each image's span, checked against the token layout."""
    starts = np.flatnonzero(input_ids == ids.start)
    found: dict[int, int] = {}
    for s in starts:
        k = int(input_ids[s + 1]) - ids.first_placeholder
        found[k // 32] = int(s)
    spans = []
    for i, p in enumerate(placements):
        if i not in found:
            raise AssertionError(f"image {i} span missing from the tokenized text")
        s = found[i]
        if input_ids[s : s + 34].tolist() != ids.span(i):
            raise AssertionError(f"image {i} span at token {s} was split by the tokenizer")
        spans.append({"image": i, "where": p.where, "char": p.char, "token_start": s})
    return spans
