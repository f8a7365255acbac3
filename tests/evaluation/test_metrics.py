"""Every metric on hand-made predictions with known values (one test group per metric module)."""

from __future__ import annotations

import math

import pytest

from evaluation.metrics import METRICS, MetricContext, MetricSkipped, make_metric


def run(name: str, pairs, context: MetricContext | None = None) -> dict:
    metric = make_metric(name, context)
    for pred, truth in pairs:
        metric.update(pred, truth)
    return metric.compute()


# ------------------------------------------------------------------------------------------------ accuracy.py
def test_yes_no_accuracy_counts_unanswered_as_wrong():
    got = run("yes_no_accuracy", [("Yes.", "yes"), ("no, it is not", "no"), ("There is one", "yes"), ("no", "yes")])
    assert got == {"yes_no_accuracy": 0.5, "unanswered": 0.25}


def test_modality_accuracy_folds_aliases():
    got = run("modality_accuracy", [("This is an MR scan.", "MRI"), ("CT", "MRI"), ("computed tomography", "CT")])
    assert got == {"modality_accuracy": pytest.approx(2 / 3)}


def test_closed_accuracy_is_normalised_exact_match_and_empty_is_wrong():
    assert run("closed_accuracy", [("The left lung.", "left lung"), ("", ""), ("right", "left")]) == {
        "closed_accuracy": pytest.approx(1 / 3)}


def test_reset_forgets_pairs():
    metric = make_metric("closed_accuracy")
    metric.update("a", "a")
    metric.reset()
    metric.update("a", "b")
    assert metric.compute() == {"closed_accuracy": 0.0}


# ------------------------------------------------------------------------------------------------ exact_match.py
def test_exact_match():
    assert run("exact_match", [("The MRI.", "mri"), ("MRI of the brain", "MRI")]) == {"exact_match": 0.5}


