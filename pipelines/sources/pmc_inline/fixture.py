"""The PMC-Inline demo fixture: the papers of the demo's PMC corpus (:mod:`pipelines.demo.pmc`; real OpenI report
text with figure references) as one JSON per paper under ``papers/``, half in RadFM's sentence-list layout and half
in the public release's layout (text + character offsets), and RadFM's ``radfm/paper_train.csv`` listing them by
RadFM's cluster paths. Their figures are in the ``pmc_figures`` store, beside this folder.

Planted faults: a sentence referencing a figure the store lacks (``missing_file``, the sentence stays), a paper JSON
cut off mid-way (``bad_file``), a listed paper that is not in the download (``missing_file``), a reference whose
offsets lie outside the paper's text (``bad_row``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipelines.demo.content import OPENI_REPORTS
from pipelines.demo.faults import fault
from pipelines.demo.figures import FIGURE_FILES
from pipelines.demo.fixture import DemoOptions, Fixture
from pipelines.demo.pmc import DEFAULT_PAPERS, STORE, Paper, corpus_for
from pipelines.demo.writers import write_csv, write_json, write_text
from pipelines.sources.pmc_inline.source import PAPER_LIST

RADFM_PREFIX = "/home/cs/leijiayu/data/PMC_inline/"


def radfm_layout(paper: Paper) -> list[dict]:
    return [{"text": s, "img_ref": list(r)} for s, r in zip(paper.sentences, paper.refs)]


def public_layout(paper: Paper, pmid: int) -> dict:
    """The public release's object: the text as paragraphs, each reference at its "Figure N" mention."""
    text, refs = "\n", []
    labels = {f.figure_id: k + 1 for k, f in enumerate(paper.figures)}
    for k, (sentence, ids) in enumerate(zip(paper.sentences, paper.refs)):
        start = len(text)
        text += sentence + ("\n" if k == 0 or k % 7 == 0 else " ")
        for fid in ids:
            mention = f"Figure {labels[fid]}"
            at = sentence.find(mention)
            if at < 0:  # "Figures 1, 2, 3": the number's position
                at = sentence.find(str(labels[fid]), sentence.find("Figures"))
                mention = str(labels[fid])
            refs.append({"id": fid, "start": start + at, "end": start + at + len(mention)})
    info = {"article-type": "research-article", "pmid": str(pmid), "pmc": paper.pmcid,
            "publisher-id": f"PONE-D-{paper.doi_suffix}", "doi": f"10.1371/journal.pone.{paper.doi_suffix}"}
    return {"info": info, "text": text, "img_ref": refs}


class PmcInlineFixture(Fixture):
    name = "pmc_inline"
    rng_stream = 143
    size_unit = "papers"
    default_size = DEFAULT_PAPERS
    min_size = 2
    description = "PMC-Inline papers (papers/PMC<id>.json, both layouts) + RadFM's paper_train.csv; figures in ../pmc_figures"
    requires = (*FIGURE_FILES, OPENI_REPORTS)
    shard_args = ("--samples-per-shard-2d", "6")

    def write(self, root: Path, rng: np.random.Generator, size: int, options: DemoOptions) -> tuple[dict, list[dict]]:
        corpus = corpus_for(options)
        listed = []
        planted = []
        for k, paper in enumerate(corpus.papers):
            rel = f"papers/{paper.pmcid}.json"
            if paper.layout == "radfm":
                write_json(root / rel, radfm_layout(paper))
            else:
                doc = public_layout(paper, int(rng.integers(10_000_000, 40_000_000)))
                if k == 1:  # a reference whose offsets lie past the end of the text
                    doc["img_ref"].append({"id": paper.figures[0].figure_id, "start": len(doc["text"]) + 40,
                                           "end": len(doc["text"]) + 48})
                    planted.append(fault(self.name, rel, "bad_row"))
                write_json(root / rel, doc)
            listed.append([RADFM_PREFIX + rel])
            for fig in paper.figures:
                if not fig.present:
                    planted.append(fault(self.name, f"../{STORE}/{fig.file}", "missing_file"))
        broken = corpus.papers[-1].pmcid[:-1] + "0"
        cut = json.dumps(radfm_layout(corpus.papers[-1]), ensure_ascii=False)
        write_text(root / f"papers/{broken}.json", cut[: len(cut) // 2])
        listed.append([RADFM_PREFIX + f"papers/{broken}.json"])
        planted.append(fault(self.name, f"papers/{broken}.json", "bad_file"))
        absent = corpus.papers[0].pmcid[:-1] + "0"
        listed.insert(1, [RADFM_PREFIX + f"papers/{absent}.json"])
        planted.append(fault(self.name, f"papers/{absent}.json", "missing_file"))
        rows = {f"radfm/{PAPER_LIST}": write_csv(root / "radfm" / PAPER_LIST, ["PMC_path"], listed)}
        info = {"root": str(root), "papers": len(corpus.papers), "rows": rows, "radfm_prefix": RADFM_PREFIX,
                "sentences": sum(len(p.sentences) for p in corpus.papers),
                "references": sum(len(r) for p in corpus.papers for r in p.refs)}
        return info, planted


FIXTURE = PmcInlineFixture()
