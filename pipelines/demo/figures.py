"""Figures for the literature, VQA and case fixtures: what journal figures and teaching-file images look like, cut
from real images that registry packages carry, colour ones among them.

Real pixels (:mod:`pipelines.demo.content` declares the files):

* ``xray``: pydicom-data's chest CR (``RG1_UNCI.dcm``), grey;
* ``ct``: pydicom's ``CT_small.dcm`` (a thoracic CT slice), grey;
* ``mri``: matplotlib's ``s1045.ima.gz`` (a head MRI slice), grey;
* ``fundus``: scikit-image's ``retina.jpg`` (a fundus photograph), colour;
* ``histology``: scikit-image's ``ihc.png`` (an immunohistochemistry micrograph), colour;

and two kinds of colour figure made from them the way papers make them: ``annotated`` (a grey image with coloured
arrows and a panel letter) and ``overlay`` (a colour-mapped signal over a grey MRI slice).

All randomness is drawn up front into a :class:`FigureParams`; rendering is a pure function of it.
"""

from __future__ import annotations

import gzip
import io
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from pipelines.demo.content import CHEST_CR, CT_SMALL, PackageFile, load_chest_base

RETINA = PackageFile("skimage", "data/retina.jpg")
IHC = PackageFile("skimage", "data/ihc.png")
MRI_SLICE = PackageFile("matplotlib", "mpl-data/sample_data/s1045.ima.gz")
#: What :func:`render_figure` reads.
FIGURE_FILES = (CHEST_CR, CT_SMALL, RETINA, IHC, MRI_SLICE)

GREY_KINDS = ("xray", "ct", "mri")
COLOUR_KINDS = ("fundus", "histology", "annotated", "overlay")
KINDS = GREY_KINDS + COLOUR_KINDS

#: What each kind of figure is, in the words papers and MedPix use (modality, plane, a neutral caption).
DESCRIPTIONS: dict[str, dict[str, str]] = {
    "xray": {"modality": "XR - Plain Film", "plane": "PA", "organ": "chest",
             "caption": "Frontal chest radiograph."},
    "ct": {"modality": "CT - noncontrast", "plane": "Axial", "organ": "chest",
           "caption": "Axial non-contrast CT of the chest, soft-tissue window."},
    "mri": {"modality": "MR - T1W - noncontrast", "plane": "Sagittal", "organ": "head",
            "caption": "Sagittal T1-weighted MR image of the head."},
    "fundus": {"modality": "OPHTH - Fundoscopy", "plane": "Photograph", "organ": "eye",
               "caption": "Colour fundus photograph showing the optic disc and the retinal vessels."},
    "histology": {"modality": "Histology (NOS)", "plane": "Histology", "organ": "tissue",
                  "caption": "Immunohistochemical staining, brown chromogen with haematoxylin counterstain."},
    "overlay": {"modality": "MR - Other Pulse Seq.", "plane": "Sagittal", "organ": "head",
                "caption": "Colour-coded parametric map over a sagittal T1-weighted image."},
}


def describe(p: FigureParams) -> dict[str, str]:
    """Modality, plane, organ and a neutral caption of a figure (an annotated figure: those of its grey base)."""
    if p.kind == "annotated":
        base = DESCRIPTIONS[p.base]
        return {**base, "caption": base["caption"] + " Arrows mark the finding."}
    return dict(DESCRIPTIONS[p.kind])


@dataclass(frozen=True)
class FigureParams:
    """Everything random about one figure."""

    kind: str
    crop: tuple[float, float, float]  # centre x, centre y (fractions of the source), side (fraction)
    angle_deg: float
    size: int  # long side of the output
    gamma: float
    base: str = ""  # annotated: the grey kind under the arrows
    arrows: tuple[tuple[float, float, float], ...] = ()  # tip x, tip y (fractions), direction (radians)
    panel: str = ""  # panel letter drawn in a corner ("" none)
    blob: tuple[float, float, float] = (0.5, 0.5, 0.15)  # overlay: centre x, centre y, radius (fractions)

    @property
    def colour(self) -> bool:
        return self.kind in COLOUR_KINDS


def draw_figure(rng: np.random.Generator, kind: str) -> FigureParams:
    if kind not in KINDS:
        raise ValueError(f"unknown figure kind {kind!r} (known: {', '.join(KINDS)})")
    side = float(rng.uniform(0.7, 0.95))
    crop = (float(rng.uniform(side / 2, 1 - side / 2)), float(rng.uniform(side / 2, 1 - side / 2)), side)
    base = str(rng.choice(GREY_KINDS)) if kind == "annotated" else ""
    arrows = tuple((float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.3, 0.7)), float(rng.uniform(0, 2 * math.pi)))
                   for _ in range(int(rng.integers(1, 3)))) if kind == "annotated" else ()
    return FigureParams(
        kind=kind,
        crop=crop,
        angle_deg=float(rng.uniform(-4, 4)),
        size=int(rng.integers(320, 561)),
        gamma=float(rng.uniform(0.85, 1.15)),
        base=base,
        arrows=arrows,
        panel=str(rng.choice(["", "A", "B"])) if kind in ("annotated", "histology") else "",
        blob=(float(rng.uniform(0.35, 0.65)), float(rng.uniform(0.35, 0.65)), float(rng.uniform(0.08, 0.18))),
    )


