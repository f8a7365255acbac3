"""Measure what RadFM-13B's language model keeps for the backward pass, per token, with and without activation
checkpointing: the numbers behind the per-GPU memory arithmetic of docs/scaling.md.

The real ``transformers`` LLaMA code at the ``radfm-13b`` preset's width (hidden 5120, intermediate 13824, 40
heads, vocab 32000) runs in bf16 on the CPU with 1 and then 2 decoder layers; ``saved_tensors_hooks`` add up the
distinct storages autograd keeps (parameters excluded). The 2-layer minus the 1-layer total is one decoder layer;
the rest is the embedding, final norm, logits and loss. Two sequence lengths check that the cost is linear in
tokens (PyTorch's SDPA keeps no s x s attention matrix), so per-token figures scale to 2048 tokens. Also prints the
preset's parameter count (built on the meta device).

    python bench/activations.py            # ~1 GB of RAM per layer, about a minute on an idle core
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from model import RadFMForCausalLM, get_config  # noqa: E402


def saved_bytes(layers: int, seq: int, checkpointing: bool) -> int:
    from transformers import LlamaForCausalLM

    lc = get_config("radfm-13b").to_llama_config()
    lc.num_hidden_layers = layers
    torch.manual_seed(0)
    model = LlamaForCausalLM(lc).to(torch.bfloat16).train()
    if checkpointing:  # as RadFMForCausalLM.gradient_checkpointing_enable
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        if st.data_ptr() not in params:
            seen[st.data_ptr()] = st.nbytes()
        return t

    ids = torch.randint(3, lc.vocab_size, (1, seq))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=ids, labels=ids)
    return sum(seen.values())


def main() -> None:
    with torch.device("meta"):
        full = RadFMForCausalLM(get_config("radfm-13b"))
    total = sum(p.numel() for p in full.parameters())
    llm = sum(p.numel() for p in full.lang_model.parameters())
    print(f"parameters: {total} (language model {llm}, vision + perceiver + image-token rows {total - llm})")
    for ckpt in (False, True):
        for seq in (64, 128):
            one, two = saved_bytes(1, seq, ckpt), saved_bytes(2, seq, ckpt)
            layer, rest = two - one, 2 * one - two
            print(f"checkpointing={ckpt} seq={seq}: per decoder layer {layer / seq:.0f} B/token, "
                  f"embedding+norm+logits+loss {rest / seq:.0f} B/token", flush=True)


if __name__ == "__main__":
    main()
