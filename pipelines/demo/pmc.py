"""The demo's PMC corpus: papers and case reports whose figures sit in one figure store, planned once for the
three fixtures that share it (``pmc_figures`` writes the figures, ``pmc_inline`` the papers, ``pmc_casereport`` the
case rows; each only under its own root).

The plan is a pure function of the demo seed and the two datasets' sizes (``DemoOptions``), drawn from its own
random stream, so the three fixtures agree without reading each other's files. Text is real: paper paragraphs and
case contexts are OpenI chest X-ray reports (indication, findings, impression), with the figure references a paper
makes ("(Figure 2)"); figures are real grey and colour images (:mod:`pipelines.demo.figures`).

Faults the plan decides (each written by the fixture that owns the file, reported by the one whose build meets it):
a paper sentence referencing a figure the store lacks, a case figure that is a truncated JPEG, a case figure the
store lacks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from pipelines.demo.content import collapse, load_openi_reports
from pipelines.demo.figures import KINDS, FigureParams, describe, draw_figure
from pipelines.demo.synth import distinct_ints

#: random stream of the shared plan (fixtures use their own for everything else)
PMC_STREAM = 149
STORE = "pmc_figures"
INLINE_UNIT, CASE_UNIT, STORE_UNIT = "pmc_inline_papers", "pmc_casereport_cases", "pmc_figures_extra_figures"
DEFAULT_PAPERS, DEFAULT_CASES, DEFAULT_EXTRA = 4, 14, 3


@dataclass
class Figure:
    pmcid: str
    figure_id: str
    params: FigureParams
    present: bool = True  # False: referenced, but the store lacks it
    corrupt: bool = False

    @property
    def file(self) -> str:
        return f"{self.pmcid}_{self.figure_id}.jpg"


@dataclass
class Paper:
    pmcid: str
    doi_suffix: str
    sentences: list[str]
    refs: list[list[str]]  # per sentence: figure ids it references
    figures: list[Figure]
    layout: str  # "radfm" (sentence list) | "public" (text + character offsets)


@dataclass
class CaseRow:
    pmcid: str
    context: str
    question: str
    answer: str
    figures: list[Figure]
    split: str = "train"


@dataclass
class Corpus:
    papers: list[Paper] = field(default_factory=list)
    cases: list[CaseRow] = field(default_factory=list)
    extra: list[Figure] = field(default_factory=list)  # figures no dataset references (the store holds more)

    def figures(self) -> list[Figure]:
        """Every figure of the store plan, in a stable order (each file once)."""
        seen: dict[str, Figure] = {}
        for fig in [f for p in self.papers for f in p.figures] + [f for c in self.cases for f in c.figures] + self.extra:
            seen.setdefault(fig.file, fig)
        return list(seen.values())


def _sentences(text: str) -> list[str]:
    out, start = [], 0
    for i, ch in enumerate(text):
        if ch in ".!?" and (i + 1 == len(text) or text[i + 1] == " "):
            out.append(text[start : i + 1].strip())
            start = i + 1
    tail = text[start:].strip()
    return [s for s in out + ([tail] if tail else []) if s]


def _clause(text: str) -> str:
    """Report text to go inside a sentence of ours: whitespace collapsed, no final full stop."""
    return collapse(text).rstrip(". ")


def _figure_label(k: int) -> str:
    return f"Figure {k + 1}"


def _paper(rng: np.random.Generator, pmcid: str, reports, layout: str) -> Paper:
    n_fig = int(rng.integers(3, 6))
    journal = int(rng.integers(1_000_000, 9_999_999))
    figures = [Figure(pmcid, (f"pone-{journal:07d}-g{k + 1:03d}" if layout == "public" else f"F{k + 1}"),
                      draw_figure(rng, KINDS[int(rng.integers(0, len(KINDS)))])) for k in range(n_fig)]
    sentences: list[str] = ["Chest radiography in the evaluation of thoracic disease: a case series."]
    refs: list[list[str]] = [[]]
    for k, report in enumerate(reports):
        fig = figures[k % n_fig]
        caption = describe(fig.params)["caption"].split(".")[0]
        body = [f"Case {k + 1} was referred with the following indication: {_clause(report.indication) or 'none given'}."]
        body += _sentences(collapse(report.findings))
        body += [f"The imaging is shown in {_figure_label(k % n_fig)} ({caption[0].lower() + caption[1:]}).",
                 f"The report concluded: {collapse(report.impression)}"]
        for s in body:
            sentences.append(s)
            refs.append([fig.figure_id] if s.startswith("The imaging is shown") else [])
    # one sentence references several figures at once, so windows reach their figure limit
    sentences.append(f"Figures {', '.join(str(i + 1) for i in range(n_fig))} summarise the series.")
    refs.append([f.figure_id for f in figures])
    return Paper(pmcid, f"{journal:07d}", sentences, refs, figures, layout)


@lru_cache(maxsize=8)
def plan_corpus(seed: int, n_papers: int = DEFAULT_PAPERS, n_cases: int = DEFAULT_CASES, n_extra: int = DEFAULT_EXTRA
                ) -> Corpus:
    """The PMC corpus of a demo seed and sizes (cached: three fixtures ask for it)."""
    rng = np.random.default_rng([seed, PMC_STREAM])
    ids = [f"PMC{i}" for i in distinct_ints(rng, n_papers + n_cases + n_extra, 1_000_000, 9_999_999)]
    per_paper = 14
    reports = load_openi_reports(rng, n_papers * per_paper + n_cases)
    corpus = Corpus()
    for k in range(n_papers):
        corpus.papers.append(_paper(rng, ids[k], reports[k * per_paper : (k + 1) * per_paper],
                                    "public" if k % 2 else "radfm"))
    for k in range(n_cases):
        report = reports[n_papers * per_paper + k]
        pmcid = ids[n_papers + k]
        figures = [Figure(pmcid, f"F{j + 1}", draw_figure(rng, KINDS[int(rng.integers(0, len(KINDS)))]))
                   for j in range(int(rng.integers(1, 4)))]
        age, sex = int(rng.integers(20, 85)), ("woman", "man")[int(rng.integers(0, 2))]
        context = " ".join([f"A {age}-year-old {sex} presented to the emergency department.",
                            f"The indication for imaging was: {_clause(report.indication) or 'chest pain'}.",
                            *_sentences(collapse(report.findings))])
        corpus.cases.append(CaseRow(pmcid, context, "Q: What was the conclusion of the chest imaging?",
                                    f"A: {collapse(report.impression)}", figures, "test" if k % 3 == 2 else "train"))
    corpus.extra = [Figure(ids[n_papers + n_cases + k], "F1", draw_figure(rng, KINDS[k % len(KINDS)])) for k in range(n_extra)]
    # faults the plan decides: a paper figure the store lacks, a truncated and a missing case figure
    corpus.papers[0].figures[1].present = False
    multi = [c for c in corpus.cases if len(c.figures) > 1] or corpus.cases
    multi[0].figures[-1].corrupt = True
    corpus.cases[-1].figures.append(Figure(corpus.cases[-1].pmcid, "F9", draw_figure(rng, "ct"), present=False))
    return corpus


def corpus_for(options) -> Corpus:
    """The corpus of a demo run (``DemoOptions``: seed and sizes)."""
    return plan_corpus(options.seed, options.size(INLINE_UNIT, DEFAULT_PAPERS), options.size(CASE_UNIT, DEFAULT_CASES),
                       options.size(STORE_UNIT, DEFAULT_EXTRA))
