"""``case_vqa``: context truncation (first sentence + last four), ``Q:`` / ``A:`` removed, each figure at the end of
the context or of the whole question."""

from __future__ import annotations

from task_helpers import record

from pipelines import tasks
from pipelines.tasks import CaseVqaInputs
from pipelines.tasks.case_vqa import sentences, truncate_context


def test_truncation_keeps_first_and_last_four_sentences():
    context = " ".join(f"Sentence {i} has 3.5 cm." for i in range(1, 9))
    assert sentences(context)[0] == "Sentence 1 has 3.5 cm."  # a decimal point does not end a sentence
    assert truncate_context(context) == " ".join(f"Sentence {i} has 3.5 cm." for i in (1, 5, 6, 7, 8))
    short = "One. Two. Three. Four. Five."
    assert truncate_context(short) == short  # five sentences are kept whole


def test_question_answer_and_positions():
    inputs = CaseVqaInputs("A 60-year-old man had a cough. A radiograph was taken.", "Q: What did it show?", "A: A mass.")
    ends = set()
    for seed in range(20):
        spec = tasks.sample(seed, record(2, "PMC9:ab", "pmc_casereport", "2d"), inputs, max_images=10)
        context = "A 60-year-old man had a cough. A radiograph was taken."
        assert spec.question == context + "\nWhat did it show?" and spec.answer == "A mass."
        assert all(p.where == "question" and p.char in (len(context), len(spec.question)) for p in spec.placements)
        ends |= {p.char for p in spec.placements}
    assert len(ends) == 2
