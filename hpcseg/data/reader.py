"""Reading one image (or mask) from a TIFF, with the checks that keep bad inputs per-image.

An image's layout comes from its tifffile series axes: Y and X are the frame, Z the planes of a
z-stack (``dataset.ndim=3``), C or S the channels (one is chosen with ``dataset.channel``), Q/I
unnamed pages (z-planes only when ``ndim=3``); axes of length 1 are dropped and any other axis
is an error. The layout and the size cap are checked from the header before any pixel is
decoded; the values (finite, not negative) right after decoding. A file that holds more than one
image is refused rather than read in part.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import numpy as np
import tifffile

from hpcseg.errors import ImageError

# a plain TIFF with pages of more kinds (shape, pixel type, storage) than this is refused before
# tifffile parses its series: each kind is a series, and its pyramid detection compares every
# series with every other (minutes for thousands of them)
MAX_PAGE_KINDS = 16

# micrometres per unit of an OME PhysicalSize or an ImageJ 'unit'
_UM_PER_UNIT = {
    "µm": 1.0,  # micro sign
    "μm": 1.0,  # Greek mu
    "um": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "\\u00B5m": 1.0,  # ImageJ writes µ escaped
    "nm": 1e-3,
    "pm": 1e-6,
    "Å": 1e-4,
    "mm": 1e3,
    "cm": 1e4,
    "m": 1e6,
    "inch": 25400.0,
}
# micrometres per TIFF ResolutionUnit (tifffile's RESUNIT: 2 inch, 3 cm, 4 mm, 5 µm)
_UM_PER_RESUNIT = {2: 25400.0, 3: 10000.0, 4: 1000.0, 5: 1.0}


@dataclass(frozen=True)
class TiffImage:
    """An image as read: its pixels ((Z,) Y, X) and the µm per pixel its file declares."""

    pixels: np.ndarray
    pixel_size: float | None = None  # OME PhysicalSizeX or TIFF/ImageJ resolution; None if absent


@dataclass(frozen=True)
class _Layout:
    """Where the returned pixels are in a series' unsqueezed axes."""

    shape: tuple[int, ...]  # of the returned pixels: (Z,) Y, X
    order: tuple[int, ...]  # the series axes that become them, in that order
    channel_axis: int | None  # the series axis a channel is taken from
    channel: int


def _squeezed_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(s for s in shape if s != 1) or (1,)


def read_image(
    path: str,
    max_pixels: int,
    require_integer: bool = True,
    ndim: int = 2,
    channel: str | int | None = None,
) -> TiffImage:
    """Read a grey-level 2-D frame (``ndim=2``) or 3-D z-stack (``ndim=3``, axes Z, Y, X), of a
    multi-channel file the ``channel`` (an index or an OME name), with the µm per pixel the file
    declares; raise :class:`ImageError` with a clear reason otherwise.

    The layout is checked from the TIFF header before any pixel is decoded, so a huge or
    malicious file is refused without allocating its pixels; the values right after decoding.
    """
    try:
        with tifffile.TiffFile(path) as tif:
            header = inspect_tiff(tif, ndim, channel)
            series, layout = header.series, header.layout
            check_layout(layout.shape, np.dtype(series.dtype), max_pixels, require_integer, ndim)
            pixels = _decode(series, layout)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError("file not found") from None
    except MemoryError:
        raise ImageError("out of memory while decoding") from None
    except Exception as exc:  # truncated or corrupt files raise many different errors
        raise ImageError(f"cannot read TIFF ({type(exc).__name__}: {exc})") from None
    check_values(pixels)
    return TiffImage(pixels, header.pixel_size)


@dataclass(frozen=True)
class TiffHeader:
    """What a TIFF's header says of its one image: no pixel is decoded to learn it."""

    series: tifffile.TiffPageSeries
    layout: _Layout
    pixel_size: float | None  # µm per pixel along X, as the file declares it
    z_step: float | None  # µm between planes (OME PhysicalSizeZ or ImageJ 'spacing')


def inspect_tiff(tif: tifffile.TiffFile, ndim: int, channel: str | int | None) -> TiffHeader:
    """The one image of an open TIFF, where its (Z,) Y, X pixels and ``channel`` are in its
    series axes, and the µm per pixel and per plane it declares; raise :class:`ImageError`
    for a layout hpcseg does not read (shared with the lazy reader of large images)."""
    _check_pages(tif)
    series = _one_series(tif)
    ome = _ome_pixels(tif)
    layout = _layout(series, ndim, channel, _channel_names(ome))
    pixel_size = _file_pixel_size(series.keyframe, ome, tif.imagej_metadata)
    return TiffHeader(series, layout, pixel_size, _file_z_step(ome, tif.imagej_metadata))