# --------------------------------------------------------------------------- sources (read once per process)


@lru_cache(maxsize=None)
def _source(kind: str) -> Image.Image:
    if kind == "xray":
        return load_chest_base()
    if kind == "ct":
        import pydicom

        ds = pydicom.dcmread(CT_SMALL.locate())
        hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        level, width = 40.0, 400.0  # soft-tissue window
        x = np.clip((hu - (level - width / 2)) / width, 0.0, 1.0)
        return Image.fromarray(np.round(x * 255).astype(np.uint8), mode="L")
    if kind == "mri":
        raw = np.frombuffer(gzip.decompress(MRI_SLICE.locate().read_bytes()), dtype=">u2").reshape(256, 256)
        x = raw.astype(np.float32) / max(float(np.percentile(raw, 99.5)), 1.0)
        return Image.fromarray(np.round(np.clip(x, 0, 1) * 255).astype(np.uint8), mode="L")
    if kind == "fundus":
        with Image.open(RETINA.locate()) as im:
            return im.convert("RGB")
    if kind == "histology":
        with Image.open(IHC.locate()) as im:
            return im.convert("RGB")
    raise ValueError(kind)


def _crop(src: Image.Image, p: FigureParams) -> Image.Image:
    w, h = src.size
    side = p.crop[2] * min(w, h)
    cx, cy = p.crop[0] * w, p.crop[1] * h
    box = (int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2))
    out = src.crop(box)
    if out.width > 2 * p.size:  # shrink a large crop before rotating it (the output is p.size wide anyway)
        out = out.resize((2 * p.size, 2 * p.size), Image.Resampling.BOX)
    out = out.rotate(p.angle_deg, resample=Image.Resampling.BILINEAR)
    return out.resize((p.size, p.size), Image.Resampling.BICUBIC)


def _gamma(img: Image.Image, gamma: float) -> Image.Image:
    x = np.asarray(img, dtype=np.float32) / 255.0
    return Image.fromarray(np.round(np.power(x, gamma) * 255).astype(np.uint8), mode=img.mode)


def _arrow(draw: ImageDraw.ImageDraw, size: int, tip: tuple[float, float, float], colour: tuple[int, int, int]) -> None:
    x, y, angle = tip[0] * size, tip[1] * size, tip[2]
    length, head = size * 0.14, size * 0.045
    tail = (x + length * math.cos(angle), y + length * math.sin(angle))
    draw.line([tail, (x, y)], fill=colour, width=max(2, size // 110))
    for side in (-0.5, 0.5):
        a = angle + side
        draw.line([(x, y), (x + head * math.cos(a), y + head * math.sin(a))], fill=colour, width=max(2, size // 110))


def _panel_letter(draw: ImageDraw.ImageDraw, letter: str, fill) -> None:
    draw.rectangle([4, 4, 22, 24], fill=(0, 0, 0) if isinstance(fill, tuple) else 0)
    draw.text((9, 8), letter, fill=fill)


def render_figure(p: FigureParams) -> np.ndarray:
    """The figure as uint8 ``[H, W]`` (grey kinds) or ``[H, W, 3]`` (colour kinds)."""
    if p.kind in ("annotated", "overlay"):
        grey = _gamma(_crop(_source(p.base or "mri"), p), p.gamma)
        rgb = np.repeat(np.asarray(grey)[..., None], 3, axis=2).astype(np.float32)
        if p.kind == "overlay":
            from matplotlib import colormaps

            yy, xx = np.mgrid[0 : p.size, 0 : p.size] / p.size
            signal = np.exp(-(((xx - p.blob[0]) ** 2 + (yy - p.blob[1]) ** 2) / (2 * p.blob[2] ** 2)))
            colours = colormaps["hot"](signal)[..., :3] * 255
            alpha = np.clip(signal * 1.4 - 0.15, 0.0, 0.85)[..., None]
            rgb = rgb * (1 - alpha) + colours * alpha
        img = Image.fromarray(np.round(rgb).astype(np.uint8), mode="RGB")
        draw = ImageDraw.Draw(img)
        for tip in p.arrows:
            _arrow(draw, p.size, tip, (255, 40, 30))
        if p.panel:
            _panel_letter(draw, p.panel, (255, 255, 255))
        return np.asarray(img)
    img = _gamma(_crop(_source(p.kind), p), p.gamma)
    if p.panel:
        _panel_letter(ImageDraw.Draw(img), p.panel, (255, 255, 255) if img.mode == "RGB" else 255)
    return np.asarray(img)


def figure_jpeg(p: FigureParams, quality: int = 90) -> bytes:
    """The figure as a JPEG (RGB for the colour kinds, greyscale otherwise)."""
    buf = io.BytesIO()
    Image.fromarray(render_figure(p)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
