"""Answer normalisation: how a generated answer and its ground truth are made comparable.

Every rule is a pure function of one string, used on the prediction *and* on the truth, and each is tested on
hand-made answers (``tests/evaluation/test_normalize.py``).

``normalize_answer(text)``
    SQuAD-style: Unicode NFKC, lower case, punctuation (anything but letters, digits and spaces) replaced by a
    space, the articles ``a``/``an``/``the`` dropped, whitespace collapsed. ``"The X-ray."`` -> ``"x ray"``.
``normalize_yes_no(text)``
    ``"yes"`` or ``"no"`` from the *first word* of the normalised answer (``yes``/``yeah``/``yep``/``true``/
    ``correct``/``positive`` -> yes; ``no``/``nope``/``false``/``incorrect``/``negative``/``not`` -> no), else
    ``None`` (an answer that is neither counts as wrong: the model did not answer the closed question).
``normalize_modality(text)``
    The canonical name of the *first* imaging modality mentioned (``"This is an MR scan"`` -> ``"mri"``; aliases in
    :data:`MODALITY_ALIASES`, matched as whole words), else the normalised answer (so two unknown modality names
    still compare by text).
``answer_tokens(text)``
    The normalised answer split on spaces (the bag of tokens of token F1).
``split_findings(text)``
    A diagnosis answer cut into finding names at ``,`` ``;`` ``|`` line breaks and the word ``and``, each
    stripped (``"Atelectasis, Effusion and Mass"`` -> three names; ``"Nodule/Mass"`` stays one).
``find_findings(text, labels)``
    The labels (finding names of the dataset) mentioned in a text: each label is normalised
    (``Pleural_Thickening`` -> ``pleural thickening``) and searched as whole words in the normalised text,
    longest label first, and a matched stretch of text is not matched again (``"pleural effusion"`` counts as
    ``Pleural Effusion`` only, not also as ``Effusion``); the result holds normalised names. No negation handling: RadFM's diagnosis answers list the
    findings present (a normal study is answered by its own label, e.g. ``No Finding``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_NON_WORD = re.compile(r"[^0-9a-z\s]")
_ARTICLES = {"a", "an", "the"}

YES_WORDS = frozenset({"yes", "yeah", "yep", "true", "correct", "positive"})
NO_WORDS = frozenset({"no", "nope", "false", "incorrect", "negative", "not"})

#: canonical modality -> aliases (normalised forms, whole words). The first mention in an answer wins.
MODALITY_ALIASES: dict[str, tuple[str, ...]] = {
    "mri": ("mri", "mr", "magnetic resonance imaging", "magnetic resonance"),
    "ct": ("ct", "computed tomography", "cat scan", "ct scan"),
    "x-ray": ("x ray", "xray", "radiograph", "radiography", "plain film", "cxr"),
    "ultrasound": ("ultrasound", "us", "sonography", "ultrasonography", "sonogram"),
    "pet": ("pet", "positron emission tomography"),
    "mammography": ("mammography", "mammogram"),
    "fluoroscopy": ("fluoroscopy",),
    "nuclear medicine": ("nuclear medicine", "scintigraphy", "spect"),
    "angiography": ("angiography", "angiogram", "dsa"),
}

_FINDING_SEPARATORS = re.compile(r"[,;|\n]|\band\b", re.IGNORECASE)


def normalize_answer(text: str) -> str:
    """See the module docstring."""
    text = unicodedata.normalize("NFKC", str(text)).lower().replace("_", " ")
    text = _NON_WORD.sub(" ", text)
    return " ".join(w for w in text.split() if w not in _ARTICLES)


def answer_tokens(text: str) -> list[str]:
    return normalize_answer(text).split()


def normalize_yes_no(text: str) -> str | None:
    words = normalize_answer(text).split()
    if not words:
        return None
    if words[0] in YES_WORDS:
        return "yes"
    if words[0] in NO_WORDS:
        return "no"
    return None


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![0-9a-z]){re.escape(phrase)}(?![0-9a-z])")


_MODALITY_PATTERNS = [(canonical, _phrase_pattern(alias)) for canonical, aliases in MODALITY_ALIASES.items()
                      for alias in aliases]


def normalize_modality(text: str) -> str:
    norm = normalize_answer(text)
    best: tuple[int, int, str] | None = None  # (start, -length, canonical): earliest, then longest mention
    for canonical, pattern in _MODALITY_PATTERNS:
        m = pattern.search(norm)
        if m and (best is None or (m.start(), -len(m.group())) < best[:2]):
            best = (m.start(), -len(m.group()), canonical)
    return best[2] if best else norm


def split_findings(text: str) -> list[str]:
    return [p.strip() for p in _FINDING_SEPARATORS.split(str(text)) if p and p.strip()]


def find_findings(text: str, labels: Iterable[str]) -> set[str]:
    """The labels mentioned in ``text`` (see the module docstring), as normalised label names."""
    norm = normalize_answer(text)
    taken = [False] * len(norm)
    found: set[str] = set()
    phrases = sorted({normalize_answer(label) for label in labels} - {""}, key=lambda x: (-len(x), x))
    for phrase in phrases:
        for m in _phrase_pattern(phrase).finditer(norm):
            if not any(taken[m.start():m.end()]):
                taken[m.start():m.end()] = [True] * (m.end() - m.start())
                found.add(phrase)
    return found