def _check_pages(tif: tifffile.TiffFile) -> None:
    """Refuse a plain TIFF of several images before tifffile parses its series, which for
    thousands of them takes minutes (and its first series is only part of the file)."""
    if tif.is_ome or tif.is_imagej:  # their metadata maps the pages to one image per series
        return
    n_pages = len(tif.pages)  # follows the page chain only; fast
    if n_pages < 2:
        return
    if tif.is_shaped:  # tifffile's own files: the first page says how many pages its image has
        first = _shaped_pages(tif.pages.first)
        if first is not None and first < n_pages:
            raise ImageError(
                f"TIFF holds more than one image (the first has {first} of its {n_pages} pages); "
                "hpcseg reads one image per file: save each image as its own TIFF"
            )
        return
    if n_pages <= MAX_PAGE_KINDS or tif.is_uniform:  # uniform: sampled pages match the first
        return
    kinds = set()
    for page in tif.pages:
        kinds.add(page.hash)  # shape, pixel type and storage: pages of one series share it
        if len(kinds) > MAX_PAGE_KINDS:
            raise ImageError(
                f"TIFF has {n_pages} pages of more than {MAX_PAGE_KINDS} different shapes or "
                "pixel types; hpcseg reads one image per file: save each image as its own TIFF"
            )


def _shaped_pages(page: tifffile.TiffPage) -> int | None:
    """How many pages the image of a tifffile-written ("shaped") first page spans."""
    description = page.shaped_description or ""
    try:
        if description.startswith("shape="):  # the old, non-JSON form: shape=(2, 3, 4)
            meta = {"shape": [int(s) for s in description[7:-1].split(",") if s.strip()]}
        else:
            meta = json.loads(description)
        size = math.prod(int(s) for s in meta["shape"])
    except (ValueError, TypeError, KeyError):
        return None  # tifffile will not read it as shaped either
    per_page = math.prod(page.shape)
    if meta.get("truncated") or size == 0:
        return 1
    return size // per_page if per_page and size % per_page == 0 else None


def _one_series(tif: tifffile.TiffFile) -> tifffile.TiffPageSeries:
    """The file's one image; more images (other than reduced-size previews) are an error."""
    series = tif.series
    if not series:
        raise ImageError("TIFF holds no image data")
    others = [s for s in series[1:] if not s.keyframe.is_reduced]
    if others:
        raise ImageError(
            f"TIFF holds {len(others) + 1} images (series of shapes {series[0].shape}, "
            f"{others[0].shape}{', ...' if len(others) > 1 else ''}); hpcseg reads one image "
            "per file: save each image as its own TIFF"
        )
    return series[0]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ome_pixels(tif: tifffile.TiffFile) -> ET.Element | None:
    """The Pixels element of an OME-TIFF's first image (None if absent or unreadable)."""
    if not tif.is_ome:
        return None
    try:
        root = ET.fromstring(tif.ome_metadata or "")
    except ET.ParseError:
        return None
    image = next((e for e in root if _local(e.tag) == "Image"), None)
    if image is None:
        return None
    return next((e for e in image if _local(e.tag) == "Pixels"), None)


def _channel_names(pixels: ET.Element | None) -> list[str]:
    """The OME channel names, in order ([] if any channel has none)."""
    if pixels is None:
        return []
    names = [" ".join((e.get("Name") or "").split()) for e in pixels if _local(e.tag) == "Channel"]
    return names if all(names) else []


def _indices(n: int) -> str:
    return f"0..{n - 1}" if n > 1 else "0"


def _channel_index(channel: str | int | None, n: int, names: list[str], axes: str) -> int:
    """The index of ``dataset.channel`` among an image's ``n`` channels."""
    if channel is None:
        if n == 1:
            return 0
        named = f" ({', '.join(names)})" if names else ""
        raise ImageError(
            f"has {n} channels{named} (axes {axes}); choose one with "
            f"dataset.channel=<{_indices(n)}>{' or a name' if names else ''}"
        )
    text = str(channel).strip()
    if text.isascii() and text.isdigit():
        if int(text) < n:
            return int(text)
        raise ImageError(
            f"dataset.channel={text} but the image has {n} channel{'s' if n > 1 else ''} "
            f"(axes {axes}); use {_indices(n)}{' or null' if n == 1 else ''}"
        )
    if text in names:
        return names.index(text)
    if names:
        raise ImageError(
            f"dataset.channel={text!r}: no channel of that name; the image's channels are "
            f"{', '.join(names)} (or an index {_indices(n)})"
        )
    raise ImageError(
        f"dataset.channel={text!r}: the image's channels have no names (axes {axes}); "
        f"use an index {_indices(n)}"
    )