# ------------------------------------------------------------------------------------------------ token_f1.py
def test_token_f1_known_values():
    # common {left, effusion}: precision 2/3, recall 2/3 -> F1 2/3; then 1 (identical) and 0 (disjoint)
    got = run("token_f1", [("left pleural effusion", "small left effusion"), ("Normal brain MRI", "normal brain mri"),
                           ("cat", "dog")])
    assert got["token_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert run("token_f1", [("", "")]) == {"token_f1": 1.0}
    assert run("token_f1", [("", "x")]) == {"token_f1": 0.0}
    # repeated tokens count as often as in both: pred "left left", truth "left" -> P 1/2, R 1 -> 2/3
    assert run("token_f1", [("left left", "left")])["token_f1"] == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------------------------ findings.py
def test_finding_precision_recall_f1_per_label_and_averaged():
    pairs = [
        ("Atelectasis and a pleural effusion.", "Atelectasis, Pleural Effusion"),  # both right
        ("Cardiomegaly", "Atelectasis"),  # cardiomegaly FP, atelectasis FN
        ("No finding", "No Finding"),  # right
    ]
    got = run("finding_micro_f1", pairs, MetricContext(labels=("Cardiomegaly", "Effusion")))
    per = got["per_finding"]
    assert per["Atelectasis"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert per["Pleural Effusion"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert per["Cardiomegaly"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert per["Effusion"]["support"] == 0  # "pleural effusion" counted as the longer label only
    # micro: tp 3 (atelectasis, pleural effusion, no finding), fp 1, fn 1 -> P = R = F1 = 3/4
    assert got["finding_micro_f1"] == pytest.approx(0.75)
    assert got["finding_micro_precision"] == pytest.approx(0.75) and got["finding_micro_recall"] == pytest.approx(0.75)
    # macro over labels present in a truth: atelectasis 2/3, pleural effusion 1, no finding 1
    assert got["finding_macro_f1"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert got["finding_exact_set"] == pytest.approx(2 / 3)


# ------------------------------------------------------------------------------------------------ bleu.py
def test_bleu4_known_values():
    assert run("bleu4", [("the cat sat on the mat", "the cat sat on the mat")])["bleu4"] == pytest.approx(1.0)
    # one substitution in six tokens: n-gram precisions 5/6, 4/5, 3/4, 2/3; same length -> no brevity penalty
    assert run("bleu4", [("a b c d e f", "a b c d e g")])["bleu4"] == pytest.approx((1 / 3) ** 0.25, abs=1e-6)
    # brevity penalty: a 4-token prefix of an 8-token reference has every precision 1 -> exp(1 - 8/4)
    assert run("bleu4", [("a b c d", "a b c d e f g h")])["bleu4"] == pytest.approx(math.exp(1 - 2), abs=1e-6)
    assert run("bleu4", [])["bleu4"] == 0.0


def test_bleu4_is_corpus_level():
    pairs = [("a b c d e f", "a b c d e f"), ("u v w x", "p q r s")]
    # pooled counts: 1-grams 6/10, 2-grams 5/8, 3-grams 4/6, 4-grams 3/4 (not the mean of 1.0 and 0.0)
    expected = (6 / 10 * 5 / 8 * 4 / 6 * 3 / 4) ** 0.25
    assert run("bleu4", pairs)["bleu4"] == pytest.approx(expected, abs=1e-6)


# ------------------------------------------------------------------------------------------------ rouge.py
def test_rouge_l_known_values():
    # LCS 3 of 3 predicted and 6 reference tokens: P 1, R 1/2 -> F 2/3
    assert run("rouge_l", [("the cat sat", "the cat sat on the mat")]) == {"rouge_l": pytest.approx(2 / 3)}
    assert run("rouge_l", [("Effusions noted", "effusion noted")]) == {"rouge_l": pytest.approx(1.0)}  # stemming
    assert run("rouge_l", [("x", "y"), ("a b", "a b")]) == {"rouge_l": pytest.approx(0.5)}


# ------------------------------------------------------------------------------------------------ bertscore.py
def test_bertscore_is_skipped_without_a_local_model(tmp_path):
    with pytest.raises(MetricSkipped, match="--bertscore-model"):
        make_metric("bertscore_f1")
    with pytest.raises(MetricSkipped, match="no such folder"):
        make_metric("bertscore_f1", MetricContext(bertscore_model=str(tmp_path / "missing")))


def test_radgraph_is_listed_as_unavailable():
    with pytest.raises(MetricSkipped, match="radgraph"):
        make_metric("radgraph_f1")


def _tiny_bert(folder):
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "lungs", "are", "clear", "heart", "is", "enlarged",
             "no", "effusion", "."]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)).save_pretrained(str(folder))


def test_bertscore_with_a_local_encoder(tmp_path):
    _tiny_bert(tmp_path)
    context = MetricContext(bertscore_model=str(tmp_path))
    same = run("bertscore_f1", [("the lungs are clear .", "the lungs are clear .")], context)
    assert same["bertscore_f1"] == pytest.approx(1.0, abs=1e-5)
    assert same["bertscore_precision"] == pytest.approx(1.0, abs=1e-5)
    other = run("bertscore_f1", [("the heart is enlarged", "no effusion")], context)
    assert 0 < other["bertscore_f1"] < 1
    # a prediction whose tokens all occur in a longer truth: precision (its tokens are found) above recall
    part = run("bertscore_f1", [("the lungs", "the lungs are clear . no effusion")], context)
    assert part["bertscore_precision"] > part["bertscore_recall"]
    assert run("bertscore_f1", [("", "the lungs")], context)["bertscore_f1"] == 0.0


def test_every_registered_metric_follows_the_interface():
    for name, cls in METRICS.items():
        assert cls.name == name
        try:
            metric = make_metric(name, MetricContext())
        except MetricSkipped:
            continue
        metric.update("Yes, the lungs are clear.", "yes")
        values = metric.compute()
        assert next(iter(values)) == name  # the headline comes first
        assert all(0.0 <= v <= 1.0 for v in values.values() if isinstance(v, float))
