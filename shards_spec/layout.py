"""Names, paths and token-layout constants of the shard format (spec version 1.x)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SPEC_VERSION = "1.4"

#: The two shard streams. 2D and 3D samples never share a shard.
STREAMS = ("2d", "3d")

#: Splits a shard may belong to (``validate`` is MIMIC's name for validation).
SPLITS = ("train", "validate", "test")

# --- token layout (identical to RadFM) ------------------------------------------
#: Placeholder tokens per image: the perceiver resamples every image to 32 latents.
IMAGE_TOKENS_PER_IMAGE = 32
#: ``<image>`` + 32 placeholders + ``</image>``.
IMAGE_SPAN_LEN = IMAGE_TOKENS_PER_IMAGE + 2
#: Label value ignored by the loss.
IGNORE_INDEX = -100
#: Loss weights: question/padding/image tokens, plain answer tokens, keyword tokens.
WEIGHT_IGNORED, WEIGHT_NORMAL, WEIGHT_KEYWORD = 0.0, 1.0, 3.0


@dataclass(frozen=True)
class ImageTokenIds:
    """Ids of the image special tokens for a base vocabulary of ``base_vocab`` pieces.

    With LLaMA's 32,000 pieces: ``<image>`` = 32000, ``</image>`` = 32001 and
    ``<imageK>`` = 32002 + K. Image ``i`` of a sample uses ``<image{32i}>`` …
    ``<image{32i+31}>``.
    """

    base_vocab: int

    @property
    def start(self) -> int:
        return self.base_vocab

    @property
    def end(self) -> int:
        return self.base_vocab + 1

    @property
    def first_placeholder(self) -> int:
        return self.base_vocab + 2

    def placeholder(self, k: int) -> int:
        return self.base_vocab + 2 + k

    def span(self, image_index: int) -> list[int]:
        """The 34 ids that stand for image ``image_index`` of a sample."""
        first = self.placeholder(IMAGE_TOKENS_PER_IMAGE * image_index)
        return [self.start, *range(first, first + IMAGE_TOKENS_PER_IMAGE), self.end]

    def is_image_token(self, token_id: int) -> bool:
        return token_id >= self.base_vocab


def image_token_strings(max_images: int) -> list[str]:
    """The special-token strings RadFM adds to the tokenizer, in id order."""
    return ["<image>", "</image>"] + [f"<image{k}>" for k in range(max_images * IMAGE_TOKENS_PER_IMAGE)]


# --- image geometry and text limits (spec defaults; a manifest records a build's values) ---
SIZE_2D = 512  # 2D images: SIZE_2D x SIZE_2D x 1
SIZE_3D = 512  # 3D volumes: SIZE_3D x SIZE_3D x D
DEPTH_MULTIPLE = 4  # D is a multiple of the ViT's frame patch size ...
MIN_DEPTH, MAX_DEPTH = 4, 64  # ... within these bounds
MAX_LENGTH = 2048  # tokens per sample


def closest_depth(depth: int, choices) -> int:
    """RadFM's depth rule: the allowed depth closest to ``depth``, ties to the smaller one. Used by the build
    (one depth per sample) and by the trainer's collation (one depth per batch)."""
    return min(choices, key=lambda c: (abs(c - depth), c))

# --- members ---------------------------------------------------------------------
#: Member field names (``<key>.<field>``) and what they hold.
FIELD_VISION = "vision.npy.zst"  # uint8 [S, C, H, W, D], zstd-compressed .npy
#: The same array as a plain ``.npy`` (spec 1.3, builds with ``--zstd-level 0``): read in place, no copy.
FIELD_VISION_RAW = "vision.npy"
#: Spec 1.4: the three token arrays in one member, a structured ``.npy`` of ``TOKENS_DTYPE`` ``[L]``.
FIELD_TOKENS = "tokens.npy"
FIELD_INPUT_IDS = "input_ids.npy"  # int32 [L] (specs 1.0-1.3; a field of tokens.npy in 1.4)
FIELD_LABELS = "labels.npy"  # int32 [L]
FIELD_LOSS_WEIGHT = "loss_weight.npy"  # float32 [L]
FIELD_META = "meta.json"
#: Spec 1.4, 3D stream: the image as uint8 ``[S, C, D, H, W]`` (each image's slices contiguous: compresses better
#: than depth-fastest ``[S, C, H, W, D]``); readers return the ``[S, C, H, W, D]`` view of it.
FIELD_SLICES = "slices.npy.zst"
FIELD_SLICES_RAW = "slices.npy"
#: The image members: exactly one per sample. Compressed ones are zstd frames; ``slices`` ones hold [S, C, D, H, W].
IMAGE_FIELDS = (FIELD_VISION, FIELD_VISION_RAW, FIELD_SLICES, FIELD_SLICES_RAW)
#: Specs 1.0-1.3: one member per token array.
TOKEN_FIELDS_13 = (FIELD_INPUT_IDS, FIELD_LABELS, FIELD_LOSS_WEIGHT)


def _members(*fields: str) -> tuple[str, ...]:
    """A member set in its canonical order: the non-image members sorted, then the image member."""
    return tuple(sorted(f for f in fields if f not in IMAGE_FIELDS)) + tuple(f for f in fields if f in IMAGE_FIELDS)