def _layout(
    series: tifffile.TiffPageSeries, ndim: int, channel: str | int | None, names: list[str]
) -> _Layout:
    """Which of the series' axes become the pixels' (Z,) Y, X, and which channel is read."""
    axes, shape = unsqueezed(series)
    return axes_layout(axes, shape, ndim, channel, names)


def unsqueezed(series: tifffile.TiffPageSeries) -> tuple[str, tuple[int, ...]]:
    """The series' axes and shape with its length-1 axes kept (as tifffile's Zarr view has
    them): ``get_axes(False)`` up to tifffile 2026.3; from 2026.11, which dropped it, the same
    series of ``TiffFile.series(squeeze=False)``."""
    if hasattr(series, "get_axes"):
        return series.get_axes(False), tuple(series.get_shape(False))
    position = next(i for i, s in enumerate(series.parent.series) if s is series)
    full = series.parent.series(squeeze=False)[position]
    return full.axes, tuple(full.shape)


def axes_layout(
    axes: str, shape: tuple[int, ...], ndim: int, channel: str | int | None, names: list[str]
) -> _Layout:
    """Which of the axes (tifffile's letters: Y, X, Z, C or S, Q or I, T, ...) of an array of
    ``shape`` become the pixels' (Z,) Y, X, and which channel (of ``names``, if any) is read."""
    kept = [i for i, n in enumerate(shape) if n != 1]
    kaxes = "".join(axes[i] for i in kept)
    seen = f"shape {tuple(shape[i] for i in kept)}, axes {kaxes}" if kept else "a single pixel"
    want = (
        "a 2-D image (one grey channel)"
        if ndim == 2
        else "a 3-D z-stack (Z, Y, X; one grey channel)"
    )

    channel_axes = [i for i in kept if axes[i] in "CS"]
    if len(channel_axes) > 1:
        raise ImageError(
            f"expected {want}, got channels on two axes ({seen}); save one channel per file"
        )
    c_axis = channel_axes[0] if channel_axes else None
    n_channels = shape[c_axis] if c_axis is not None else 1
    if (c_axis is not None and axes[c_axis] != "C") or len(names) != n_channels:
        names = []  # OME names C channels; RGB samples (S) have none
    index = _channel_index(channel, n_channels, names, kaxes)

    rest = [i for i in kept if i != c_axis]
    ys = [i for i in rest if axes[i] == "Y"]
    xs = [i for i in rest if axes[i] == "X"]
    others = [i for i in rest if axes[i] not in "YX"]
    if len(ys) != 1 or len(xs) != 1:
        raise ImageError(f"expected {want}, got {seen}")
    if ndim == 2:
        if len(others) == 1 and axes[others[0]] == "Z":
            raise ImageError(
                f"expected {want}, got a z-stack of {shape[others[0]]} planes ({seen}); "
                "for z-stacks set dataset.ndim=3"
            )
        if len(others) == 1 and axes[others[0]] in "QI":
            raise ImageError(
                f"expected {want}, got {shape[others[0]]} pages ({seen}): if these pages are "
                "z-planes, it is a z-stack; for z-stacks set dataset.ndim=3"
            )
        z = []
    else:
        if not others:
            raise ImageError(f"expected {want}, got a 2-D image ({seen})")
        z = [i for i in others if axes[i] == "Z"][:1]
        if not z and len(others) == 1 and axes[others[0]] in "QI":
            z = others  # a plain multi-page TIFF: its pages are the planes
    unexplained = [i for i in others if i not in z]
    if unexplained:
        what = ", ".join(
            f"{tifffile.TIFF.AXES_NAMES.get(axes[i], 'unknown')} ({axes[i]})" for i in unexplained
        )
        verb = "axes are" if len(unexplained) > 1 else "axis is"
        raise ImageError(
            f"expected {want}, got {seen}; its {what} {verb} not one hpcseg reads "
            "(Y, X, Z, a channel): save one image per file"
        )
    order = (*z, ys[0], xs[0])
    return _Layout(tuple(shape[i] for i in order), order, c_axis, index)


def _page_axes(series: tifffile.TiffPageSeries, shape: tuple[int, ...]) -> int | None:
    """How many leading axes of ``shape`` index the series' pages (None if they do not)."""
    n_pages, per_page = len(series), math.prod(series.keyframe.shape)
    for k in range(len(shape) + 1):
        if math.prod(shape[:k]) == n_pages and math.prod(shape[k:]) == per_page:
            return k
    return None


