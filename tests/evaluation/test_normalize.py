"""Answer normalisers (evaluation.normalize) on hand-made answers."""

from __future__ import annotations

import pytest

from evaluation.normalize import (
    answer_tokens,
    find_findings,
    normalize_answer,
    normalize_modality,
    normalize_yes_no,
    split_findings,
)


@pytest.mark.parametrize("text, expected", [
    ("The X-ray.", "x ray"),
    ("  An   MRI,  of the brain!  ", "mri of brain"),
    ("Pleural_Thickening", "pleural thickening"),
    ("ＣＴ", "ct"),  # full-width letters fold (NFKC)
    ("", ""),
])
def test_normalize_answer_folds_case_punctuation_articles_and_spaces(text, expected):
    assert normalize_answer(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("yes", "yes"), ("Yes.", "yes"), ("YES, there is a small effusion", "yes"), ("true", "yes"),
    ("no", "no"), ("No, the lungs are clear.", "no"), ("Not seen", "no"), ("negative", "no"),
    ("There is an effusion", None), ("", None), ("noted", None), ("yesterday", None),
])
def test_yes_no_is_decided_by_the_first_word(text, expected):
    assert normalize_yes_no(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("MRI", "mri"), ("MR", "mri"), ("This is an MR image.", "mri"), ("magnetic resonance imaging", "mri"),
    ("CT", "ct"), ("Computed tomography of the chest", "ct"), ("X-ray", "x-ray"), ("xray", "x-ray"),
    ("a plain radiograph", "x-ray"), ("Ultrasound", "ultrasound"),
    ("CT, then MRI", "ct"),  # the first mention wins
    ("Thermography", "thermography"),  # unknown: the normalised text
    ("mrsa", "mrsa"),  # aliases match whole words only
])
def test_modality_aliases_fold_to_one_name(text, expected):
    assert normalize_modality(text) == expected


def test_answer_tokens():
    assert answer_tokens("The left, LEFT effusion.") == ["left", "left", "effusion"]


def test_split_findings_at_commas_semicolons_bars_and_and():
    assert split_findings("Atelectasis, Effusion and Mass; Nodule/Mass|Edema\nHernia") == [
        "Atelectasis", "Effusion", "Mass", "Nodule/Mass", "Edema", "Hernia"]
    assert split_findings("") == []


def test_find_findings_prefers_the_longest_label_and_matches_whole_words():
    labels = ["Effusion", "Pleural Effusion", "Mass", "No Finding", "Pleural_Thickening"]
    assert find_findings("A right pleural effusion and a mass.", labels) == {"pleural effusion", "mass"}
    assert find_findings("effusion, pleural thickening", labels) == {"effusion", "pleural thickening"}
    assert find_findings("massive cardiomegaly", labels) == set()  # "mass" is not a word of "massive"
    assert find_findings("No finding.", labels) == {"no finding"}