#: The member sets a sample may have, each in canonical order (the other members sorted, the image member last:
#: readers unpack spans in this order). Spec 1.4 writes three members: ``meta.json``,
#: ``tokens.npy`` and the image: ``vision.npy.zst`` (or ``vision.npy`` uncompressed) in the 2D stream,
#: ``slices.npy.zst`` (or ``slices.npy``) in the 3D stream; never two image members.
FIELDS = _members(FIELD_META, FIELD_TOKENS, FIELD_VISION)
FIELDS_RAW = _members(FIELD_META, FIELD_TOKENS, FIELD_VISION_RAW)
FIELDS_SLICES = _members(FIELD_META, FIELD_TOKENS, FIELD_SLICES)
FIELDS_SLICES_RAW = _members(FIELD_META, FIELD_TOKENS, FIELD_SLICES_RAW)
#: Specs 1.0-1.3: the three token members, ``meta.json`` and ``vision.npy.zst`` (1.3 also ``vision.npy``);
#: readers of 1.4 read them unchanged.
FIELDS_13 = _members(*TOKEN_FIELDS_13, FIELD_META, FIELD_VISION)
FIELDS_13_RAW = _members(*TOKEN_FIELDS_13, FIELD_META, FIELD_VISION_RAW)
SAMPLE_FIELDS = (FIELDS, FIELDS_RAW, FIELDS_SLICES, FIELDS_SLICES_RAW, FIELDS_13, FIELDS_13_RAW)
#: image member -> the spec 1.4 member set of a sample holding it.
FIELDS_BY_IMAGE = {FIELD_VISION: FIELDS, FIELD_VISION_RAW: FIELDS_RAW, FIELD_SLICES: FIELDS_SLICES,
                   FIELD_SLICES_RAW: FIELDS_SLICES_RAW}
#: image member -> the spec 1.0-1.3 member set holding it (those specs had no ``slices`` members).
FIELDS_13_BY_IMAGE = {FIELD_VISION: FIELDS_13, FIELD_VISION_RAW: FIELDS_13_RAW}


def image_field(fields) -> str | None:
    """The one image member among ``fields`` (member names of a sample); None when there is none or several."""
    found = [f for f in IMAGE_FIELDS if f in fields]
    return found[0] if len(found) == 1 else None


def sample_fields(fields) -> tuple[str, ...]:
    """The member set of :data:`SAMPLE_FIELDS` a sample with member fields ``fields`` is meant to have: the 1.0-1.3
    set when it has a per-array token member and no ``tokens.npy``, else the 1.4 set; the variant of its image
    member (``vision.npy.zst`` when it has none or several). Compare with ``set(fields)`` to find missing or extra
    members."""
    image = image_field(fields) or FIELD_VISION
    legacy = FIELD_TOKENS not in fields and any(f in fields for f in TOKEN_FIELDS_13)
    if legacy:
        return FIELDS_13_BY_IMAGE.get(image, FIELDS_13)
    return FIELDS_BY_IMAGE[image]


KEY_RE = re.compile(r"^[a-z0-9_]+_[0-9a-f]{20}$")

# --- paths -----------------------------------------------------------------------
#: ``NNNNNN`` is the shard's node in the key trie (SPEC §2), at least six digits.
SHARD_RE = re.compile(r"^(?P<dataset>[a-z0-9_]+)-(?P<split>[a-z]+)-(?P<stream>2d|3d)-(?P<index>\d{6,})\.tar$")
INDEX_SUFFIX = ".index.json"
#: Spec 1.4: the binary index sidecar (``shards_spec.index_bin``), beside the JSON one.
INDEX_BIN_SUFFIX = ".index.npy"
STATS_SUFFIX = ".stats.json"
MANIFEST_NAME = "manifest.json"
REJECTS_NAME = "rejects.jsonl"


def shard_name(dataset: str, split: str, stream: str, index: int) -> str:
    return f"{dataset}-{split}-{stream}-{index:06d}.tar"


def _remote(location) -> bool:
    text = str(location)
    return "://" in text and not text.startswith("file://")


def _under(out, *parts: str):
    """``out/part/...``: a Path for a local folder, a string for an object-store URL (``shards_spec.storage``)."""
    if _remote(out):
        return "/".join([str(out).rstrip("/"), *parts])
    return Path(out).joinpath(*parts)


def _sibling(tar_path, suffix: str):
    text = str(tar_path)
    if _remote(text):
        return text[: -len(".tar")] + suffix
    p = Path(tar_path)
    return p.with_name(p.name[: -len(".tar")] + suffix)


def shard_path(out: Path | str, dataset: str, stream: str, split: str, index: int) -> Path | str:
    """``<out>/<dataset>/<stream>/<split>/<dataset>-<split>-<stream>-NNNNNN.tar`` (a string when ``out`` is a URL)."""
    return _under(out, dataset, stream, split, shard_name(dataset, split, stream, index))


def is_plain_relative(path: str) -> bool:
    """True for a relative path without ``..`` segments: what a manifest may name (a shard, its rejects file).
    Readers refuse anything else, so a manifest from elsewhere cannot point them outside its directory."""
    p = Path(path)
    return bool(path) and not p.is_absolute() and ".." not in p.parts


def index_path(tar_path: Path | str) -> Path | str:
    return _sibling(tar_path, INDEX_SUFFIX)


def index_bin_path(tar_path: Path | str) -> Path | str:
    return _sibling(tar_path, INDEX_BIN_SUFFIX)


def stats_path(tar_path: Path | str) -> Path | str:
    return _sibling(tar_path, STATS_SUFFIX)


def manifest_path(out: Path | str, dataset: str) -> Path | str:
    return _under(out, dataset, MANIFEST_NAME)


def rejects_path(out: Path | str, dataset: str) -> Path | str:
    return _under(out, dataset, REJECTS_NAME)
