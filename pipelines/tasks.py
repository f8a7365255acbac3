"""Tasks: turn a record into samples with RadFM's prompt, substitution and position rules.

Every random choice (prompt, variant, image position, negative example) comes from a
``random.Random`` seeded by (build seed, dataset, source id, task), so a build is
reproducible and a record always yields the same samples. Position rules (§0 and §3.3 of
RadFM): ``end`` puts an image at ``len(question)`` (i.e. before the question's last
character), ``start`` at 0; ``random`` is RadFM's 50/50 choice per image.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import Literal

from pipelines.records import Record, SampleSpec, derive_seed
from pipelines.text import ImagePlacement

Position = Literal["end", "start", "random", "random_all"]


@lru_cache(maxsize=None)
def prompts(kind: str) -> tuple[str, ...]:
    data = json.loads(resources.files("pipelines").joinpath(f"prompts/{kind}.json").read_text("utf-8"))
    return tuple(data["prompts"])


def task_rng(seed: int, record: Record, task: str) -> random.Random:
    return random.Random(derive_seed(seed, record.dataset, record.source_id, task))


def pick_prompt(rng: random.Random, kind: str) -> tuple[str, str]:
    options = prompts(kind)
    i = rng.randrange(len(options))
    return options[i], f"{kind}/{i:02d}"


def select_images(rng: random.Random, n_images: int, max_images: int) -> tuple[int, ...]:
    """Indices of the images a sample keeps: all, or a seeded subset (in original order)."""
    if n_images <= max_images:
        return tuple(range(n_images))
    return tuple(sorted(rng.sample(range(n_images), max_images)))


def place_images(rng: random.Random, n: int, question: str, position: Position) -> tuple[ImagePlacement, ...]:
    """RadFM's question positions: ``end`` = len(question), ``start`` = 0, ``random`` = a
    50/50 choice per image, ``random_all`` = one 50/50 choice for all images."""
    if position == "random_all":
        position = "end" if rng.random() > 0.5 else "start"
    out = []
    for _ in range(n):
        where = position if position != "random" else ("end" if rng.random() > 0.5 else "start")
        out.append(ImagePlacement("question", len(question) if where == "end" else 0))
    return tuple(out)


def join_text(*parts: str) -> str:
    """Join non-empty parts with single spaces (RadFM glued some parts without one)."""
    return " ".join(p.strip() for p in parts if p and p.strip())


def fill(template: str, **slots: str) -> str:
    return template.format(**slots)


# --- task builders ---------------------------------------------------------------------


def report(
    rng: random.Random, record: Record, answer: str, *, prompt_kind: str, max_images: int,
    context: str = "", position: Position = "end", task: str = "report",
) -> SampleSpec:
    """Image(s) -> report text. MIMIC: position ``end``; Rad3D: context + prompt, ``random``."""
    images = select_images(rng, len(record.images), max_images)
    prompt, prompt_id = pick_prompt(rng, prompt_kind)
    question = join_text(context, prompt)
    return SampleSpec(task, "report", question, answer, place_images(rng, len(images), question, position), prompt_id, images)


def vqa(rng: random.Random, record: Record, question: str, answer: str, *, max_images: int) -> SampleSpec:
    """The dataset's own question and answer; image positions 50/50 per image."""
    images = select_images(rng, len(record.images), max_images)
    return SampleSpec("vqa", "qa", question.strip(), answer.strip(), place_images(rng, len(images), question.strip(), "random"), None, images)


def modality(rng: random.Random, record: Record, true_modality: str, modality_set: Sequence[str], *, max_images: int) -> SampleSpec:
    """Direct question (50%), yes/no with the true modality (25%) or with a *different*
    modality (25%; RadFM built this question with the true one and answered "no")."""
    images = select_images(rng, len(record.images), max_images)
    others = sorted({m for m in modality_set if m.strip().lower() != true_modality.strip().lower()})
    draw = rng.random()
    if draw < 0.5 or not others:
        question, prompt_id = pick_prompt(rng, "modality")
        variant, answer = "direct", true_modality
    else:
        template, prompt_id = pick_prompt(rng, "modality_yes_no")
        if draw < 0.75:
            question, variant, answer = fill(template, modality=true_modality), "yes", "yes"
        else:
            question, variant, answer = fill(template, modality=rng.choice(others)), "no", "no"
    return SampleSpec("modality", variant, question, answer, place_images(rng, len(images), question, "random_all"), prompt_id, images)


def rationale(
    rng: random.Random, record: Record, *, context: str, title: str, articles: Sequence[str],
    features: Sequence[str], other_titles: Sequence[str], max_images: int,
) -> SampleSpec:
    """Rad3D "rationale": diagnosis + radiographic features (50%), or yes/no on the
    disease with the true title or another article title (25% / 25%)."""
    images = select_images(rng, len(record.images), max_images)
    negatives = sorted({t for t in other_titles if t.strip().lower() != title.strip().lower()})
    if rng.random() < 0.5 or not negatives:
        prompt, prompt_id = pick_prompt(rng, "radiology_feature")
        question = join_text(context, prompt)
        answer = join_text(*articles, "The radiographic features can be summarized as follows.", *features)
        variant = "features"
    else:
        template, prompt_id = pick_prompt(rng, "yes_no")
        if rng.random() < 0.5:
            question, answer, variant = fill(template, disease=title), "yes", "yes"
        else:
            question, answer, variant = fill(template, disease=rng.choice(negatives)), "no", "no"
        question = join_text(context, question)
    return SampleSpec("rationale", variant, question, answer, place_images(rng, len(images), question, "random"), prompt_id, images)
