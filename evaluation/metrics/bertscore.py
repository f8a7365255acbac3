"""BERTScore F1 (Zhang et al. 2020) with a local encoder; skipped unless the user points at one.

``--bertscore-model DIR``: a Hugging Face encoder folder on disk (e.g. a downloaded ``roberta-large`` or a
biomedical BERT); nothing is downloaded (``local_files_only``). For each pair the encoder's token embeddings
(layer ``bertscore_layer`` of the options, default the last; special tokens left out) are L2-normalised; precision
is the mean over prediction tokens of the best cosine with a truth token, recall the converse, F1 their harmonic
mean. No idf weighting and no baseline rescaling, so the numbers are not comparable with ``bert-score``'s rescaled
ones. An empty prediction or truth scores 0.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from evaluation.metrics.base import Metric, MetricContext, MetricSkipped

MAX_TOKENS = 512


class BertScore(Metric):
    name = "bertscore_f1"

    def __init__(self, context: MetricContext | None = None) -> None:
        context = context or MetricContext()
        if not context.bertscore_model:
            raise MetricSkipped("model-based; pass --bertscore-model DIR (a local Hugging Face encoder folder)")
        if not Path(context.bertscore_model).is_dir():
            raise MetricSkipped(f"--bertscore-model {context.bertscore_model}: no such folder")
        super().__init__(context)

    @cached_property
    def _encoder(self):
        from transformers import AutoModel, AutoTokenizer

        path = self.context.bertscore_model
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        return tokenizer, model

    def reset(self) -> None:
        self.p_sum = self.r_sum = self.f_sum = 0.0
        self.count = 0

    def _embed(self, text: str):
        import torch

        tokenizer, model = self._encoder
        enc = tokenizer(text, return_tensors="pt", truncation=True, max_length=MAX_TOKENS,
                        return_special_tokens_mask=True)
        special = enc.pop("special_tokens_mask")[0].bool()
        with torch.no_grad():
            out = model(**enc, output_hidden_states=True)
        layer = self.context.options.get("bertscore_layer", -1)
        emb = out.hidden_states[layer][0][~special]
        return torch.nn.functional.normalize(emb.float(), dim=-1)

    def update(self, pred: str, truth: str) -> None:
        self.count += 1
        if not pred.strip() or not truth.strip():
            return
        p_emb, t_emb = self._embed(pred), self._embed(truth)
        if not len(p_emb) or not len(t_emb):
            return
        sim = p_emb @ t_emb.T
        precision = float(sim.max(dim=1).values.mean())
        recall = float(sim.max(dim=0).values.mean())
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        self.p_sum, self.r_sum, self.f_sum = self.p_sum + precision, self.r_sum + recall, self.f_sum + f1

    def compute(self) -> dict[str, Any]:
        n = max(self.count, 1)
        return {self.name: self.f_sum / n, "bertscore_precision": self.p_sum / n, "bertscore_recall": self.r_sum / n}
