"""Reading one image (or mask) from a TIFF, with the checks that keep bad inputs per-image."""

from __future__ import annotations

import math

import numpy as np
import tifffile

from hpcseg.errors import ImageError


def _squeezed_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(s for s in shape if s != 1) or (1,)


def read_image(
    path: str, max_pixels: int, require_integer: bool = True, ndim: int = 2
) -> np.ndarray:
    """Read a grey-level 2-D frame (``ndim=2``) or 3-D z-stack (``ndim=3``, axes Z, Y, X);
    raise :class:`ImageError` with a clear reason otherwise. Axes of length 1 are dropped.

    The shape is checked from the TIFF header before any pixel is decoded, so a huge or
    malicious file is refused without allocating its pixels.
    """
    try:
        with tifffile.TiffFile(path) as tif:
            if not tif.series:
                raise ImageError("TIFF holds no image data")
            series = tif.series[0]
            shape = _squeezed_shape(series.shape)
            dtype = np.dtype(series.dtype)
            check_layout(shape, dtype, max_pixels, require_integer, ndim)
            image = series.asarray()
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError("file not found") from None
    except MemoryError:
        raise ImageError("out of memory while decoding") from None
    except Exception as exc:  # truncated or corrupt files raise many different errors
        raise ImageError(f"cannot read TIFF ({type(exc).__name__}: {exc})") from None
    return image.reshape(shape)


def check_layout(
    shape: tuple[int, ...], dtype: np.dtype, max_pixels: int, require_integer: bool, ndim: int = 2
) -> None:
    """Refuse shapes and dtypes the pipelines cannot handle."""
    if len(shape) != ndim:
        if ndim == 2:
            hint = "; for z-stacks set dataset.ndim=3" if len(shape) == 3 else ""
            raise ImageError(f"expected a 2-D image (one grey channel), got shape {shape}{hint}")
        raise ImageError(f"expected a 3-D z-stack (Z, Y, X; one grey channel), got shape {shape}")
    n_pixels = math.prod(shape)
    if n_pixels > max_pixels:
        raise ImageError(
            f"{n_pixels} pixels exceed dataset.max_pixels={max_pixels}; raise it if intended"
        )
    if dtype.kind not in "uif":  # bool ("b"), complex, strings, objects
        raise ImageError(f"pixel type {dtype} is not a grey-level number type")
    if require_integer and dtype.kind == "f":
        raise ImageError(
            f"pixel type {dtype} is floating point; this pipeline needs integer pixels "
            "(set pipeline.require_integer_input=false to allow it)"
        )


def read_mask(path: str, shape: tuple[int, ...]) -> np.ndarray:
    """Read an instance mask; it must match the image's shape and hold integer labels.

    A TIFF holds the labels themselves. A PNG is read as BBBC039 ships its ground truth: the
    first (red) channel holds a value per object, touching objects get different values, and
    every 8-connected region of one value is one object (how the set's authors read it).
    """
    try:
        mask = _png_instances(path) if path.lower().endswith(".png") else tifffile.imread(path)
    except Exception as exc:
        raise ImageError(f"cannot read mask {path} ({type(exc).__name__}: {exc})") from None
    mask = mask.reshape(_squeezed_shape(mask.shape))
    if mask.shape != tuple(shape):
        raise ImageError(f"mask {path} has shape {mask.shape}, image has {tuple(shape)}")
    if mask.dtype.kind not in "ui":
        raise ImageError(f"mask {path} has pixel type {mask.dtype}; labels must be integers")
    return mask


def _png_instances(path: str) -> np.ndarray:
    from PIL import Image
    from skimage.measure import label

    with Image.open(path) as png:
        values = np.asarray(png)
    if values.ndim == 3:
        values = values[..., 0]
    return label(values, background=0, connectivity=2).astype(np.int32)
