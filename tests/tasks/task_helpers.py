"""Records for the task tests."""

from __future__ import annotations

from pipelines.records import ImageRef, Record, RecordFields


def record(n_images: int = 1, source_id: str = "x", dataset: str = "rad3d", stream: str = "3d") -> Record:
    images = tuple(ImageRef(f"i{k}", "volume" if stream == "3d" else "image2d") for k in range(n_images))
    return Record(dataset=dataset, source_id=source_id, split="train", stream=stream, images=images,
                  fields=RecordFields())
