"""RadFM causal language model: LLaMA (``transformers.LlamaForCausalLM``) fed by the image-token embedding.

Public API
----------
``RadFMForCausalLM(config)`` (``torch.nn.Module``)
    Submodules ``lang_model`` (``LlamaForCausalLM``) and ``embedding_layer`` (``RadFMEmbedding``), in that order,
    so ``state_dict()`` names equal the released RadFM checkpoint's. ``embedding_layer.weight`` *is*
    ``lang_model.model.embed_tokens.weight`` (one Parameter, listed under both names in ``state_dict()``);
    ``lang_model.lm_head`` is separate and has ``vocab_size`` rows (image tokens cannot be generated).

    ``forward(input_ids, attention_mask=None, vision_x=None, labels=None, loss_weight=None,
    loss_reduction="weighted") -> RadFMOutput(loss, logits, token_accuracy, n_tokens, weight_sum)``
    ``generate(input_ids, vision_x=None, attention_mask=None, max_new_tokens=200, eos_token_id=2,
    pad_token_id=0, do_sample=False, temperature=1.0, top_k=None, top_p=None, seed=None, generator=None)
    -> LongTensor [B, T]`` (new tokens only; EOS included; positions after a row's EOS hold ``pad_token_id``)
    ``save_pretrained(directory)`` / ``RadFMForCausalLM.from_pretrained(directory, device="cpu", dtype=None)``
    (``config.json`` + ``model.safetensors``; the shared embedding is stored once, as
    ``lang_model.model.embed_tokens.weight``, and re-tied on load; ``config.json`` carries ``config.tokenizer``, the
    identity of the tokenizer the weights were trained with)
    ``tie_embeddings()``, ``materialize_buffers(device)``, ``gradient_checkpointing_enable()``.
``RadFMOutput``
    ``transformers.utils.ModelOutput`` with ``loss``, ``logits``, ``token_accuracy``, ``n_tokens``, ``weight_sum``.
``causal_lm_loss(logits, labels, loss_weight=None, reduction="weighted")``
    ``-> (loss, token_accuracy, n_tokens, weight_sum)``
    The shifted token loss (see below), usable without the model.
``position_ids_from_attention_mask(attention_mask) -> LongTensor``

Loss
----
Shifted: ``logits[:, :-1]`` predict ``labels[:, 1:]`` with weights ``loss_weight[:, 1:]``. Per-token cross-entropy
``ce`` (float32), weights ``w`` set to 0 wherever the label is ``-100``.

* ``"weighted"`` (RadFM's intended loss; RadFM computed it but returned the unweighted mean):
  ``sum(w * ce) / sum(w)``; without ``loss_weight`` every non-ignored token has weight 1.
* ``"mean"``: plain mean of ``ce`` over non-ignored tokens (``loss_weight`` ignored).

A batch whose weight sum is 0 gives loss 0 that is still attached to the graph (backward gives zero gradients).
``token_accuracy`` is the fraction of non-ignored shifted positions whose argmax equals the label (0 if none).
``n_tokens`` / ``weight_sum`` are the denominators, for cross-device normalisation.

Attention masks and positions
-----------------------------
Position ids are derived from ``attention_mask`` (``cumsum - 1``, clamped at 0), so right-padded training batches
and left-padded generation batches both get positions 0, 1, ... on their real tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import LlamaForCausalLM
from transformers.utils import ModelOutput

from shards_spec.layout import IGNORE_INDEX

from .config import RadFMConfig
from .embedding import RadFMEmbedding

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
SHARED_EMBEDDING_KEY = "embedding_layer.weight"
LLM_EMBEDDING_KEY = "lang_model.model.embed_tokens.weight"
LOSS_REDUCTIONS = ("weighted", "mean")


@dataclass
class RadFMOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    token_accuracy: torch.Tensor | None = None
    n_tokens: torch.Tensor | None = None
    weight_sum: torch.Tensor | None = None


def position_ids_from_attention_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions 0, 1, ... over the attended tokens of each row; padded positions before them get 0."""
    return (attention_mask.long().cumsum(-1) - 1).clamp_(min=0)


