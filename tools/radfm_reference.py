"""RadFM's token layout, re-implemented from its description, run with RadFM's own library versions.

This is the *reference* side of ``tools/radfm_tokens.py``: an independent re-implementation of what
``src/Dataset/multi_dataset.py`` of chaoyi-wu/RadFM does to one sample's text (``get_tokenizer``, ``text_add_image``,
the tokenizer calls, the EOS write, ``question_length``, the labels and ``find_position``), following
``../shared/reference/radfm-original.md`` §3.2–§3.6. It must run with **transformers 4.28.1** (the version RadFM
pins; later versions treat whitespace next to added tokens differently) and sentencepiece, in a throwaway
environment that is not this project's::

    python3.11 -m venv /tmp/radfm-tok-venv
    /tmp/radfm-tok-venv/bin/pip install transformers==4.28.1 sentencepiece==0.1.99
    /tmp/radfm-tok-venv/bin/python tools/radfm_reference.py --tokenizer FOLDER < cases.jsonl > ids.jsonl

Input: JSON lines ``{"id", "question", "answer", "images": [{"where": "question"|"answer", "pos": int}],
"keywords": [str], "max_seq": int}``. Output: one JSON line per case with ``input_ids``, ``labels``,
``loss_weight`` and ``attention_mask`` cut after RadFM's EOS slot (RadFM pads to ``max_seq``; the padding is
dropped here, nothing else), or ``{"id", "error"}`` where RadFM's code raises. This file imports nothing from the
project.
"""

from __future__ import annotations

import argparse
import json
import sys

VOC_SIZE = 32000  # hard-coded in RadFM


def get_tokenizer(folder: str, max_img_size: int = 100, image_num: int = 32):
    """§3.2: LlamaTokenizer, <image>, </image>, <image0..>, then pad 0 / bos 1 / eos 2."""
    from transformers import LlamaTokenizer

    tok = LlamaTokenizer.from_pretrained(folder)
    special = ["<image>", "</image>"]
    padding_tokens = []
    for i in range(max_img_size):
        run = ""
        for j in range(image_num):
            name = "<image" + str(i * image_num + j) + ">"
            run += name
            special.append(name)
        padding_tokens.append(run)
    tok.add_special_tokens({"additional_special_tokens": special})
    tok.pad_token_id = 0
    tok.bos_token_id = 1
    tok.eos_token_id = 2
    return tok, padding_tokens


def text_add_image(images: list[dict], question, answer, padding_tokens: list[str], max_img_size: int):
    """§3.3: per-character buckets, span before character max(p - 1, 0), then every '•' removed from the answer."""
    question, answer = str(question), str(answer)
    q_buckets = [[] for _ in range(len(question))]
    a_buckets = [[] for _ in range(len(answer))]
    for index, image in enumerate(images):
        where, p = image["where"], image["pos"]
        loc = max(p - 1, 0)
        (q_buckets if where == "question" else a_buckets)[loc].append(index)  # IndexError as in RadFM

    def rebuild(text: str, buckets: list[list[int]]) -> str:
        out = ""
        for ch, bucket in zip(text, buckets):
            for idx in bucket:
                if idx < max_img_size:
                    out += "<image>" + padding_tokens[idx] + "</image>"
                else:
                    print("Error: out of max image input size", file=sys.stderr)
            out += ch
        return out

    return rebuild(question, q_buckets), rebuild(answer, a_buckets).replace("•", "")


def encode(tok, padding_tokens, case: dict, max_img_size: int) -> dict:
    """§3.5 and §3.6 for one sample."""
    max_seq = int(case.get("max_seq", 2048))
    question, answer = text_add_image(case.get("images", []), case["question"], case["answer"], padding_tokens,
                                      max_img_size)
    tok.padding_side = "right"
    enc = tok(question + " " + answer, max_length=max_seq, truncation=True, padding="max_length")
    lang_x, mask = list(enc["input_ids"]), list(enc["attention_mask"])
    n_real = sum(mask)
    try:
        lang_x[n_real] = 2  # EOS into the first pad slot (attention stays 0)
    except IndexError:
        pass  # the text filled max_seq: no EOS
    q_len = sum(tok(question, max_length=max_seq, truncation=True, padding="max_length")["attention_mask"])
    labels = [(-100 if (t == 0 or t >= VOC_SIZE) else t) for t in lang_x]
    labels[:q_len] = [-100] * min(q_len, len(labels))
    # find_position: 1 everywhere, 0 where the label is ignored, 3 on every exact match of a keyword's ids
    keys = [tok(str(w), max_length=max_seq)["input_ids"][1:] for w in case.get("keywords", [])]
    weights = [0.0 if x == -100 else 1.0 for x in labels]
    for i in range(len(labels)):
        for k in keys:
            if k and labels[i:i + len(k)] == k:
                weights[i:i + len(k)] = [3.0] * len(k)
    keep = min(n_real + 1, max_seq)  # real tokens + the EOS slot
    return {"id": case["id"], "input_ids": lang_x[:keep], "labels": labels[:keep], "loss_weight": weights[:keep],
            "attention_mask": mask[:keep], "question_length": q_len, "text": question + " " + answer}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizer", required=True, help="tokenizer folder (as RadFM's get_tokenizer receives it)")
    ap.add_argument("--max-img-size", type=int, default=100, help="RadFM's max_img_size (100 in training)")
    args = ap.parse_args(argv)
    import transformers

    if transformers.__version__ != "4.28.1":
        print(f"radfm_reference.py needs transformers 4.28.1 (RadFM's pin), found {transformers.__version__}; "
              "see the module docstring for the throwaway venv", file=sys.stderr)
        return 2
    tok, padding_tokens = get_tokenizer(args.tokenizer, args.max_img_size)
    for line in sys.stdin:
        if not line.strip():
            continue
        case = json.loads(line)
        try:
            out = encode(tok, padding_tokens, case, args.max_img_size)
        except IndexError as exc:
            out = {"id": case["id"], "error": f"IndexError: {exc}"}
        print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
