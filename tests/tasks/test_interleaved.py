"""``interleaved``: empty question, the text as the answer, each figure at the start of the sentence that references
it (RadFM's ``len(text so far)``), sentences joined with single spaces, no random choice."""

from __future__ import annotations

import pytest
from task_helpers import record

from pipelines import tasks
from pipelines.config import TextConfig
from pipelines.tasks import InterleavedInputs
from pipelines.tasks.interleaved import join_sentences
from pipelines.text import encode


def test_figures_sit_where_their_sentences_start():
    inputs = InterleavedInputs(("First sentence.", "Second, see Figure 1.", "Third with Figures 2 and 3.", "Last."),
                               ((), (0,), (1, 2), ()))
    spec = tasks.sample(0, record(3, "PMC1#w000", "pmc_inline", "2d"), inputs, max_images=10)
    assert spec.question == "" and spec.answer == "First sentence. Second, see Figure 1. Third with Figures 2 and 3. Last."
    assert [p.where for p in spec.placements] == ["answer"] * 3
    assert [p.char for p in spec.placements] == [len("First sentence."), len("First sentence. Second, see Figure 1.")] * 1 + [
        len("First sentence. Second, see Figure 1.")]
    assert spec.image_indices == (0, 1, 2) and spec.variant == "text"
    assert all(tasks.sample(s, record(3, "PMC1#w000", "pmc_inline", "2d"), inputs, max_images=10) == spec for s in range(5))


def test_the_loss_covers_the_whole_text(tokenizer):
    inputs = InterleavedInputs(("The heart is normal.", "See Figure 1 for the radiograph."), ((), (0,)))
    spec = tasks.sample(0, record(1, "PMC1#w001", "pmc_inline", "2d"), inputs, max_images=10)
    enc = encode(tokenizer, spec.question, spec.answer, list(spec.placements), [], TextConfig())
    assert enc.n_question_tokens == 1  # BOS only: RadFM's empty question
    image = enc.input_ids >= 32000
    learned = enc.labels != -100
    assert not learned[0] and not learned[image].any() and learned[1:][~image[1:]].all()
    start = int((enc.input_ids == 32000).nonzero()[0][0])
    # the span sits inside the text: text tokens before it and after it
    assert 1 < start < enc.input_ids.size - 35


def test_join_and_inputs_checks():
    assert join_sentences("A.", "B.") == "A. B." and join_sentences("A.\n", "B.") == "A.\nB." and join_sentences("", "B") == "B"
    with pytest.raises(ValueError):
        InterleavedInputs(("a", "b"), ((1,), (0,)))  # figures must ascend through the text
    with pytest.raises(ValueError):
        InterleavedInputs(("a",), ((), ()))


@pytest.fixture(scope="module")
def tokenizer():
    from shards_spec.tokenizer import load_tokenizer

    return load_tokenizer("default")
