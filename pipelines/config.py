"""Every size and limit of the preprocessing in one place.

The values are RadFM's unless noted; the shard manifest records the ones a build used.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from shards_spec import layout


@dataclass(frozen=True)
class ImageConfig:
    #: 2D images are stored as ``size_2d x size_2d x 1``.
    size_2d: int = layout.SIZE_2D
    #: 3D volumes are stored as ``size_3d x size_3d x D``.
    size_3d: int = layout.SIZE_3D
    #: Stored depths are multiples of this (the ViT's frame patch size) ...
    depth_multiple: int = layout.DEPTH_MULTIPLE
    #: ... between these bounds. All series of one sample share one depth.
    min_depth: int = layout.MIN_DEPTH
    max_depth: int = layout.MAX_DEPTH
    #: Decompression-bomb guard: largest accepted 2D image / slice, in pixels.
    max_pixels: int = 16384 * 16384
    #: Largest accepted volume before resampling, in voxels.
    max_voxels: int = 1024 * 1024 * 2048
    #: Most images kept in one sample (RadFM meant to cap at 10).
    max_images: int = 10
    #: Intensity window for non-uint8 sources without a DICOM window: percentiles.
    clip_percentiles: tuple[float, float] = (0.5, 99.5)


@dataclass(frozen=True)
class TextConfig:
    #: Longest sample in tokens (BOS + question + image spans + answer + EOS).
    max_length: int = layout.MAX_LENGTH
    #: An over-long answer is shortened after its last whole word that fits if at least
    #: this many answer tokens survive; otherwise the sample is rejected as ``too_long``.
    min_answer_tokens: int = 8
    #: Loss weight on medical-keyword tokens (RadFM: 3).
    keyword_weight: float = layout.WEIGHT_KEYWORD
    #: Text hygiene (``pipelines.hygiene``): a record whose text holds more control characters than
    #: ``max(max_control_chars, max_control_fraction x its characters)`` is rejected ``bad_text``; fewer are removed.
    max_control_chars: int = 8
    max_control_fraction: float = 0.05


@dataclass(frozen=True)
class ShardConfig:
    #: Samples per shard, per stream (3D samples are ~100x larger than 2D ones).
    samples_per_shard_2d: int = 1000
    samples_per_shard_3d: int = 50
    #: zstd level of the image member (see docs/benchmarks.md for the measurement).
    zstd_level: int = 3
    #: Fixed tar member mtime (2023-08-04, RadFM's arXiv date) for byte-identical shards.
    mtime: int = 1691107200


@dataclass(frozen=True)
class BuildConfig:
    image: ImageConfig = field(default_factory=ImageConfig)
    text: TextConfig = field(default_factory=TextConfig)
    shard: ShardConfig = field(default_factory=ShardConfig)
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)
