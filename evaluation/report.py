"""``report.md``: the metrics table, then a few examples per dataset/task with an image thumbnail, the question,
the truth and the prediction. Thumbnails (``report/<key>.png``) are read back from the shards: the sample's first
image (for a volume, three slices at 1/4, 1/2 and 3/4 of its depth side by side), as stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.score import group_key, markdown_table
from shards_spec.codec import decode_member
from shards_spec.jsonio import read_json
from shards_spec.layout import image_field, index_path
from shards_spec.tario import atomic_write_bytes

THUMB_SIZE = 160


def thumbnail(vision: np.ndarray, size: int = THUMB_SIZE) -> np.ndarray:
    """uint8 ``[S, C, H, W, D]`` -> a grey uint8 picture of the first image (volumes: three slices)."""
    from PIL import Image

    image = vision[0, 0]  # [H, W, D], first channel (grey images are stored with one)
    depth = image.shape[-1]
    slices = [depth // 2] if depth == 1 else sorted({depth // 4, depth // 2, (3 * depth) // 4})
    tiles = [np.asarray(Image.fromarray(np.ascontiguousarray(image[..., k])).resize((size, size),
                                                                                    Image.Resampling.BILINEAR))
             for k in slices]
    return np.concatenate(tiles, axis=1)


def read_vision(shard: str, key: str) -> np.ndarray | None:
    """The stored images of sample ``key`` of ``shard`` (``None`` if it cannot be read)."""
    try:
        for entry in read_json(index_path(shard))["samples"]:
            if entry["key"] == key:
                field = image_field(entry["members"])
                offset, size = entry["members"][field]
                with open(shard, "rb") as fh:
                    fh.seek(offset)
                    return decode_member(field, fh.read(size))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


def _png(path: Path, picture: np.ndarray) -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buf.getvalue())


def _quote(text: str, limit: int = 600) -> str:
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[:limit] + " …"
    return text.replace("|", "\\|") or "*(empty)*"


def write_report(out: Path, metrics: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                 examples: int = 3) -> Path:
    out = Path(out)
    settings = metrics.get("settings") or {}
    lines = ["# Evaluation report", ""]
    if settings:
        gen = settings.get("generation", {})
        lines += [f"checkpoint `{settings.get('checkpoint', '?')}`, shards {', '.join(f'`{s}`' for s in settings.get('shards', []))} "
                  f"(split {', '.join(settings.get('splits', []))}), "
                  f"{'sampling' if gen.get('do_sample') else 'greedy'} decoding, max {gen.get('max_new_tokens', '?')} new tokens.", ""]
    lines += [f"{metrics['scored']} of {metrics['samples']} samples scored; every number is in [0, 1].", "",
              markdown_table(metrics), ""]
    for name, reason in sorted(metrics.get("skipped", {}).items()):
        lines.append(f"* skipped `{name}`: {reason}")
    if metrics.get("errors"):
        lines.append(f"* {metrics['errors']} samples could not be read: {metrics['error_reasons']}")
    lines.append("")
    by_group: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for r in sorted(records, key=lambda r: r["key"]):
        if not r.get("error"):
            by_group.setdefault(group_key(r), []).append(r)
    lines += ["## Examples", ""]
    for (dataset, task, kind), rows in sorted(by_group.items()):
        lines += [f"### {dataset} · {task} ({kind})", ""]
        for r in rows[:examples]:
            vision = read_vision(r["shard"], r["key"]) if r.get("shard") else None
            if vision is not None:
                rel = f"report/{r['key']}.png"
                _png(out / rel, thumbnail(vision))
                lines.append(f"![{r['key']}]({rel})")
                lines.append("")
            lines += [f"`{r['key']}` ({r.get('variant', '')}, {len(r.get('images', []))} image(s))", "",
                      f"* **Question:** {_quote(r.get('question_compact', r['question']))}",
                      f"* **Truth:** {_quote(r.get('truth_compact', r['truth']))}",
                      f"* **Prediction:** {_quote(r['pred'])} ({r.get('n_new_tokens', '?')} new tokens, stopped at "
                      f"{r.get('stopped', '?')})", ""]
    path = out / "report.md"
    atomic_write_bytes(path, ("\n".join(lines).rstrip() + "\n").encode("utf-8"))
    return path
