"""Rad3D (Radiopaedia cases): ``report``, ``rationale``, ``vqa`` and ``modality``, 3D stream.

Inputs are RadFM's files (``<radfm>/``, default ``<raw>/radfm``)::

    radiology_article_npy_{train,test}.json  [{pre, pat, npy_path, finding, impression,
                                               radiographic_features, articles, title}]
    radiology_vqa_{train,test}.csv           image_path,question,answer
    radio_modality_{train,test}.csv          image_path,answer
    modality_set.json                        {"modality": [...]}   (optional)
    articles_resave.json                     {title: article}       (optional negatives)

Every image path (absolute on the authors' cluster) is remapped onto the raw root and may
name a RadFM ``.npy`` (``[S,3,H,W,D]``: S series), a NIfTI file, a folder of JPEG/PNG
slices (one series: ``<case>/<image_no>/<Modality>_<k>/``) or a folder of such series
folders (``<case>/<image_no>/``). ``npy_path`` may also be a list of paths.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipelines import tasks
from pipelines.paths import UnresolvedPath
from pipelines.records import Record, Reject, SampleSpec
from pipelines.sources.base import BuildContext, MissingColumns, Source, image_refs_for, read_json, read_table

SPLITS = ("train", "test")
ARTICLE_FILE = "radiology_article_npy_{split}.json"
VQA_FILE = "radiology_vqa_{split}.csv"
MODALITY_FILE = "radio_modality_{split}.csv"
MODALITY_SET = "modality_set.json"
ARTICLES = "articles_resave.json"
ARTICLE_KEYS = ("npy_path", "finding", "impression", "title")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    return " ".join(str(value).split())


def _texts(value: Any) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [t for t in (_text(v) for v in values) if t]


class Rad3D(Source):
    name = "rad3d"
    modes = ("radfm",)
    default_mode = "radfm"

    def records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        for split in SPLITS:
            yield from self._articles(ctx, split)
            yield from self._vqa(ctx, split)
            yield from self._modality(ctx, split)

    def samples(self, record: Record, ctx: BuildContext) -> list[SampleSpec]:
        f = record.fields
        n = ctx.image.max_images
        kind = f["kind"]
        if kind == "article":
            context = tasks.join_text(f["pat"], f["pre"])
            out = []
            if f["finding"] or f["impression"]:
                answer = tasks.join_text(f"Finding: {f['finding']}" if f["finding"] else "", f"Impression: {f['impression']}" if f["impression"] else "")
                rng = tasks.task_rng(ctx.seed, record, "report")
                out.append(tasks.report(rng, record, answer, prompt_kind="caption", max_images=n, context=context, position="random"))
            if f["title"] and (f["articles"] or f["features"]):
                rng = tasks.task_rng(ctx.seed, record, "rationale")
                out.append(
                    tasks.rationale(
                        rng, record, context=context, title=f["title"], articles=f["articles"], features=f["features"],
                        other_titles=ctx.options["rad3d_titles"], max_images=n,
                    )
                )
            return out
        if kind == "vqa":
            return [tasks.vqa(tasks.task_rng(ctx.seed, record, "vqa"), record, f["question"], f["answer"], max_images=n)]
        rng = tasks.task_rng(ctx.seed, record, "modality")
        return [tasks.modality(rng, record, record.modality, ctx.options["rad3d_modalities"], max_images=n)]

    def label_terms(self, ctx: BuildContext) -> tuple[str, ...]:
        """Article titles (diagnoses) and modality names."""
        return tuple(sorted({*ctx.options.get("rad3d_titles", ()), *ctx.options.get("rad3d_modalities", ())}))

    # -- readers -------------------------------------------------------------------------

    def _images(self, ctx: BuildContext, paths: list[str], where: str) -> tuple[tuple, Reject | None]:
        refs = []
        for path in paths:
            try:
                rel = ctx.resolver.resolve(path)
                refs.extend(image_refs_for(ctx.raw, rel))
            except UnresolvedPath as exc:
                return (), self.reject(where, str(path), "missing_file", f"{where}: {exc}")
            except (OSError, ValueError) as exc:
                return (), self.reject(where, str(path), "undecodable", f"{where}: cannot read header of {path}: {exc}")
        if not refs:
            return (), self.reject(where, "", "bad_row", f"{where}: no image path")
        return tuple(refs), None

    def _articles(self, ctx: BuildContext, split: str) -> Iterator[Record | Reject]:
        name = ARTICLE_FILE.format(split=split)
        path = ctx.radfm_dir / name
        if not path.exists():
            yield self.reject(name, name, "missing_file", f"RadFM file {path} not found")
            return
        entries = read_json(path)
        titles = set(ctx.options.setdefault("rad3d_titles", []))
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            where = f"{name}[{i}]"
            if not isinstance(entry, dict) or any(k not in entry for k in ARTICLE_KEYS):
                yield self.reject(where, name, "bad_row", f"{where}: expected an object with keys {', '.join(ARTICLE_KEYS)}")
                continue
            paths = entry["npy_path"] if isinstance(entry["npy_path"], list) else [entry["npy_path"]]
            images, rejected = self._images(ctx, [str(p) for p in paths], where)
            if rejected:
                yield rejected
                continue
            fields = {
                "kind": "article",
                "pat": _text(entry.get("pat")),
                "pre": _text(entry.get("pre")),
                "finding": _text(entry.get("finding")),
                "impression": _text(entry.get("impression")),
                "features": _texts(entry.get("radiographic_features")),
                "articles": _texts(entry.get("articles")),
                "title": _text(entry.get("title")),
            }
            if not (fields["finding"] or fields["impression"] or fields["title"]):
                yield self.reject(where, name, "bad_row", f"{where}: no finding, impression or title")
                continue
            titles.add(fields["title"])
            source_id = "article:" + "|".join(r.path + (f"#{r.index}" if r.kind == "npy" else "") for r in images)
            yield Record(self.name, source_id, split, "3d", images, fields)
        ctx.options["rad3d_titles"] = sorted(titles | set(self._article_titles(ctx)) - {""})

    def _vqa(self, ctx: BuildContext, split: str) -> Iterator[Record | Reject]:
        name = VQA_FILE.format(split=split)
        for row in self._rows(ctx, name, ("image_path", "question", "answer")):
            if isinstance(row, Reject):
                yield row
                continue
            where = f"{name}:row{row.line}"
            question, answer = _text(row.values["question"]), _text(row.values["answer"])
            if not question or not answer:
                yield self.reject(where, name, "bad_row", f"{where}: empty {'question' if not question else 'answer'}")
                continue
            images, rejected = self._images(ctx, [row.values["image_path"]], where)
            if rejected:
                yield rejected
                continue
            source_id = f"vqa:{images[0].path}:{question}"
            yield Record(self.name, source_id, split, "3d", images, {"kind": "vqa", "question": question, "answer": answer})

    def _modality(self, ctx: BuildContext, split: str) -> Iterator[Record | Reject]:
        name = MODALITY_FILE.format(split=split)
        modalities = set(ctx.options.setdefault("rad3d_modalities", self._modality_set(ctx)))
        for row in self._rows(ctx, name, ("image_path", "answer")):
            if isinstance(row, Reject):
                yield row
                continue
            where = f"{name}:row{row.line}"
            modality = _text(row.values["answer"])
            if not modality:
                yield self.reject(where, name, "bad_row", f"{where}: empty answer")
                continue
            images, rejected = self._images(ctx, [row.values["image_path"]], where)
            if rejected:
                yield rejected
                continue
            modalities.add(modality)
            yield Record(self.name, f"modality:{images[0].path}", split, "3d", images, {"kind": "modality"}, modality)
        ctx.options["rad3d_modalities"] = sorted(modalities)

    def _rows(self, ctx: BuildContext, name: str, required: tuple[str, ...]) -> Iterator:
        path = ctx.radfm_dir / name
        if not path.exists():
            yield self.reject(name, name, "missing_file", f"RadFM file {path} not found")
            return
        try:
            rows, bad = read_table(path, required)
        except MissingColumns as exc:
            yield self.reject(name, name, "bad_file", str(exc))
            return
        for msg in bad:
            yield self.reject(name, name, "bad_row", f"{name}: {msg}")
        yield from rows

    @staticmethod
    def _modality_set(ctx: BuildContext) -> list[str]:
        path = ctx.radfm_dir / MODALITY_SET
        if not path.exists():
            return []
        data = read_json(path)
        values = data.get("modality", []) if isinstance(data, dict) else data
        return sorted({_text(v) for v in values if _text(v)})

    @staticmethod
    def _article_titles(ctx: BuildContext) -> list[str]:
        path: Path = ctx.radfm_dir / ARTICLES
        if not path.exists():
            return []
        data = read_json(path)
        return [_text(k) for k in data] if isinstance(data, dict) else []


SOURCE = Rad3D()
