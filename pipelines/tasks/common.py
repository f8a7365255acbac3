"""What every task builder shares: prompt files, image selection, RadFM's position rule, text joining.

Position rules (§0 and §3.3 of RadFM): ``end`` puts an image at ``len(question)`` (i.e. before the question's last
character), ``start`` at 0; ``random`` is RadFM's 50/50 choice per image, ``random_all`` one 50/50 choice for all.
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from importlib import resources
from typing import Literal, get_args

from pipelines.records import ImagePlacement

Position = Literal["end", "start", "random", "random_all"]
POSITIONS: tuple[str, ...] = get_args(Position)


@lru_cache(maxsize=None)
def prompts(kind: str) -> tuple[str, ...]:
    """The prompts of ``tasks/prompts/<kind>.json`` (``{"prompts": [...]}``)."""
    data = json.loads(resources.files("pipelines.tasks").joinpath(f"prompts/{kind}.json").read_text("utf-8"))
    return tuple(data["prompts"])


def prompt_kinds() -> tuple[str, ...]:
    """Every prompt file that ships."""
    folder = resources.files("pipelines.tasks").joinpath("prompts")
    return tuple(sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json")))


def pick_prompt(rng: random.Random, kind: str) -> tuple[str, str]:
    """A seeded prompt of ``kind`` and its id ``<kind>/<NN>``."""
    options = prompts(kind)
    i = rng.randrange(len(options))
    return options[i], f"{kind}/{i:02d}"


def select_images(rng: random.Random, n_images: int, max_images: int) -> tuple[int, ...]:
    """Indices of the images a sample keeps: all, or a seeded subset (in original order)."""
    if n_images <= max_images:
        return tuple(range(n_images))
    return tuple(sorted(rng.sample(range(n_images), max_images)))


def place_images(rng: random.Random, n: int, question: str, position: Position) -> tuple[ImagePlacement, ...]:
    """RadFM's question positions for ``n`` images (see the module docstring)."""
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
