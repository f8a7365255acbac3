"""Synthesis from real content: every image a fixture writes is a real radiograph or volume, re-cropped, rotated,
rescaled and jittered so that no two are alike. All randomness is drawn up front from the fixture's generator into
a parameter object; rendering is a pure function of the parameters."""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pipelines.demo.content import Volume

#: Default long side of a chest JPEG (varied per image).
CHEST_LONG_SIDE = (1024, 1400)


def distinct_ints(rng: np.random.Generator, n: int, low: int, high: int) -> list[int]:
    out: list[int] = []
    seen: set[int] = set()
    while len(out) < n:
        v = int(rng.integers(low, high))
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


# --------------------------------------------------------------------------- chest radiographs


@dataclass(frozen=True)
class ChestParams:
    """Everything random about one chest JPEG (drawn up front, rendering is pure)."""

    crop_w: int
    crop_h: int
    cx: float
    cy: float
    angle_deg: float
    out_w: int
    out_h: int
    gamma: float
    contrast: float
    brightness: float
    noise_sigma: float
    noise_seed: int


def draw_chest_params(
    rng: np.random.Generator,
    src_size: tuple[int, int],
    lateral: bool,
    image_size: int | tuple[int, int] | None,
) -> ChestParams:
    src_w, src_h = src_size
    area = rng.uniform(0.80, 1.0) * src_w * src_h
    aspect = rng.uniform(0.92, 1.15) if lateral else rng.uniform(0.82, 1.0)  # w / h
    crop_w = min(src_w, int(round(math.sqrt(area * aspect))))
    crop_h = min(src_h, int(round(math.sqrt(area / aspect))))
    cx = rng.uniform(crop_w / 2, src_w - crop_w / 2)
    cy = rng.uniform(crop_h / 2, src_h - crop_h / 2)
    angle = rng.uniform(-5.0, 5.0)
    if isinstance(image_size, tuple):
        out_w, out_h = int(image_size[0]), int(image_size[1])
    else:
        long_side = int(image_size) if image_size else int(rng.integers(*CHEST_LONG_SIDE, endpoint=True))
        scale = long_side / max(crop_w, crop_h)
        out_w, out_h = int(round(crop_w * scale)), int(round(crop_h * scale))
    return ChestParams(
        crop_w=crop_w,
        crop_h=crop_h,
        cx=float(cx),
        cy=float(cy),
        angle_deg=float(angle),
        out_w=out_w,
        out_h=out_h,
        gamma=float(rng.uniform(0.85, 1.2) * (1.1 if lateral else 1.0)),
        contrast=float(rng.uniform(0.88, 1.15)),
        brightness=float(rng.uniform(-12.0, 12.0)),
        noise_sigma=float(rng.uniform(0.8, 2.5)),
        noise_seed=int(rng.integers(0, 2**31)),
    )


def render_chest(base: Image.Image, p: ChestParams) -> np.ndarray:
    """Crop + rotate (one affine warp), resize, intensity jitter and mild noise."""
    theta = math.radians(p.angle_deg)
    cos, sin = math.cos(theta), math.sin(theta)
    hw, hh = p.crop_w / 2, p.crop_h / 2
    # output (x, y) -> source: centre + R @ ((x, y) - half size)
    coeffs = (cos, -sin, p.cx - cos * hw + sin * hh, sin, cos, p.cy - sin * hw - cos * hh)
    img = base.transform(
        (p.crop_w, p.crop_h),
        Image.Transform.AFFINE,
        coeffs,
        resample=Image.Resampling.BILINEAR,
        fillcolor=0,
    )
    img = img.resize((p.out_w, p.out_h), Image.Resampling.LANCZOS)
    x = np.asarray(img, dtype=np.float32) / 255.0
    x = 255.0 * np.power(x, p.gamma, dtype=np.float32)
    x = (x - 128.0) * p.contrast + 128.0 + p.brightness
    noise = np.random.default_rng(p.noise_seed).standard_normal(x.shape, dtype=np.float32)
    x += noise * p.noise_sigma
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- slices of a volume


