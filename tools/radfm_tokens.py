"""Compare this project's token layout with RadFM's, class by class, and freeze the expected ids for the tests.

Needs (nothing of it is a project dependency; the tests use the frozen file instead):

* a throwaway venv with RadFM's library versions, for ``tools/radfm_reference.py``::

      python3.11 -m venv /tmp/radfm-tok-venv
      /tmp/radfm-tok-venv/bin/pip install transformers==4.28.1 sentencepiece==0.1.99

* RadFM's released tokenizer folder (``Quick_demo/Language_files``), by default
  ``../shared/reference/radfm_tokenizer`` next to the repository (``--radfm-folder``).

Run from the repository root with the project's environment::

    python tools/radfm_tokens.py [--reference-python /tmp/radfm-tok-venv/bin/python] [--freeze] [--doc]

For every case (question, answer, image positions; one or more per class) it runs RadFM's layout
(``radfm_reference.py``, transformers 4.28.1) and ours (``pipelines.text.preview``, the build's code path) on two
folders: RadFM's own, and the *fixture* folder the tests build (the default tokenizer model inside RadFM's
configuration files, with their empty BOS/EOS/UNK strings). It prints, per class, how many cases give identical
``input_ids`` and ``labels``, and how many give identical loss weights when RadFM's ``find_position`` is handed
the keywords our lexicon finds. It also checks ``shards_spec.tokenizer.RADFM_RELEASED`` against the real folder.
``--freeze`` writes the fixture folder's expected ids to ``tests/data/radfm_layout.json``; ``--doc`` writes the
table to ``docs/token-parity.md``.

Over-long cases are compared as the rule says: ours must equal RadFM's untruncated ids up to its cut, the cut must
fall at a word boundary, then EOS. The ``literal-markup`` class (source text that spells ``<image>`` or ``</s>``)
and the ``radfm-raises`` class (positions RadFM's code crashes on) are documented differences
(docs/deviations.md), reported but not counted as agreement.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FROZEN = ROOT / "tests" / "data" / "radfm_layout.json"
DOC = ROOT / "docs" / "token-parity.md"
FOLDER_FILES = ("config.json", "special_tokens_map.json", "tokenizer_config.json")
REFERENCE_MAX_SEQ = 8192  # RadFM's max_seq for the comparison runs: nothing is truncated on RadFM's side
DOCUMENTED = {"literal-markup", "radfm-raises"}

Q_REPORT = "Can you provide a radiology report for this image?"
A_REPORT = "Findings: The heart is normal in size. No pleural effusion or pneumothorax. Impression: No acute disease."
Q_CASE = "Patient: 54-year-old male. Presentation: cough. What do the images show?"
A_PAPER = "The chest radiograph (Figure 1) demonstrates a large right effusion. CT confirmed it."
LONG = ("The lungs are clear without focal consolidation. There is no pleural effusion. Mild degenerative changes "
        "of the thoracic spine. Heart size is normal; the mediastinal contours are unremarkable. ") * 3


def img(where: str, pos: int) -> dict:
    return {"where": where, "pos": pos}


def cases() -> list[dict]:
    """(class, question, answer, images[, max_length]) for every kind of sample the sources can produce."""
    q = "What is seen at the lung base ?"
    c: list[tuple] = [
        # images in the question
        ("image-question-start", "Describe this image.", "Normal chest.", [img("question", 0)]),
        ("image-question-start", "Describe this image.", "Normal chest.", [img("question", 1)]),
        ("image-question-start", " Describe this image.", "Normal chest.", [img("question", 0)]),
        ("image-question-start", "\nDescribe this image.", "Normal.", [img("question", 1)]),
        ("image-question-middle", q, "Effusion.", [img("question", 8)]),  # before the space after "What is"
        ("image-question-middle", q, "Effusion.", [img("question", 9)]),  # after that space
        ("image-question-middle", "Compare  these two", "Stable.", [img("question", 9)]),  # between double spaces
        ("image-question-middle", "Compare  these two", "Stable.", [img("question", 8)]),
        ("image-question-middle", "Left:right", "Both.", [img("question", 6)]),  # inside a word
        ("image-question-end", Q_REPORT, A_REPORT, [img("question", len(Q_REPORT))]),  # before the final '?'
        ("image-question-end", "Which organ is this", "Liver.", [img("question", 19)]),  # before the last char
        ("image-question-end", "Which organ is this ", "Liver.", [img("question", 20)]),  # before a trailing space
        ("image-question-end", "What modality is used?", "CT.", [img("question", 21)]),  # before the '?' at len-1
        ("image-question-end", "Describe", "Normal.", [img("question", 8)]),
        # images in the answer
        ("image-answer-start", "Describe the figures.", "Figure 1 shows a mass.", [img("answer", 0)]),
        ("image-answer-start", "Describe the figures.", " Figure 1 shows a mass.", [img("answer", 1)]),
        ("image-answer-middle", "Case:", "Axial CT shows a mass. The mass enhances.", [img("answer", 23)]),
        ("image-answer-middle", "Case:", "Axial CT shows a mass. The mass enhances.", [img("answer", 24)]),
        ("image-answer-middle", "Case:", "Axial CT  shows a mass.", [img("answer", 10)]),
        ("image-answer-end", "Case:", "The final image shows the lesion.", [img("answer", 33)]),
        ("image-answer-end", "Case:", "The final image shows the lesion", [img("answer", 32)]),
        ("image-answer-end", "Case:", "Resolved. ", [img("answer", 10)]),
        # several images at one position, and both parts
        ("several-images", "Compare these scans.", "Interval growth.", [img("question", 20), img("question", 20)]),
        ("several-images", "Compare these scans.", "Growth.", [img("question", 0), img("question", 0), img("question", 0)]),
        ("several-images", "Series:", "First  second.", [img("answer", 6), img("answer", 6)]),
        ("several-images", "Which is newer?", "The second.", [img("question", 0), img("question", 15), img("answer", 11)]),
        ("several-images", "Two views", "Same.", [img("question", 3), img("question", 4)]),
        ("several-images", "Views", "Same.", [img("question", 5), img("answer", 0)]),
        # empty question (interleaved papers) and empty answer
        ("empty-question", "", "Yes.", []),
        ("empty-question", "", "Figure 2 shows the mass.", [img("answer", 0)]),
        ("empty-question", "", "As shown here the mass grows.", [img("answer", 14)]),
        ("empty-question", "", " leading space", []),
        ("empty-answer", "Is there a fracture?", "", []),
        ("empty-answer", Q_REPORT, "", [img("question", len(Q_REPORT))]),
        ("empty-answer", "Describe ", "", [img("question", 9)]),
        ("empty-answer", "", "", []),
        # unicode
        ("unicode", "Größe der Läsion?", "Etwa 3 cm, µ ± 2 mm, 45°.", [img("question", 17)]),
        ("unicode", "这是什么？", "肺部结节。", [img("question", 5)]),
        ("unicode", "Emoji 😀 check", "ok 👍 fine", [img("question", 6)]),
        ("unicode", "Non\u00a0breaking", "space\u00a0here", [img("question", 4)]),
        ("unicode", "Ideographic\u3000space", "x", [img("question", 12)]),
        ("unicode", "Café – naïve", "résumé — done", [img("answer", 7)]),
        # newlines and tabs
        ("newlines", "Line one\nLine two", "Answer\nmore", []),
        ("newlines", "Findings:\n", "Clear.", [img("question", 10)]),
        ("newlines", "Findings:\n\nDetails", "Clear.\n\nDone.", [img("question", 11), img("answer", 8)]),
        ("newlines", "Tab\there", "a\r\nb", [img("question", 4)]),
        ("newlines", "Q\n", "\nA", []),
        # leading / trailing / double spaces
        ("spaces", "  Leading spaces", "Trailing spaces  ", []),
        ("spaces", "Double  space  question", "Double  space  answer", []),
        ("spaces", "Trailing ", " leading", []),
        ("spaces", "Q", "   ", []),
        ("spaces", "Spaces around ", "  image", [img("question", 14), img("answer", 1)]),  # before the trailing space
        # bullets
        ("bullets", "List the findings.", "• Effusion\n• Atelectasis\n• Cardiomegaly", []),
        ("bullets", "List.", "Findings: • mass • nodule", [img("answer", 11)]),
        ("bullets", "Bullet • in question?", "• yes", [img("question", 7)]),
        ("bullets", "Only bullets", "••", []),
        ("bullets", "Q", "•Item one.", [img("answer", 1)]),
        # keywords in compounds (ids and labels must agree; weights are compared separately)
        ("keyword-compounds", "Describe the lesion.", "A mass-like opacity with effusion's margins; post-pneumonia scarring.", []),
        ("keyword-compounds", "Findings?", "Pleural effusions and a nodule-like density.", [img("question", 9)]),
        ("keyword-compounds", "Findings?", "X-ray shows pneumothorax.", []),
        ("keyword-compounds", "Findings?", "Effusion's extent: mass-like, non-contrast CT.", [img("answer", 11)]),
        # prompts as the sources produce them
        ("source-prompts", Q_REPORT, A_REPORT, [img("question", len(Q_REPORT))]),
        ("source-prompts", "Is there evidence of cardiomegaly in this image?", "Yes.", [img("question", 48)]),
        ("source-prompts", Q_CASE, "Right lower lobe consolidation.", [img("question", len(Q_CASE))] * 2),
        ("source-prompts", "", A_PAPER, [img("answer", A_PAPER.index(" CT") + 1), img("answer", len(A_PAPER))]),
        # over-long answers (max_length 96 for ours)
        ("over-long", Q_REPORT, LONG, [img("question", len(Q_REPORT))], 96),
        ("over-long", "Report:", LONG.replace(". ", ".\n"), [img("question", 7)], 96),
        ("over-long", "", LONG, [img("answer", 0)], 96),
        ("over-long", "Q?", "word " * 200, [], 64),
        # documented differences
        ("literal-markup", "Is <image> a token here?", "No, </s> and <s> are text.", []),
        ("literal-markup", "Tag", "See <image3> in text", [img("question", 3)]),
        ("radfm-raises", "", "Answer", [img("question", 0)]),  # RadFM: IndexError (question position, empty question)
        ("radfm-raises", "Short", "Answer", [img("question", 9)]),  # RadFM: IndexError (position past the end)
    ]
    out = []
    for n, row in enumerate(c):
        cls, question, answer, images = row[:4]
        out.append({"id": f"{cls}-{n:02d}", "class": cls, "question": question, "answer": answer, "images": images,
                    "max_length": row[4] if len(row) > 4 else 2048})
    return out


# ---------------------------------------------------------------------------------------------------------- runs
def run_reference(python: str, folder: Path, items: list[dict]) -> dict[str, dict]:
    lines = "".join(json.dumps({**it, "max_seq": REFERENCE_MAX_SEQ}) + "\n" for it in items)
    proc = subprocess.run([python, str(ROOT / "tools" / "radfm_reference.py"), "--tokenizer", str(folder)],
                          input=lines, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    if proc.returncode != 0:
        raise SystemExit(f"reference run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return {r["id"]: r for r in map(json.loads, proc.stdout.splitlines())}


def run_ours(folder: Path, items: list[dict]) -> dict[str, dict]:
    from pipelines.config import TextConfig
    from pipelines.keywords import make_matcher
    from pipelines.text import TooLong, preview
    from shards_spec.tokenizer import load_tokenizer

    tok, matcher = load_tokenizer(folder), make_matcher("lexicon")
    out = {}
    for it in items:
        try:
            out[it["id"]] = preview(tok, matcher, TextConfig(max_length=it["max_length"]), it)
        except TooLong as exc:
            out[it["id"]] = {"error": str(exc)}
    return out


def with_keywords(items: list[dict]) -> list[dict]:
    """Each case gets the surface strings our lexicon finds in its answer (RadFM's NER stand-in)."""
    from pipelines.keywords import make_matcher

    m = make_matcher("lexicon")
    return [{**it, "keywords": [it["answer"][s:e] for s, e, _ in m.find(it["answer"])]} for it in items]


def word_boundary_cut(tok, ref_ids: list[int], ours: list[int]) -> bool:
    """Ours = RadFM's ids up to the cut + EOS, and RadFM's next token starts a new word."""
    k = len(ours) - 1
    if ours[-1] != tok.eos_id or ref_ids[:k] != ours[:k] or k >= len(ref_ids):
        return False
    nxt = ref_ids[k]
    return nxt >= tok.identity.base_vocab or tok.piece(nxt).startswith("\u2581") or nxt == tok.eos_id


def compare(tok, items, ref, ours) -> dict[str, dict]:
    """Per class: cases, ids+labels equal, weights equal, and the ids of the disagreeing cases."""
    table: dict[str, dict] = defaultdict(lambda: {"cases": 0, "tokens": 0, "weights": 0, "differ": []})
    for it in items:
        row = table[it["class"]]
        row["cases"] += 1
        r, o = ref[it["id"]], ours[it["id"]]
        if "error" in r or "error" in o:
            if it["class"] == "radfm-raises" and "error" in r and "error" not in o:
                row["differ"].append(f"{it['id']}: RadFM {r['error']}; ours places the image (documented)")
            else:
                row["differ"].append(f"{it['id']}: RadFM {r.get('error', 'ok')}, ours {o.get('error', 'ok')}")
            continue
        if it["class"] == "over-long":
            ok = word_boundary_cut(tok, r["input_ids"], o["input_ids"]) and o["labels"][:-1] == r["labels"][:len(o["labels"]) - 1]
            ok = ok and len(o["input_ids"]) <= it["max_length"] and o["truncated"]
            weights_ok = o["loss_weight"][:-1] == r["loss_weight"][:len(o["loss_weight"]) - 1]
        else:
            ok = o["input_ids"] == r["input_ids"] and o["labels"] == r["labels"]
            weights_ok = ok and o["loss_weight"] == r["loss_weight"]
        row["tokens"] += ok
        row["weights"] += weights_ok
        if not ok:
            row["differ"].append(f"{it['id']}: ids/labels differ")
        elif not weights_ok:
            row["differ"].append(f"{it['id']}: loss weights differ")
    return dict(table)


def fixture_folder(radfm_folder: Path, target: Path) -> dict[str, object]:
    """RadFM's configuration files around the default tokenizer model; returns the files' JSON contents."""
    from shards_spec.tokenizer import default_model_file

    target.mkdir(parents=True, exist_ok=True)
    files = {name: json.loads((radfm_folder / name).read_text()) for name in FOLDER_FILES}
    for name, content in files.items():
        (target / name).write_text(json.dumps(content))
    shutil.copyfile(default_model_file(), target / "tokenizer.model")
    return files


def table_markdown(results: dict[str, dict[str, dict]]) -> str:
    lines = ["| class | cases | RadFM's folder: ids+labels equal | weights equal | fixture folder: ids+labels equal | weights equal |",
             "|---|---|---|---|---|---|"]
    radfm, fixture = results["radfm"], results["fixture"]
    for cls in radfm:
        a, b = radfm[cls], fixture[cls]
        note = " (documented difference)" if cls in DOCUMENTED else ""
        lines.append(f"| {cls}{note} | {a['cases']} | {a['tokens']} | {a['weights']} | {b['tokens']} | {b['weights']} |")
    counted = [c for c in radfm if c not in DOCUMENTED]
    tot = lambda res, k: sum(res[c][k] for c in counted)  # noqa: E731
    n = sum(radfm[c]["cases"] for c in counted)
    lines.append(f"| **all but documented** | {n} | {tot(radfm, 'tokens')} | {tot(radfm, 'weights')} | "
                 f"{tot(fixture, 'tokens')} | {tot(fixture, 'weights')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference-python", default="/tmp/radfm-tok-venv/bin/python",
                    help="python of a venv with transformers==4.28.1 and sentencepiece")
    ap.add_argument("--radfm-folder", type=Path, default=ROOT.parent / "shared" / "reference" / "radfm_tokenizer")
    ap.add_argument("--freeze", action="store_true", help=f"write {FROZEN.relative_to(ROOT)}")
    ap.add_argument("--doc", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    args = ap.parse_args(argv)
    folder = args.radfm_folder
    if not (folder / "tokenizer.model").is_file() and Path("/work/shared/reference/radfm_tokenizer/tokenizer.model").is_file():
        folder = Path("/work/shared/reference/radfm_tokenizer")
    missing = []
    if not (folder / "tokenizer.model").is_file():
        missing.append(f"RadFM's tokenizer folder (tokenizer.model, {', '.join(FOLDER_FILES)}) at {folder} "
                       "(pass --radfm-folder)")
    if not Path(args.reference_python).is_file():
        missing.append(f"a python with transformers==4.28.1 + sentencepiece at {args.reference_python} "
                       "(python3.11 -m venv /tmp/radfm-tok-venv && /tmp/radfm-tok-venv/bin/pip install "
                       "transformers==4.28.1 sentencepiece==0.1.99; or pass --reference-python)")
    if missing:
        print("tools/radfm_tokens.py needs:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 2

    from shards_spec.tokenizer import RADFM_RELEASED, load_tokenizer

    radfm_tok = load_tokenizer(folder)
    if radfm_tok.identity != RADFM_RELEASED or radfm_tok.identity.model_sha256 != RADFM_RELEASED.model_sha256:
        print(f"RADFM_RELEASED is stale: the folder gives {radfm_tok.identity.to_dict()}", file=sys.stderr)
        return 1
    print(f"RADFM_RELEASED matches {folder}: {RADFM_RELEASED.describe()}")

    items = with_keywords(cases())
    results: dict[str, dict] = {}
    frozen_cases = []
    with tempfile.TemporaryDirectory() as tmp:
        fixture = Path(tmp) / "radfm_style"
        files = fixture_folder(folder, fixture)
        for name, path in (("radfm", folder), ("fixture", fixture)):
            tok = load_tokenizer(path)
            ref, ours = run_reference(args.reference_python, path, items), run_ours(path, items)
            results[name] = compare(tok, items, ref, ours)
            if name == "fixture":
                for it in items:
                    r = ref[it["id"]]
                    expected = {"error": r["error"]} if "error" in r else {k: r[k] for k in ("input_ids", "labels", "loss_weight")}
                    frozen_cases.append({k: it[k] for k in ("id", "class", "question", "answer", "images", "keywords",
                                                              "max_length")} | {"radfm": expected})
    md = table_markdown(results)
    print(md)
    for name, res in results.items():
        for cls, row in res.items():
            for d in row["differ"]:
                print(f"  [{name}] {d}")
    if args.freeze:

        FROZEN.parent.mkdir(parents=True, exist_ok=True)
        doc = {"generated_by": "tools/radfm_tokens.py --freeze (RadFM side: tools/radfm_reference.py, transformers 4.28.1)",
               "folder": files, "reference_max_seq": REFERENCE_MAX_SEQ, "cases": frozen_cases}
        text = "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in doc.items()
                                   if k != "cases")
        text += ',\n "cases": [\n' + ",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in frozen_cases) + "\n ]\n}\n"
        FROZEN.write_text(text, encoding="utf-8")
        print(f"wrote {FROZEN.relative_to(ROOT)} ({len(frozen_cases)} cases)")
    if args.doc:
        DOC.write_text(
            "# Token layout parity with RadFM\n\n"
            "Printed by `python tools/radfm_tokens.py --doc` (RadFM's side: `tools/radfm_reference.py` under "
            "transformers 4.28.1, RadFM's pin). Each case is a (question, answer, image positions) sample; *ids+labels "
            "equal* counts cases whose `input_ids` and `labels` are identical to RadFM's; *weights equal* hands RadFM's "
            "`find_position` the keywords our lexicon finds and counts identical loss weights (the matching rules "
            "differ by design, docs/deviations.md row 13). Over-long cases count as equal when ours is RadFM's "
            "untruncated sequence up to a word boundary, then EOS (row 11). The fixture folder is the default "
            "tokenizer model inside RadFM's configuration files; the tests replay its cases "
            "(`tests/data/radfm_layout.json`).\n\n" + md + "\n", encoding="utf-8")
        print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
