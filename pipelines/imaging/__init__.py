"""Raw medical images -> uint8 arrays in RadFM's channel-first, depth-last ``[C, H, W, D]`` layout.

Sources: JPEG/PNG (and the other Pillow formats: TIFF, BMP, GIF, WebP), DICOM (single-frame, multi-frame
and series folders), NIfTI, folders of JPEG/PNG slices, and ``.npy`` arrays (incl. RadFM's processed
``[S, 3, 512, 512, Z]`` files). Every size and limit comes from :class:`~pipelines.config.ImageConfig`.

Layout of the package:

``readers/``      one reader per format (magic bytes, name claims, 2D planes, volume slices, slice series),
                  registered in ``readers.READERS`` and looked up by the format ``sniff`` finds
``sniff.py``      content -> format name;  ``folder.py``  slice folders;  ``load.py``  the public loaders
``files.py``      existence and size guards;  ``errors.py``  the ImageError family
``planes.py``     in-plane resizing and stacking;  ``intensity.py``  windowing and channels;  ``depth.py``  depth

Conventions:

* 2D images become ``[C, size_2d, size_2d, 1]``, volumes ``[C, size_3d, size_3d, D]``; C is 1 (grey) or 3.
  In-plane resizing squashes to a square (the aspect ratio is not kept), as RadFM did; the filter is
  Pillow's antialiased bicubic. :func:`stack_sample` brings the images of one sample to one
  ``[S, C, H, W, D]`` array, fitting every volume to one depth (:func:`common_depth`, :func:`fit_depth`).
  Volumes are views of slices-contiguous memory (``[D, C, H, W]``, and ``[S, C, D, H, W]`` for a 3D sample: the
  order spec 1.4 stores), so no step copies a volume to depth-last.
* Intensity (:func:`to_uint8`): uint8 sources pass through unchanged. Other sources are windowed by the
  DICOM VOI LUT / window when the file has one, otherwise by ``ImageConfig.clip_percentiles``, computed
  over the whole image or volume (never per slice), and scaled to 0..255. A volume's percentiles are those of
  its native voxels; its slices are windowed at native resolution, then resized in uint8.
* Orientation: DICOM MONOCHROME1 is inverted (high = bright). NIfTI volumes are reoriented to RAS+ and
  their axial slices shown in radiological convention (row 0 anterior, column 0 patient right), which is
  also how an axial DICOM slice is stored. DICOM series keep their acquisition plane and are ordered along
  the slice normal (inferior -> superior for axial series, like the RAS+ z axis).
* Failures raise an :class:`ImageError` subclass whose message names the file; a bad image is never
  replaced by noise or zeros (RadFM substituted random noise).
* Output is deterministic: the same input gives byte-identical arrays.
"""

from pipelines.imaging.depth import common_depth, fit_depth, stack_sample
from pipelines.imaging.errors import (
    DECODE_ERRORS,
    ConstantImage,
    DecompressionBomb,
    EmptyFile,
    EmptySeries,
    ImageError,
    MissingFile,
    NonFiniteImage,
    UndecodableImage,
    UnsupportedFormat,
)
from pipelines.imaging.intensity import to_uint8
from pipelines.imaging.load import load_2d, load_images, load_npy_images, load_volume
from pipelines.imaging.readers.dicom import read_dicom
from pipelines.imaging.sniff import sniff

__all__ = [
    "DECODE_ERRORS",
    "ConstantImage",
    "DecompressionBomb",
    "EmptyFile",
    "EmptySeries",
    "ImageError",
    "MissingFile",
    "NonFiniteImage",
    "UndecodableImage",
    "UnsupportedFormat",
    "common_depth",
    "fit_depth",
    "load_2d",
    "load_images",
    "load_npy_images",
    "load_volume",
    "read_dicom",
    "sniff",
    "stack_sample",
    "to_uint8",
]
