"""From the image paths a source reads to :class:`~pipelines.records.ImageRef` s: resolving and expanding.

A 2D source hands the image path of a row to :func:`resolve_image` (a RadFM cluster path, or a name under the
dataset's image folders) or, for a figure in a store shared with other datasets, to :func:`store_image`; each
gives one ``ImageRef`` or a reject. A 3D source hands every path of a record to :func:`resolve_volumes`, which
expands RadFM's ``.npy`` series and series folders (:func:`image_refs_for`) and returns a reject when a path cannot
be used. Only headers are read, never pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pipelines.paths import UnresolvedPath
from pipelines.records import ImageRef, Reject

if TYPE_CHECKING:
    from pipelines.sources.base import BuildContext


def npy_shape(path: Path) -> tuple[int, ...]:
    """Shape of a ``.npy`` file from its header, without reading the data."""
    import numpy as np

    with open(path, "rb") as fh:
        major, _ = np.lib.format.read_magic(fh)
        reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, _ = reader(fh)
    return tuple(shape)


def image_refs_for(raw: Path, rel: str) -> list[ImageRef]:
    """Expand one resolved path into image references.

    * ``.npy`` -> one ref per series along axis 0 when the array is ``[S, C, H, W, D]``;
    * ``.nii``/``.nii.gz``/DICOM/image file -> one volume;
    * a folder of slice files -> one volume; a folder of series folders -> one volume each
      (sorted by the number after ``_`` in ``CT_0``, ``MRI_1`` …, then by name).
    """
    path = raw / rel
    if rel.endswith(".npy"):
        shape = npy_shape(path)
        if len(shape) == 5:
            return [ImageRef(rel, "npy", s) for s in range(shape[0])]
        return [ImageRef(rel, "npy", 0)]
    if path.is_dir():
        subdirs = sorted((p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")), key=_series_order)
        if subdirs:
            return [ImageRef(f"{rel}/{d.name}", "volume") for d in subdirs]
    return [ImageRef(rel, "volume")]


def _series_order(p: Path) -> tuple[int, str]:
    tail = p.name.rsplit("_", 1)[-1]
    return (int(tail) if tail.isdigit() else 1 << 30, p.name)


def resolve_volumes(ctx: BuildContext, dataset: str, paths: Sequence[str], where: str) -> tuple[ImageRef, ...] | Reject:
    """The image references of one record's paths (RadFM cluster paths or relative ones), or one reject naming
    ``where`` (e.g. ``radiology_vqa_train.csv:line7``): a path that does not resolve (``missing_file``) or leaves the
    raw root (``outside_root``), a header
    that cannot be read (``undecodable``), no path at all (``bad_row``)."""
    refs: list[ImageRef] = []
    for path in paths:
        try:
            rel = ctx.resolver.resolve(path)
            refs.extend(image_refs_for(ctx.raw, rel))
        except UnresolvedPath as exc:  # missing_file, or outside_root
            return Reject(dataset, where, str(path), exc.reason, f"{where}: {exc}", "plan")
        except (OSError, ValueError) as exc:
            return Reject(dataset, where, str(path), "undecodable", f"{where}: cannot read header of {path}: {exc}", "plan")
    if not refs:
        return Reject(dataset, where, "", "bad_row", f"{where}: no image path", "plan")
    return tuple(refs)


def resolve_image(ctx: BuildContext, dataset: str, path: str, where: str, *,
                  folders: Sequence[str] = ()) -> ImageRef | Reject:
    """One 2D image of a row: ``path`` as a file under one of the dataset's image ``folders`` (RadFM joined a
    configured image root and a name; a publisher's table names files inside its image folder), else mapped by the
    build's resolver (RadFM's absolute cluster paths, paths relative to the raw root). A reject names ``where``:
    no path (``bad_row``), a path that climbs out of the raw root (``outside_root``), none found (``missing_file``)."""
    text = str(path).strip()
    if not text:
        return Reject(dataset, where, "", "bad_row", f"{where}: no image path", "plan")
    climbs = ".." in PurePosixPath(text.replace("\\", "/")).parts  # the resolver refuses it: outside_root
    if not text.startswith("/") and not climbs:
        for folder in folders:
            candidate = f"{folder.strip('/')}/{text}" if folder.strip("/") else text
            if (ctx.raw / candidate).is_file():
                text = candidate
                break
    try:
        return ImageRef(ctx.resolver.resolve(text), "image2d")
    except UnresolvedPath as exc:
        return Reject(dataset, where, text, exc.reason, f"{where}: {exc}", "plan")


def store_image(ctx: BuildContext, dataset: str, store: str, name: str, where: str) -> ImageRef | Reject:
    """The figure ``name`` (a file at the root of the store ``store``), or a reject naming ``where``: a name that is
    not a plain file name (``outside_root``), a figure the store does not hold (``missing_file``)."""
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        return Reject(dataset, where, name, "outside_root", f"{where}: figure name {name!r} is not a file name", "plan")
    root = ctx.store_root(store)
    if not (root / name).is_file():
        return Reject(dataset, where, f"{store}/{name}", "missing_file",
                      f"{where}: figure {name} is not in the {store} store ({root})", "plan")
    return ImageRef(name, "image2d", store=store)
