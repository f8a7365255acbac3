"""PMC-Inline: ``interleaved``, 2D stream: paper text with its figures at the places that reference them.

Layout::

    <raw>/**/PMC<id>.json           one JSON per paper, in either layout:
                                    RadFM's: [{"text": sentence, "img_ref": [figure id, ...]}, ...]
                                    the public release's: {"info": {"pmc": ...}, "text": paper,
                                                           "img_ref": [{"id": figure id, "start": i, "end": j}, ...]}
    <radfm>/paper_train.csv         RadFM's list of papers: PMC_path (absolute cluster paths)
    <raw>/../pmc_figures/           the figure store, <PMCID>_<figure id>.jpg (``--store pmc_figures=DIR``)

Modes: ``radfm`` reads the papers ``paper_train.csv`` lists; ``native`` every ``*.json`` under the raw root. Both
layouts are read in both modes. All papers are train (RadFM had no test papers).

A paper becomes sentences with the figures each references: RadFM's layout gives them; in the public layout the
text is cut into sentences (after ``.``, ``!`` or ``?`` and a space, and at line breaks; joined back they are the
text exactly) and each reference belongs to the sentence holding its ``start`` offset. A reference to a figure the
store lacks is reported (``missing_file``) and its sentence stays, without the figure (RadFM skipped it silently);
an offset outside the text is a ``bad_row``.

Windows (deviation from RadFM's one random window per paper per epoch, see docs/deviations.md): the paper is cut
into consecutive windows of at most 50 sentences (RadFM's ``sample_sentence_length``) and 3 figures (its
``max_img_size``); a window ends before a sentence whose figures would bring it past 3 (RadFM ended the sample
there and dropped the rest of its window). Every window is one record and one sample, so all the text is used,
except a window that references no figure: a sample has at least one image (SPEC §3.1), so it is reported
(``no_image``; RadFM gave such windows a blank image). A sentence that alone references more than 3 figures keeps
its first 3 (the others: ``too_many_images``).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pipelines.paths import UnresolvedPath
from pipelines.records import ImageRef, Record, RecordFields, Reject, SampleSpec
from pipelines.sources.base import BuildContext, Source, Vocabulary
from pipelines.sources.images import store_image
from pipelines.sources.pmc_figures import STORE, figure_file
from pipelines.sources.tables import json_document, table_rows
from pipelines.tasks import InterleavedInputs

PAPER_LIST = "paper_train.csv"
MAX_SENTENCES = 50  # RadFM's sample_sentence_length
MAX_FIGURES = 3  # RadFM's max_img_size
_CUT = re.compile(r"(?<=[.!?])[ \t]+|\n+")


@dataclass(frozen=True)
class Sentence:
    text: str
    refs: tuple[str, ...]  # figure ids


@dataclass(frozen=True)
class InlineFields(RecordFields):
    pmcid: str
    sentences: tuple[str, ...]
    figures: tuple[tuple[int, ...], ...]  # per sentence: indices into the record's images


def split_text(text: str) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the sentences of ``text``: consecutive, covering it, each ending with the
    whitespace that follows it; whitespace alone joins the sentence before it (or, at the start, the first one)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _CUT.finditer(text):
        if m.end() > start:
            spans.append((start, m.end()))
            start = m.end()
    if start < len(text):
        spans.append((start, len(text)))
    merged: list[tuple[int, int]] = []
    for s, e in spans:
        if not text[s:e].strip() and merged:
            merged[-1] = (merged[-1][0], e)
        elif merged and not text[merged[-1][0]:merged[-1][1]].strip():  # whitespace before the first sentence
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def parse_paper(doc: Any, name: str) -> tuple[str, list[Sentence], list[str]] | str:
    """(PMC id or "", sentences, problems with single references) of a paper in either layout, or what makes the
    whole document unusable."""
    if isinstance(doc, list):  # RadFM's sentence list
        sentences = []
        for i, entry in enumerate(doc):
            if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
                return f"sentence {i} is not an object with a \"text\" string"
            refs = entry.get("img_ref") or []
            if not isinstance(refs, list) or not all(isinstance(r, (str, int)) for r in refs):
                return f"sentence {i}: img_ref is not a list of figure ids"
            sentences.append(Sentence(entry["text"], tuple(str(r) for r in refs)))
        return "", sentences, []
    if isinstance(doc, dict) and isinstance(doc.get("text"), str):  # the public release
        text, problems = doc["text"], []
        spans = split_text(text)
        starts = [s for s, _ in spans]
        refs: list[list[str]] = [[] for _ in spans]
        for i, ref in enumerate(doc.get("img_ref") or []):
            ok = isinstance(ref, dict) and isinstance(ref.get("id"), (str, int)) and isinstance(ref.get("start"), int)
            if not ok or not 0 <= ref["start"] < len(text) or not ref["start"] < ref.get("end", ref["start"] + 1) <= len(text):
                problems.append(f"img_ref[{i}] {ref!r} is not {{id, start, end}} inside the text ({len(text)} characters)")
                continue
            refs[bisect.bisect_right(starts, ref["start"]) - 1].append(str(ref["id"]))
        info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
        pmcid = str(info.get("pmc") or "")
        return pmcid, [Sentence(text[s:e], tuple(r)) for (s, e), r in zip(spans, refs)], problems
    return "expected RadFM's list of {text, img_ref} or the public {info, text, img_ref} object"


def windows(sentences: list[Sentence]) -> list[list[int]]:
    """Consecutive windows of sentence indices: at most ``MAX_SENTENCES`` sentences and ``MAX_FIGURES`` figures."""
    out: list[list[int]] = []
    current: list[int] = []
    figures = 0
    for i, s in enumerate(sentences):
        n = min(len(s.refs), MAX_FIGURES)
        if current and (len(current) == MAX_SENTENCES or figures + n > MAX_FIGURES):
            out.append(current)
            current, figures = [], 0
        current.append(i)
        figures += n
    if current:
        out.append(current)
    return out


class PmcInline(Source):
    name = "pmc_inline"
    modes = ("radfm", "native")
    default_mode = "radfm"
    stores = (STORE,)

    def records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        if ctx.mode == "native":
            for path in sorted(p for p in ctx.raw.rglob("*.json") if p.is_file() and ctx.radfm_dir not in p.parents):
                rel = path.relative_to(ctx.raw).as_posix()
                yield from self._paper(ctx, rel, rel)
            return
        for row in table_rows(self.name, ctx.radfm_dir / PAPER_LIST, ("PMC_path",), "RadFM split file"):
            if isinstance(row, Reject):
                yield row
                continue
            where = f"{PAPER_LIST}:line{row.line}"
            path = row.values["PMC_path"].strip()
            try:
                rel = ctx.resolver.resolve(path) if path and ".." not in PurePosixPath(path).parts else None
            except UnresolvedPath as exc:
                yield self.reject(where, path, getattr(exc, "reason", "missing_file"), f"{where}: {exc}")
                continue
            if rel is None:
                yield self.reject(where, PAPER_LIST, "bad_row", f"{where}: PMC_path {path!r} is not a paper path")
                continue
            yield from self._paper(ctx, rel, where)

    def samples(self, record: Record[InlineFields], vocab: Vocabulary, ctx: BuildContext) -> list[SampleSpec]:
        return [ctx.sample(record, InterleavedInputs(record.fields.sentences, record.fields.figures))]

    def _paper(self, ctx: BuildContext, rel: str, where: str) -> Iterator[Record | Reject]:
        doc = json_document(self.name, ctx.raw / rel, where, "paper")
        if isinstance(doc, Reject):
            yield doc
            return
        parsed = parse_paper(doc, rel)
        if isinstance(parsed, str):
            yield self.reject(where, rel, "bad_file", f"{rel}: {parsed}")
            return
        pmcid, sentences, problems = parsed
        pmcid = pmcid or Path(rel).name.split(".")[0]  # RadFM: the file name without extension
        for problem in problems:
            yield self.reject(f"{pmcid}:ref", rel, "bad_row", f"{rel}: {problem}")
        # figures the store holds; a missing one is reported once per paper and its references drop
        found: dict[str, ImageRef | Reject] = {}
        for s in sentences:
            for ref in s.refs:
                if ref not in found:
                    found[ref] = store_image(ctx, self.name, STORE, figure_file(pmcid, ref), f"{pmcid}:{ref}")
        yield from (r for r in found.values() if isinstance(r, Reject))
        kept = []
        for k, s in enumerate(sentences):
            usable = tuple(r for r in s.refs if isinstance(found[r], ImageRef))
            if len(usable) > MAX_FIGURES:
                yield self.reject(f"{pmcid}:sentence{k}", rel, "too_many_images",
                                  f"{rel}: sentence {k} references {len(usable)} figures; its first {MAX_FIGURES} are kept")
                usable = usable[:MAX_FIGURES]
            kept.append(Sentence(s.text, usable))
        n_windows = 0
        for w, window in enumerate(windows(kept)):
            item = self._window(rel, pmcid, w, [kept[i] for i in window], found)
            if item is not None:
                n_windows += 1
                yield item
        if not n_windows:
            yield self.reject(where, rel, "bad_file", f"{rel}: the paper has no text")

    def _window(self, rel: str, pmcid: str, w: int, sentences: list[Sentence], found: dict) -> Record | Reject | None:
        texts = [s.text for s in sentences]
        texts[0], texts[-1] = texts[0].lstrip(), texts[-1].rstrip()
        if len(texts) == 1:
            texts[0] = texts[0].strip()
        if not "".join(texts).strip():
            return None
        images: list[ImageRef] = []
        figures = []
        for s in sentences:
            figures.append(tuple(range(len(images), len(images) + len(s.refs))))
            images.extend(found[r] for r in s.refs)
        fields = InlineFields(pmcid, tuple(texts), tuple(figures))
        if not images:  # RadFM fed such windows with a blank image; a sample here has at least one (SPEC §3.1)
            return self.reject(f"{pmcid}#w{w:03d}", rel, "no_image",
                               f"{rel}: window {w} ({len(sentences)} sentences) references no figure the store holds")
        return Record(dataset=self.name, source_id=f"{pmcid}#w{w:03d}", split="train", stream="2d",
                      images=tuple(images), fields=fields)


SOURCE = PmcInline()