def causal_lm_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    loss_weight: torch.Tensor | None = None,
    reduction: str = "weighted",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shifted token loss; returns ``(loss, token_accuracy, n_tokens, weight_sum)`` (see the module docstring)."""
    if reduction not in LOSS_REDUCTIONS:
        raise ValueError(f"loss_reduction must be one of {LOSS_REDUCTIONS}, got {reduction!r}")
    if labels.shape != logits.shape[:2]:
        raise ValueError(f"labels {tuple(labels.shape)} do not match logits {tuple(logits.shape[:2])}")
    shift_logits = logits[:, :-1].float()
    shift_labels = labels[:, 1:]
    valid = shift_labels != IGNORE_INDEX
    ce = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.shape[-1]),
        shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view_as(shift_labels)

    if reduction == "weighted" and loss_weight is not None:
        if loss_weight.shape != labels.shape:
            raise ValueError(f"loss_weight {tuple(loss_weight.shape)} does not match labels {tuple(labels.shape)}")
        weights = torch.where(valid, loss_weight[:, 1:].float(), 0.0)
    else:
        weights = valid.float()
    weight_sum = weights.sum()
    # When weight_sum == 0 the numerator is exactly 0 too, so the clamp yields a 0 loss with a graph (no NaN).
    loss = (weights * ce).sum() / weight_sum.clamp(min=torch.finfo(torch.float32).tiny)

    with torch.no_grad():
        n_tokens = valid.sum()
        correct = ((shift_logits.argmax(-1) == shift_labels) & valid).sum()
        token_accuracy = correct.float() / n_tokens.clamp(min=1)
    return loss, token_accuracy, n_tokens, weight_sum.detach()


class RadFMForCausalLM(nn.Module):
    """RadFM: ``embedding_layer`` (ViT-3D + perceiver + fc + image-token lookup) feeding ``lang_model`` (LLaMA)."""

    def __init__(self, config: RadFMConfig):
        super().__init__()
        self.config = config
        self.lang_model = LlamaForCausalLM(config.to_llama_config())
        self.embedding_layer = RadFMEmbedding(config)
        self.tie_embeddings()

    # ------------------------------------------------------------------ weights
    def tie_embeddings(self) -> None:
        """Make ``embedding_layer.weight`` the same Parameter as ``lang_model.model.embed_tokens.weight``."""
        self.embedding_layer.weight = self.lang_model.model.embed_tokens.weight

    def embeddings_tied(self) -> bool:
        return self.embedding_layer.weight is self.lang_model.model.embed_tokens.weight

    @torch.no_grad()
    def materialize_buffers(self, device: torch.device | str | None = None) -> None:
        """Recompute non-persistent buffers (the LLaMA rotary ``inv_freq``) after building on the ``meta`` device."""
        for module in self.modules():
            if hasattr(module, "inv_freq") and hasattr(module, "config") and module is not self:
                if device is None:
                    device = next((p.device for p in self.parameters() if not p.is_meta), torch.device("cpu"))
                with torch.device(device):
                    fresh = type(module)(config=module.config)
                for name, buf in fresh.named_buffers(recurse=False):
                    module.register_buffer(name, buf, persistent=False)
                module.attention_scaling = fresh.attention_scaling
        leftover = [n for n, t in [*self.named_parameters(), *self.named_buffers()] if t.is_meta]
        if leftover:
            raise RuntimeError(f"{len(leftover)} tensors still on the meta device, e.g. {leftover[:10]}")

    def gradient_checkpointing_enable(self) -> None:
        """Activation checkpointing in the LLM's decoder layers (as RadFM), non-reentrant."""
        self.lang_model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        vision_x: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        loss_weight: torch.Tensor | None = None,
        loss_reduction: str = "weighted",
    ) -> RadFMOutput:
        """Logits ``[B, L, vocab_size]`` and, with ``labels``, the shifted loss and token accuracy."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        inputs_embeds = self.embedding_layer(input_ids, vision_x)
        out = self.lang_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids_from_attention_mask(attention_mask),
            use_cache=False,
        )
        logits = out.logits
        if labels is None:
            return RadFMOutput(logits=logits)
        loss, accuracy, n_tokens, weight_sum = causal_lm_loss(logits, labels, loss_weight, loss_reduction)
        return RadFMOutput(
            loss=loss, logits=logits, token_accuracy=accuracy, n_tokens=n_tokens, weight_sum=weight_sum
        )

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        vision_x: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        max_new_tokens: int = 200,
        eos_token_id: int | None = 2,
        pad_token_id: int = 0,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Decode up to ``max_new_tokens`` tokens per row with the LLM's KV cache.

        ``input_ids`` must be *left*-padded (``attention_mask`` 0 on the padding); ``vision_x`` is
        ``[B, S, C, H, W, D]`` (2D images as depth-4 stacks). Greedy unless ``do_sample``; sampling applies
        ``temperature``, then ``top_k``, then ``top_p`` (nucleus), drawing from ``generator`` (or a new one seeded
        with ``seed``). A row stops after emitting ``eos_token_id``; generation ends when all rows stopped.
        Returns ``[B, T]`` new token ids, ``T <= max_new_tokens``; after a row's EOS the row holds ``pad_token_id``.
        Does not change train/eval mode: call ``model.eval()`` first to disable the vision tower's dropout.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if not bool(attention_mask[:, -1].all()):
            raise ValueError("generate() needs left padding: the last position of every row must be attended")
        if do_sample and temperature <= 0:
            raise ValueError("temperature must be > 0 when sampling")
        device = input_ids.device
        if do_sample and generator is None and seed is not None:
            generator = torch.Generator(device=device).manual_seed(seed)

        lm = self.lang_model
        mask = attention_mask.long()
        positions = position_ids_from_attention_mask(mask)
        out = lm(
            inputs_embeds=self.embedding_layer(input_ids, vision_x),
            attention_mask=mask,
            position_ids=positions,
            use_cache=True,
            logits_to_keep=1,
        )
        cache = out.cache
        next_logits = out.logits[:, -1]
        last_pos = positions[:, -1:]
        finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=device)
        new_tokens: list[torch.Tensor] = []
        for step in range(max_new_tokens):
            if do_sample:
                chosen = _sample(next_logits.float(), temperature, top_k, top_p, generator)
            else:
                chosen = next_logits.argmax(-1)
            new_tokens.append(torch.where(finished, pad_token_id, chosen))
            if eos_token_id is not None:
                finished |= chosen == eos_token_id
                if bool(finished.all()):
                    break
            if step == max_new_tokens - 1:
                break
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            last_pos = last_pos + 1
            out = lm(
                # Finished rows keep decoding (their output is replaced by pad_token_id), which keeps
                # the batch rectangular; `chosen` is always a valid text id, unlike pad_token_id.
                # (a module call, not F.embedding on its weight: DeepSpeed ZeRO-3 gathers parameters in module calls)
                inputs_embeds=lm.model.embed_tokens(chosen[:, None]),
                attention_mask=mask,
                position_ids=last_pos,
                cache=cache,
                use_cache=True,
            )
            cache = out.cache
            next_logits = out.logits[:, -1]
        if not new_tokens:
            return input_ids.new_empty(input_ids.shape[0], 0)
        return torch.stack(new_tokens, dim=1)

    # ------------------------------------------------------------------ save / load
    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json`` (with ``config.tokenizer``, the tokenizer identity) and ``model.safetensors``
        (shared embedding stored once)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.config.to_json_file(directory / CONFIG_NAME)
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items() if k != SHARED_EMBEDDING_KEY}
        save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt", "model_type": "radfm"})

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
    ) -> RadFMForCausalLM:
        """Load a ``save_pretrained`` directory; the model is built on ``meta`` and filled without a second copy.

        Returns the model in eval mode.
        """
        directory = Path(directory)
        config = RadFMConfig.from_json_file(directory / CONFIG_NAME)
        state = load_file(str(directory / WEIGHTS_NAME), device=str(device))
        if dtype is not None:
            state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
        return cls._from_state_dict(config, state, device)

    @classmethod
    def _from_state_dict(
        cls, config: RadFMConfig, state: dict[str, torch.Tensor], device: torch.device | str
    ) -> RadFMForCausalLM:
        """Build on ``meta``, assign ``state`` (without ``embedding_layer.weight``), re-tie, fill buffers."""
        with torch.device("meta"):
            model = cls(config)
        result = model.load_state_dict(state, strict=False, assign=True)
        missing = [k for k in result.missing_keys if k != SHARED_EMBEDDING_KEY]
        if missing or result.unexpected_keys:
            raise RuntimeError(f"state dict mismatch: missing {missing}, unexpected {result.unexpected_keys}")
        model.tie_embeddings()
        model.materialize_buffers(device)
        return model.eval()


def _sample(
    logits: torch.Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """One token per row from ``softmax(logits / temperature)`` restricted by top-k and top-p."""
    logits = logits / temperature
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and 0.0 < top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # Drop a token when the mass strictly before it already reaches top_p (the top token always stays).
        drop_sorted = (probs.cumsum(-1) - probs) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)
