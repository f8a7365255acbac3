"""Medical-keyword lexicon matching for the loss weights.

The project ships a lexicon (``pipelines/data/radiology_terms.txt``: finding names of the
label sets, modality, anatomy and common radiology terms); each source adds its own
label names. Matching is on word n-grams of the answer, case-insensitive, longest match
first, so it returns character spans of the text *in context* — the tokens those spans
cover get the keyword weight (RadFM tokenized each keyword alone and searched for that
token sequence, which misses words whose in-context split differs).

Words are runs of letters and digits: hyphens and apostrophes separate them, so a term also
matches as a part of a compound (``mass`` in ``mass-like``, ``effusion`` in ``effusion's``,
``pneumonia`` in ``post-pneumonia``), as RadFM's token-sequence search found ``▁mass`` inside
``mass-like``; a hyphenated term (``ground-glass opacity``, ``x-ray``) matches with a hyphen or
a space. Unlike RadFM's search, a term never matches inside a longer word (``mass`` in
``massive``).

Optionally a spaCy / scispaCy pipeline the user has installed adds its entity spans
(``--keywords lexicon+spacy:en_core_sci_lg``); nothing is downloaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

_WORD = re.compile(r"[A-Za-z0-9]+")
MAX_TERM_WORDS = 6


def normalise_term(term: str) -> tuple[str, ...]:
    return tuple(w.lower() for w in _WORD.findall(term))


@lru_cache(maxsize=1)
def shipped_terms() -> tuple[str, ...]:
    text = resources.files("pipelines").joinpath("data/radiology_terms.txt").read_text("utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


class KeywordMatcher:
    """Finds lexicon terms in text; returns ``(start, end, term)`` character spans."""

    def __init__(self, terms: Iterable[str], spacy_model: str | None = None):
        self._terms: dict[tuple[str, ...], str] = {}
        for term in terms:
            words = normalise_term(term)
            if words and len(words) <= MAX_TERM_WORDS:
                self._terms.setdefault(words, term.strip().lower())
        self._index()
        self._nlp = _load_spacy(spacy_model) if spacy_model else None
        self.description = f"lexicon:{len(self._terms)}" + (f"+spacy:{spacy_model}" if spacy_model else "")

    def __len__(self) -> int:
        return len(self._terms)

    def with_terms(self, extra: Iterable[str]) -> "KeywordMatcher":
        extra = [t for t in extra if normalise_term(t) and normalise_term(t) not in self._terms]
        if not extra:
            return self
        clone = KeywordMatcher.__new__(KeywordMatcher)
        clone._terms = dict(self._terms)
        for term in extra:
            clone._terms.setdefault(normalise_term(term), term.strip().lower())
        clone._index()
        clone._nlp = self._nlp
        clone.description = self.description.replace(f"lexicon:{len(self._terms)}", f"lexicon:{len(clone._terms)}")
        return clone

    def _index(self) -> None:
        """Per first word, the lengths (> 1 word, longest first) of the terms starting with it: only those n-grams
        can match at a word (singularising touches the last word only), so :meth:`find` tries no others."""
        lengths: dict[str, set[int]] = {}
        for words in self._terms:
            if len(words) > 1:
                lengths.setdefault(words[0], set()).add(len(words))
        self._multi = {first: tuple(sorted(ns, reverse=True)) for first, ns in lengths.items()}

    def _lookup(self, key: tuple[str, ...]) -> str | None:
        """Exact n-gram, else the n-gram with its last word singularised (-ies, -es, -s)."""
        term = self._terms.get(key)
        if term or not key[-1].endswith("s"):
            return term
        last = key[-1]
        for singular in (last[:-3] + "y" if last.endswith("ies") else None, last[:-2] if last.endswith("es") else None, last[:-1]):
            if singular and (term := self._terms.get(key[:-1] + (singular,))):
                return term
        return None

    def find(self, text: str) -> list[tuple[int, int, str]]:
        matches = list(_WORD.finditer(text))
        words = [m.group().lower() for m in matches]
        spans: list[tuple[int, int, str]] = []
        i, count, multi = 0, len(words), self._multi
        while i < count:
            n, term = 1, None
            for n in multi.get(words[i], ()):  # longest first, as the plain n = longest..1 search would find
                if n <= count - i and (term := self._lookup(tuple(words[i : i + n]))):
                    break
            if not term:
                n, term = 1, self._lookup((words[i],))
            if term:
                spans.append((matches[i].start(), matches[i + n - 1].end(), term))
            i += n
        if self._nlp is not None:
            spans = _merge(spans, [(e.start_char, e.end_char, e.text.lower()) for e in self._nlp(text).ents])
        return spans


def _merge(a: list[tuple[int, int, str]], b: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Union of two span lists, dropping spans of ``b`` that overlap one of ``a``."""
    out = list(a)
    for s, e, t in b:
        if not any(s < ae and e > as_ for as_, ae, _ in a):
            out.append((s, e, t))
    return sorted(out)


def _load_spacy(model: str):
    try:
        import spacy
    except ImportError as exc:
        raise RuntimeError(f"keyword model spacy:{model} requested but spaCy is not installed") from exc
    try:
        return spacy.load(model, disable=["parser", "lemmatizer"])
    except OSError as exc:
        raise RuntimeError(f"spaCy model {model!r} is not installed (nothing is downloaded at run time)") from exc


def make_matcher(spec: str = "lexicon", extra_terms: Iterable[str] = ()) -> KeywordMatcher:
    """``lexicon`` | ``lexicon+spacy:<model>`` | ``none`` (no keyword weighting)."""
    if spec == "none":
        return KeywordMatcher([])
    base, _, rest = spec.partition("+")
    if base != "lexicon" or (rest and not rest.startswith("spacy:")):
        raise ValueError(f"unknown keyword spec {spec!r}: use lexicon, lexicon+spacy:MODEL or none")
    return KeywordMatcher([*shipped_terms(), *extra_terms], spacy_model=rest[len("spacy:"):] or None)