def _decode(series: tifffile.TiffPageSeries, layout: _Layout) -> np.ndarray:
    """Decode the layout's pixels; a channel stored in pages of its own is decoded alone."""
    shape = unsqueezed(series)[1]
    order = list(layout.order)
    c = layout.channel_axis
    if c is None:
        data = series.asarray().reshape(shape)
    else:
        k = _page_axes(series, shape)
        if k is not None and c < k and not series.is_truncated:
            pages = np.arange(len(series)).reshape(shape[:k]).take(layout.channel, axis=c)
            data = series.asarray(key=pages.ravel().tolist())
        else:  # samples of a pixel (RGB) or a truncated file: decode all, keep one
            data = series.asarray().reshape(shape).take(layout.channel, axis=c)
        shape = shape[:c] + shape[c + 1 :]
        order = [i - 1 if i > c else i for i in order]
    # every axis left besides those of `order` has length 1
    data = data.reshape([shape[i] for i in sorted(order)])
    data = data.transpose([sorted(order).index(i) for i in order])
    return np.ascontiguousarray(data)


def _positive(value: float) -> float | None:
    return value if math.isfinite(value) and value > 0 else None


def _file_pixel_size(
    page: tifffile.TiffPage, ome: ET.Element | None, imagej: dict | None
) -> float | None:
    """µm per pixel (along X) as the file declares it: OME PhysicalSizeX, else the TIFF
    XResolution in its ResolutionUnit (or ImageJ's 'unit'); None if it says nothing."""
    try:
        if ome is not None and ome.get("PhysicalSizeX") is not None:
            um = _UM_PER_UNIT.get(ome.get("PhysicalSizeXUnit", "µm"), math.nan)
            return _positive(float(ome.get("PhysicalSizeX")) * um)
        if page.tags.valueof(282) is None:  # XResolution: pixels per unit
            return None
        unit = int(page.resolutionunit)
        if unit == 1:  # no unit: ImageJ keeps its unit in the description
            um = _UM_PER_UNIT.get(str((imagej or {}).get("unit", "")).strip())
        else:
            um = _UM_PER_RESUNIT.get(unit)
        per_unit = float(page.resolution[0])
        return _positive(um / per_unit) if um is not None and per_unit > 0 else None
    except (ValueError, TypeError, ZeroDivisionError, OverflowError):
        return None  # informational: a malformed value is no reason to fail the image


def _file_z_step(ome: ET.Element | None, imagej: dict | None) -> float | None:
    """µm between planes as the file declares it: OME PhysicalSizeZ, else ImageJ's 'spacing'
    in its 'unit'; None if it says nothing."""
    try:
        if ome is not None and ome.get("PhysicalSizeZ") is not None:
            um = _UM_PER_UNIT.get(ome.get("PhysicalSizeZUnit", "µm"), math.nan)
            return _positive(float(ome.get("PhysicalSizeZ")) * um)
        if imagej and imagej.get("spacing") is not None:
            um = _UM_PER_UNIT.get(str(imagej.get("unit", "")).strip())
            return _positive(float(imagej["spacing"]) * um) if um is not None else None
    except (ValueError, TypeError, OverflowError):
        pass  # informational, as the pixel size
    return None


def check_layout(
    shape: tuple[int, ...], dtype: np.dtype, max_pixels: int, require_integer: bool, ndim: int = 2
) -> None:
    """Refuse shapes and dtypes the pipelines cannot handle."""
    if len(shape) != ndim:
        if ndim == 2:
            raise ImageError(f"expected a 2-D image (one grey channel), got shape {shape}")
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


def check_values(pixels: np.ndarray) -> None:
    """Refuse NaN, infinite and negative pixels (fluorescence counts are >= 0): a min (and,
    for floats, a max) reduction; the pixels are counted only when something is wrong."""
    if pixels.dtype.kind not in "if" or pixels.size == 0:
        return
    low = pixels.min()
    if pixels.dtype.kind == "f" and not (np.isfinite(low) and np.isfinite(pixels.max())):
        bad = pixels.size - np.count_nonzero(np.isfinite(pixels))
        raise ImageError(
            f"{bad} of {pixels.size} pixels are NaN or infinite; the pipelines need finite "
            "intensities: replace them (e.g. with 0) before segmenting"
        )
    if low < 0:
        negative = np.count_nonzero(pixels < 0)
        raise ImageError(
            f"{negative} of {pixels.size} pixels are negative (minimum {low}); fluorescence "
            "counts are >= 0: offset the data (e.g. subtract its minimum) or save it unsigned"
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
