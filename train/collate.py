"""Batch collation with RadFM's size rules, dynamic token padding and seeded 2D augmentation.

Images (RadFM ``DataCollator``, radfm-original §4.2, made configurable):

* Target depth: the member of ``depth_choices`` (4, 8, ..., 64) closest to the batch's largest image depth,
  ties to the smaller value (a 2D image, D = 1, therefore goes to 4). For a batch of ONE sample with more
  than ``many_images_threshold`` (6) images the choices stop at ``many_images_max_depth`` (32).
* H x W: ``image_size_single_3d`` (256) for a batch of one sample whose target depth is > 4, else
  ``image_size_default`` (512); ``image_size`` forces one size for every batch.
* Resizing is separable: a spatial pass (bilinear, or nearest) over every slice, then a depth pass (linear, or
  nearest) only when the depth changes. With ``resize_mode="trilinear"`` (default) this equals
  ``F.interpolate(mode="trilinear")``; ``"nearest"`` equals RadFM's ``F.interpolate`` default exactly.
  A depth-1 image becomes depth D by replication (what both modes do for a single slice).
* Channels: grey images (C = 1, as stored) are broadcast to 3 channels while being written into the batch.
* Intensities: uint8 -> float in [0, 1]; no mean/std normalisation (RadFM had none).
* Images are padded to the batch's largest image count with all-zero images (their tokens are never
  referenced, as in RadFM).

Broadcast layout: a grey image's 3 channels and a 2D image's D identical slices are not materialised:
``vision_x`` is a stride-0 ``expand`` view of a compact ``[B, S, 1|3, H, W, 1|D]`` tensor, with exactly the
shape, dtype and values of the dense tensor (12x less memory to write and to ship between processes for 2D
batches, 3x for grey volumes). The model reads it like the dense one (its first op, ``.to(dtype)``, produces a
dense tensor); the trainer moves only the compact part to the GPU and expands it there. ``dense_vision`` gives
the materialised tensor instead.

Tokens: padded to the longest sequence *in the batch* (not RadFM's fixed 2048), on the right: pad id 0,
``attention_mask`` 0, ``labels`` -100, ``loss_weight`` 0.

Augmentation (train time, as RadFM's ``RandomResizedCrop([512, 512], scale=(0.8, 1.0))``): every 2D image
(depth 1) gets a crop of 80-100 % of the stored 512^2 image's area with aspect ratio 3/4-4/3 (torchvision's
sampling algorithm: 10 tries, then a centre crop), resized back to the batch's target size. The draw is
seeded by ``(seed, epoch, sample key, image index)``, so a sample's crop in a given epoch is the same in a
resumed run, on any worker count. Volumes are not augmented (RadFM did not crop 3D data either).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from shards_spec.layout import IGNORE_INDEX, closest_depth

from .schedule import seed_from

PAD_ID = 0


@dataclass(frozen=True)
class CollateConfig:
    depth_choices: tuple[int, ...] = tuple(range(4, 65, 4))
    image_size_default: int = 512
    image_size_single_3d: int = 256
    many_images_threshold: int = 6
    many_images_max_depth: int = 32
    image_size: int | None = None
    resize_mode: str = "trilinear"
    augment: bool = False
    crop_scale: tuple[float, float] = (0.8, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    seed: int = 0
    vision_dtype: str = "float32"
    dense_vision: bool = False  # materialise the broadcast channels/slices of vision_x


@dataclass
class Sample:
    """One decoded sample (arrays exactly as stored)."""

    key: str
    input_ids: np.ndarray  # int32 [L]
    labels: np.ndarray  # int32 [L]
    loss_weight: np.ndarray  # float32 [L]
    vision: np.ndarray  # uint8 [S, C, H, W, D]
    epoch: int = 0
    shard: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.shape[0])


# ----------------------------------------------------------------------------------------- geometry
def target_geometry(depths: list[int], n_images: list[int], cfg: CollateConfig) -> tuple[int, int]:
    """``(H = W, D)`` for a batch whose samples have max image depths ``depths`` and ``n_images`` images."""
    choices = tuple(cfg.depth_choices)
    if len(depths) == 1 and n_images[0] > cfg.many_images_threshold:
        choices = tuple(c for c in choices if c <= cfg.many_images_max_depth) or choices[:1]
    d = closest_depth(max(depths), choices)
    if cfg.image_size is not None:
        hw = cfg.image_size
    elif len(depths) == 1 and d > 4:
        hw = cfg.image_size_single_3d
    else:
        hw = cfg.image_size_default
    return hw, d


# ----------------------------------------------------------------------------------------- augmentation
def random_resized_crop_box(
    rng, height: int, width: int, scale: tuple[float, float], ratio: tuple[float, float]
) -> tuple[int, int, int, int]:
    """``(top, left, h, w)`` drawn as torchvision's ``RandomResizedCrop.get_params`` (10 tries, then centre).

    ``rng``: a ``random.Random`` (what the collator uses: seeding and scalar draws cost microseconds) or a
    ``numpy.random.Generator``."""
    area = height * width
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    below = rng.integers if hasattr(rng, "integers") else rng.randrange  # an int in [0, n)
    for _ in range(10):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_lo, log_hi))
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(below(height - h + 1))
            left = int(below(width - w + 1))
            return top, left, h, w
    in_ratio = width / height
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = height, int(round(height * max(ratio)))
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def crop_box_for(cfg: CollateConfig, epoch: int, key: str, image_index: int, height: int, width: int):
    rng = random.Random(seed_from("crop", cfg.seed, epoch, key, image_index))
    return random_resized_crop_box(rng, height, width, tuple(cfg.crop_scale), tuple(cfg.crop_ratio))


# ----------------------------------------------------------------------------------------- resizing
_SCALE = np.float32(1.0 / 255.0)


def _as_uint8_array(image) -> np.ndarray:
    arr = image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.dtype != np.uint8:
        raise TypeError(f"resize_image expects uint8, got {arr.dtype}")
    return arr


def resize_image(
    image,
    size: int,
    depth: int,
    mode: str = "trilinear",
    crop: tuple[int, int, int, int] | None = None,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """uint8 ``[C, H, W, D]`` (numpy or torch; optionally cropped to ``crop``) -> float32 ``[C, size, size, D']``
    in [0, 1], where ``D' = depth``, or 1 when ``D == 1`` (the caller broadcasts a single slice to ``depth``).

    The crop is scaled to [0, 1] while it is converted to float (one pass, slices first), then resized.
    ``out``: a contiguous float32 ``[C, size, size, 1]`` tensor to write a single-slice result into (the
    batch's own storage: no intermediate image); the return value is then ``out``."""
    arr = _as_uint8_array(image)
    if crop is not None:
        top, left, h, w = crop
        arr = arr[:, top:top + h, left:left + w, :]
    c, h, w, d = arr.shape
    flat = np.empty((d, c, h, w), np.float32)
    np.multiply(arr.transpose(3, 0, 1, 2), _SCALE, out=flat)
    x = torch.from_numpy(flat).view(1, d * c, h, w)
    direct = (out is not None and d == 1 and out.dtype == torch.float32 and out.is_contiguous()
              and tuple(out.shape) == (c, size, size, 1))
    if (h, w) != (size, size):
        if direct:
            op = torch.ops.aten.upsample_bilinear2d if mode == "trilinear" else torch.ops.aten.upsample_nearest2d
            args = ([size, size], False, None, None) if mode == "trilinear" else ([size, size], None, None)
            op.out(x, *args, out=out.view(1, c, size, size))
            x = out.view(1, c, size, size)
        elif mode == "trilinear":
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        else:
            x = F.interpolate(x, size=(size, size), mode="nearest")
    elif direct:
        out.view(1, c, size, size).copy_(x)
        x = out.view(1, c, size, size)
    if direct:
        if mode == "trilinear":
            out.clamp_(0.0, 1.0)
        return out
    x = x.reshape(d, c, size, size).permute(1, 2, 3, 0)
    if d != depth and d != 1:
        flat_x = x.reshape(1, c * size * size, d)
        if mode == "trilinear":
            flat_x = F.interpolate(flat_x, size=depth, mode="linear", align_corners=False)
        else:
            flat_x = F.interpolate(flat_x, size=depth, mode="nearest")
        x = flat_x.reshape(c, size, size, depth)
    if mode == "trilinear":
        x.clamp_(0.0, 1.0)  # x is (a view of) a fresh float tensor
    return x


# ----------------------------------------------------------------------------------------- collation
def collate(samples: list[Sample], cfg: CollateConfig, stream: str = "") -> dict:
    """Samples -> the batch dict the trainer feeds to the model (see the module docstring)."""
    if not samples:
        raise ValueError("collate: empty batch")
    b = len(samples)
    depths = [int(s.vision.shape[-1]) for s in samples]
    n_images = [int(s.vision.shape[0]) for s in samples]
    hw, d = target_geometry(depths, n_images, cfg)
    s_max = max(n_images)
    dtype = torch.bfloat16 if cfg.vision_dtype == "bfloat16" else torch.float32
    # Grey images and depth-1 images are stored once and broadcast (see "Broadcast layout" above).
    channels = 3 if any(s.vision.shape[1] == 3 for s in samples) else 1
    depth = 1 if all(s.vision.shape[-1] == 1 for s in samples) else d
    compact = torch.empty((b, s_max, channels, hw, hw, depth), dtype=dtype)
    for i, smp in enumerate(samples):
        imgs = smp.vision
        for j in range(imgs.shape[0]):
            img = imgs[j]
            crop = None
            if cfg.augment and img.shape[-1] == 1:
                crop = crop_box_for(cfg, smp.epoch, smp.key, j, img.shape[1], img.shape[2])
            slot = compact[i, j]
            if img.shape[0] == channels and depth == 1 and slot.dtype == torch.float32:
                resize_image(img, hw, d, cfg.resize_mode, crop, out=slot)  # in place, no intermediate image
            else:
                slot.copy_(resize_image(img, hw, d, cfg.resize_mode, crop).expand(channels, hw, hw, depth))
        if imgs.shape[0] < s_max:
            compact[i, imgs.shape[0]:].zero_()
    vision = compact.expand(b, s_max, 3, hw, hw, d)
    if cfg.dense_vision:
        vision = vision.contiguous()

    length = max(s.n_tokens for s in samples)
    input_ids = torch.full((b, length), PAD_ID, dtype=torch.long)
    attention_mask = torch.zeros((b, length), dtype=torch.long)
    labels = torch.full((b, length), IGNORE_INDEX, dtype=torch.long)
    loss_weight = torch.zeros((b, length), dtype=torch.float32)
    for i, smp in enumerate(samples):
        n = smp.n_tokens
        input_ids[i, :n] = torch.from_numpy(smp.input_ids.astype(np.int64))
        attention_mask[i, :n] = 1
        labels[i, :n] = torch.from_numpy(smp.labels.astype(np.int64))
        loss_weight[i, :n] = torch.from_numpy(np.array(smp.loss_weight, dtype=np.float32))
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "labels": labels,
        "loss_weight": loss_weight,
        "vision_x": vision,
        "keys": [s.key for s in samples],
        "stream": stream,
        "n_real_tokens": int(sum(s.n_tokens for s in samples)),
    }


def token_efficiency(lengths: list[int], padded_to: int | None = None) -> float:
    """Real tokens / processed tokens for one batch (padded to the longest, or to ``padded_to``)."""
    width = padded_to if padded_to is not None else max(lengths)
    return sum(lengths) / (len(lengths) * width)