@dataclass(frozen=True)
class SliceCrop:
    """Everything random about one series cut from a volume: an in-plane crop, the slices kept, a rotation, the
    output size and an intensity jitter."""

    x0: int
    x1: int
    y0: int
    y1: int
    z: tuple[int, ...]
    angle_deg: float
    out_w: int
    out_h: int
    gamma: float
    contrast: float
    brightness: float


def draw_slice_crop(rng: np.random.Generator, vol: Volume) -> SliceCrop:
    """80-100 % of the plane, 12-80 slices from the central part of a deep volume, short side 256-448 px."""
    nx, ny, nz = vol.data.shape
    frac = math.sqrt(rng.uniform(0.80, 1.0))
    cw, ch = max(8, int(nx * frac)), max(8, int(ny * frac))
    x0, y0 = int(rng.integers(0, nx - cw + 1)), int(rng.integers(0, ny - ch + 1))
    if nz == 1:
        z = [0]
    else:
        lo, hi = (int(nz * 0.12), int(nz * 0.90)) if nz > 80 else (0, nz)
        count = int(rng.integers(12, min(80, hi - lo) + 1))
        span = int(rng.integers(count, hi - lo + 1))
        start = lo + int(rng.integers(0, hi - lo - span + 1))
        z = sorted({int(round(v)) for v in np.linspace(start, start + span - 1, count)})
    short = int(rng.integers(256, 449))  # short side 256-448 px, long side at most 512
    aspect = ch / cw
    if aspect >= 1:
        out_w, out_h = short, min(512, int(round(short * aspect)))
    else:
        out_w, out_h = min(512, int(round(short / aspect))), short
    angle = float(rng.uniform(-5, 5))
    return SliceCrop(
        x0=x0,
        x1=x0 + cw,
        y0=y0,
        y1=y0 + ch,
        z=tuple(z),
        angle_deg=angle,
        out_w=out_w,
        out_h=out_h,
        gamma=float(rng.uniform(0.85, 1.15)),
        contrast=float(rng.uniform(0.9, 1.1)),
        brightness=float(rng.uniform(-0.04, 0.04)),
    )


def _orient_axial(slab: np.ndarray) -> np.ndarray:
    """[x, y] voxel plane -> radiological display (anterior up, patient right on the left)."""
    return np.flipud(slab.T)[:, ::-1]


def render_slices(crop: SliceCrop, vol: Volume) -> list[np.ndarray]:
    """The crop's slices as uint8 images, in slice order."""
    out = []
    for z in crop.z:
        x = _orient_axial(vol.data[crop.x0 : crop.x1, crop.y0 : crop.y1, z])
        x = np.clip(np.power(x, crop.gamma) * crop.contrast + crop.brightness, 0.0, 1.0)
        img = Image.fromarray(np.rint(x * 255).astype(np.uint8), mode="L")
        img = img.rotate(crop.angle_deg, resample=Image.Resampling.BILINEAR, fillcolor=0)
        img = img.resize((crop.out_w, crop.out_h), Image.Resampling.BILINEAR)
        out.append(np.asarray(img))
    return out


def nifti_bytes(crop: SliceCrop, vol: Volume) -> bytes:
    """The crop's native sub-volume (stored values) as ``.nii.gz``, the source affine shifted to the crop origin."""
    import nibabel as nib

    z0, z1 = crop.z[0], crop.z[-1] + 1
    sub = np.ascontiguousarray(vol.raw[crop.x0 : crop.x1, crop.y0 : crop.y1, z0:z1])
    shift = np.eye(4)
    shift[:3, 3] = [crop.x0, crop.y0, z0]
    img = nib.Nifti1Image(sub, vol.affine @ shift)
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    return gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)
