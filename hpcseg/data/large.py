"""Lazy access to one image too large to read whole: a (BigTIFF, OME-TIFF) file or a Zarr store.

:func:`open_large` reads only metadata and returns a :class:`LargeImage`: its shape in the axes
hpcseg segments ((Z,) Y, X), dtype, storage chunks, µm per pixel and per plane. Its
:meth:`LargeImage.read` decodes one region. A LargeImage is a few strings and tuples, so it pickles
cheaply to Dask workers; ``read`` opens the store itself (once per process and file).

Axes: a TIFF's come from its tifffile series exactly as :mod:`hpcseg.data.reader` reads them; an
OME-Zarr image's from ``multiscales[0].axes`` (level 0 = its first dataset); a plain Zarr array's
from its dimension names, else it is (Y, X) or (Z, Y, X) once its length-1 axes are dropped. A
time axis of length 1 is dropped, a channel axis needs ``channel`` (an index, or an OME-Zarr
``omero`` label / OME-TIFF channel name) unless it has length 1, a Z axis is read for ``ndim=3``.
Every problem is an :class:`ImageError` with one line that names the file.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tifffile
import zarr

from hpcseg.data.reader import _UM_PER_UNIT, axes_layout, inspect_tiff, unsqueezed
from hpcseg.errors import ImageError

ZARR_METADATA = (".zarray", ".zattrs", ".zgroup", "zarr.json")

# NGFF axis names (lowercase) → the tifffile axis letters reader.axes_layout understands
_AXIS_LETTERS = {"t": "T", "c": "C", "z": "Z", "y": "Y", "x": "X"}
_AXIS_TYPE_LETTERS = {"time": "T", "channel": "C"}
_OTHER_AXIS = "Q"  # tifffile's 'other'
# µm per NGFF (UDUNITS-2) length unit, besides reader's abbreviations (µm, nm, mm, ...)
_UM_PER_NGFF_UNIT = {
    "angstrom": 1e-4,
    "picometer": 1e-6,
    "nanometer": 1e-3,
    "micrometer": 1.0,
    "micron": 1.0,
    "millimeter": 1e3,
    "centimeter": 1e4,
    "decimeter": 1e5,
    "meter": 1e6,
    "kilometer": 1e9,
    "inch": 25400.0,
    "foot": 304800.0,
    "yard": 914400.0,
    "mile": 1609344000.0,
}


@dataclass(frozen=True)
class LargeImage:
    """One large image, opened lazily; :meth:`read` decodes a region of it.

    ``shape``, ``chunks`` and the regions given to :meth:`read` are in the returned axes,
    (Y, X) or (Z, Y, X); the private fields map them to the stored array's axes.
    """

    path: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name (native byte order)
    chunks: tuple[int, ...]  # the storage's chunk (tile, strip, shard) shape: a hint for reading
    pixel_size: float | None  # µm per pixel along X, as the file declares it
    z_step: float | None  # µm between planes (3-D), as the file declares it
    _format: str = field(default="zarr", repr=False)  # "tiff" or "zarr"
    _array: str | None = field(default=None, repr=False)  # the array's path inside a Zarr store
    _order: tuple[int, ...] = field(default=(), repr=False)  # stored axes of the returned ones
    _stored_ndim: int = field(default=0, repr=False)
    _channel_axis: int | None = field(default=None, repr=False)
    _channel: int = field(default=0, repr=False)

    def read(self, region: tuple[slice, ...]) -> np.ndarray:
        """The pixels of ``region`` (one slice per returned axis, step 1; ``slice(None)`` for
        all) as a C-contiguous array in the returned axes; only the chunks it overlaps are
        decoded."""
        bounds = _bounds(region, self.shape)
        index: list[int | slice] = [0] * self._stored_ndim
        for (start, stop), axis in zip(bounds, self._order, strict=True):
            index[axis] = slice(start, stop)
        if self._channel_axis is not None:
            index[self._channel_axis] = self._channel
        try:
            data = np.asarray(_stored_array(self._format, self.path, self._array)[tuple(index)])
        except MemoryError:
            raise ImageError(f"{self.path}: out of memory reading region {bounds}") from None
        except Exception as exc:  # truncated files, missing chunk files, codec errors
            raise ImageError(f"{self.path}: cannot read region {bounds} ({_why(exc)})") from None
        kept = sorted(self._order)  # the axes left after the integer indices, in stored order
        data = data.transpose([kept.index(axis) for axis in self._order])
        return np.ascontiguousarray(data, dtype=self.dtype)


def is_zarr_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a Zarr store: a folder with Zarr metadata, or a name ending .zarr."""
    text = os.fspath(path).rstrip("/\\")
    if text.lower().endswith(".zarr"):
        return True
    return os.path.isdir(text) and any(os.path.exists(os.path.join(text, m)) for m in ZARR_METADATA)


def open_large(
    path: str, ndim: int = 2, channel: str | int | None = None, array: str | None = None
) -> LargeImage:
    """Open the image at ``path`` (a TIFF file or a Zarr store) without decoding its pixels:
    its ``ndim``-D ((Y, X) or (Z, Y, X)) grey-level pixels, of a multi-channel image the
    ``channel`` (an index or a name); ``array`` is the array's (or OME-Zarr image group's) path
    inside a Zarr store. Raises :class:`ImageError` with a one-line reason naming the file."""
    path = os.fspath(path)
    if ndim not in (2, 3):
        raise ValueError(f"ndim must be 2 or 3, not {ndim}")
    try:
        if not os.path.exists(path):
            raise ImageError("not found")
        if os.path.isdir(path):
            image = _open_zarr(path, ndim, channel, array)
        elif path.lower().rstrip("/").endswith(".zarr"):
            raise ImageError("is a file, not a Zarr store (a folder)")
        else:
            if array is not None:
                raise ImageError(f"is a TIFF: dataset.array={array!r} is for Zarr stores")
            image = _open_tiff(path, ndim, channel)
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from None
    except MemoryError:
        raise ImageError(f"{path}: out of memory reading its metadata") from None
    except Exception as exc:  # corrupt metadata raises many kinds of errors
        raise ImageError(f"{path}: cannot read its metadata ({_why(exc)})") from None
    return image


def _grey(dtype: Any) -> str:
    """The numpy name (native byte order) of a grey-level number type; else an ImageError."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "uif":  # bool, complex, strings, objects
        raise ImageError(f"pixel type {dtype} is not a grey-level number type")
    return dtype.newbyteorder("=").name


# -------------------------------------------------------------------------------------- TIFF
def _open_tiff(path: str, ndim: int, channel: str | int | None) -> LargeImage:
    try:
        tif = tifffile.TiffFile(path)
    except tifffile.TiffFileError as exc:
        raise ImageError(f"not a TIFF ({_why(exc)})") from None
    with tif:
        header = inspect_tiff(tif, ndim, channel)
        series, layout = header.series, header.layout
        dtype = _grey(series.dtype)
    stored = _stored_array("tiff", path, None)
    shape = unsqueezed(series)[1]
    if tuple(stored.shape) != shape:  # tifffile's store and series disagree: never seen
        raise ImageError(f"tifffile's Zarr view has shape {stored.shape}, its series {shape}")
    return LargeImage(
        path=path,
        shape=layout.shape,
        dtype=dtype,
        chunks=tuple(int(stored.chunks[i]) for i in layout.order),
        pixel_size=header.pixel_size,
        z_step=header.z_step if ndim == 3 else None,
        _format="tiff",
        _order=layout.order,
        _stored_ndim=len(shape),
        _channel_axis=layout.channel_axis,
        _channel=layout.channel,
    )


# -------------------------------------------------------------------------------------- Zarr
@dataclass(frozen=True)
class _ZarrImage:
    """A Zarr array and what its metadata says of it."""

    array: zarr.Array
    path: str  # inside the store
    axes: str  # one tifffile letter per axis
    names: list[str]  # channel names
    scale: list[float] | None  # per axis, in the axes' units
    units: list[str | None]


def _open_zarr(path: str, ndim: int, channel: str | int | None, array: str | None) -> LargeImage:
    image = _zarr_image(path, array)
    dtype = _grey(image.array.dtype)
    shape = tuple(int(s) for s in image.array.shape)
    if len(image.axes) != len(shape):
        raise ImageError(
            f"its metadata names {len(image.axes)} axes, its array '{image.path}' has "
            f"{len(shape)} (shape {shape})"
        )
    layout = axes_layout(image.axes, shape, ndim, channel, image.names)
    chunks = image.array.shards or image.array.chunks  # a shard is read in one go
    x, z = image.axes.index("X"), image.axes.find("Z")
    return LargeImage(
        path=path,
        shape=layout.shape,
        dtype=dtype,
        chunks=tuple(int(chunks[i]) for i in layout.order),
        pixel_size=_length_um(image, x),
        z_step=_length_um(image, z) if ndim == 3 and z in layout.order else None,
        _format="zarr",
        _array=image.path,
        _order=layout.order,
        _stored_ndim=len(shape),
        _channel_axis=layout.channel_axis,
        _channel=layout.channel,
    )


def _zarr_image(path: str, array: str | None) -> _ZarrImage:
    """The array to read and its axes: an OME-Zarr image's level 0, or a plain array."""
    try:
        root = zarr.open(path, mode="r")
    except (FileNotFoundError, zarr.errors.NodeNotFoundError):
        raise ImageError("not a Zarr store (no .zarray, .zgroup or zarr.json in it)") from None
    inner = (array or "").strip("/")
    node = root
    if inner:
        if not isinstance(root, zarr.Group):
            raise ImageError(f"is one Zarr array; it has no array '{inner}' (dataset.array)")
        try:
            node = root[inner]
        except KeyError:
            raise ImageError(f"has no array or group '{inner}' (dataset.array)") from None
    if isinstance(node, zarr.Group):
        return _ome_level0(node, inner)
    if inner:  # an OME-Zarr level chosen by hand: its axes and scale are its image group's
        parent_path, _, name = inner.rpartition("/")
        parent = root[parent_path] if parent_path else root
        if isinstance(parent, zarr.Group):
            image = _ome_level(parent, parent_path, name)
            if image is not None:
                return image
    return _plain(node, inner)


def _ome(attrs: dict) -> dict:
    """The OME-Zarr attributes: 0.5 keeps them under 'ome', 0.4 and older at the top."""
    ome = attrs.get("ome")
    return ome if isinstance(ome, dict) else attrs


def _ome_level0(group: zarr.Group, inner: str) -> _ZarrImage:
    ome = _ome(dict(group.attrs))
    if not ome.get("multiscales") and "bioformats2raw.layout" in ome and "0" in group:
        image = group["0"]  # bioformats2raw: the images are groups 0, 1, ...; the first
        if isinstance(image, zarr.Group):
            return _ome_level0(image, f"{inner}/0".strip("/"))
    if not ome.get("multiscales"):
        if "plate" in ome or "well" in ome:
            raise ImageError(
                f"is an OME-Zarr {'plate' if 'plate' in ome else 'well'}, not one image; set "
                "dataset.array to one field's image group (e.g. A/1/0)"
            )
        arrays = sorted(group.array_keys())[:6]
        listed = f" ({', '.join(arrays)}{', ...' if len(arrays) == 6 else ''})" if arrays else ""
        raise ImageError(
            f"is a Zarr group without OME-Zarr multiscales metadata"
            f"{f' at {inner!r}' if inner else ''}; set dataset.array to one of its "
            f"arrays{listed}"
        )
    datasets = ome["multiscales"][0].get("datasets") or []
    if not datasets or "path" not in datasets[0]:
        raise ImageError("its OME-Zarr multiscales list no datasets")
    image = _ome_level(group, inner, str(datasets[0]["path"]))
    if image is None:  # cannot happen: the level is one of the datasets
        raise ImageError("its OME-Zarr level 0 is not among its datasets")
    return image


def _ome_level(group: zarr.Group, inner: str, name: str) -> _ZarrImage | None:
    """The level ``name`` of the OME-Zarr image ``group`` (None if it describes no such
    level)."""
    ome = _ome(dict(group.attrs))
    multiscales = ome.get("multiscales") or [{}]
    multiscale = multiscales[0]
    dataset = next((d for d in multiscale.get("datasets", []) if str(d.get("path")) == name), None)
    if dataset is None:
        return None
    where = f"{inner}/{name}".strip("/")
    try:
        array = group[name]
    except KeyError:
        raise ImageError(f"its OME-Zarr level 0 '{where}' is missing") from None
    if not isinstance(array, zarr.Array):
        raise ImageError(f"its OME-Zarr level 0 '{where}' is a group, not an array")
    raw_axes = multiscale.get("axes")
    if raw_axes is None:  # NGFF 0.1/0.2: always 5-D t, c, z, y, x
        raw_axes = ["t", "c", "z", "y", "x"][-array.ndim :]
    axes, units = [], []
    for axis in raw_axes:
        if isinstance(axis, str):  # NGFF 0.3: names only
            axis = {"name": axis}
        name_ = str(axis.get("name", "")).lower()
        letter = _AXIS_LETTERS.get(name_) or _AXIS_TYPE_LETTERS.get(str(axis.get("type")))
        axes.append(letter or _OTHER_AXIS)
        units.append(axis.get("unit"))
    letters = "".join(axes)
    if letters.count("Y") != 1 or letters.count("X") != 1:
        named = ", ".join(str(a.get("name") if isinstance(a, dict) else a) for a in raw_axes)
        raise ImageError(f"its OME-Zarr axes ({named}) are not ones with one y and one x")
    scale = _scale(dataset.get("coordinateTransformations"), len(axes))
    outer = _scale(multiscale.get("coordinateTransformations"), len(axes))
    if scale is not None and outer is not None:
        scale = [a * b for a, b in zip(scale, outer, strict=True)]
    return _ZarrImage(array, where, letters, _omero_labels(ome, group), scale, units)


def _scale(transforms: Any, n: int) -> list[float] | None:
    """The 'scale' of a list of NGFF coordinateTransformations (None if none or malformed)."""
    for t in transforms or []:
        if isinstance(t, dict) and t.get("type") == "scale":
            values = t.get("scale")
            if isinstance(values, list) and len(values) == n:
                try:
                    return [float(v) for v in values]
                except (TypeError, ValueError):
                    return None
    return None


def _omero_labels(ome: dict, group: zarr.Group) -> list[str]:
    """The channel labels of OME-Zarr's 'omero' metadata ([] if any is missing)."""
    omero = ome.get("omero") or dict(group.attrs).get("omero") or {}
    channels = omero.get("channels") if isinstance(omero, dict) else None
    if not isinstance(channels, list):
        return []
    labels = [" ".join(str(c.get("label") or "").split()) for c in channels if isinstance(c, dict)]
    return labels if labels and all(labels) and len(labels) == len(channels) else []


def _plain(array: zarr.Array, inner: str) -> _ZarrImage:
    """A Zarr array without OME metadata: its dimension names, else (Z,) Y, X by position."""
    names = getattr(array.metadata, "dimension_names", None)  # Zarr v3
    if names is None:
        names = dict(array.attrs).get("_ARRAY_DIMENSIONS")  # Zarr v2 (xarray's convention)
    shape = tuple(int(s) for s in array.shape)
    if names and all(isinstance(n, str) for n in names) and len(names) == len(shape):
        letters = "".join(_AXIS_LETTERS.get(n.lower(), _OTHER_AXIS) for n in names)
        if letters.count("Y") == 1 and letters.count("X") == 1:
            return _ZarrImage(array, inner, letters, [], None, [None] * len(shape))
    kept = [i for i, n in enumerate(shape) if n != 1]
    if not 2 <= len(kept) <= 3:
        raise ImageError(
            f"is a Zarr array of shape {shape} without axis names; hpcseg reads such an array "
            "as (Y, X) or (Z, Y, X) once its length-1 axes are dropped"
        )
    letters = [_OTHER_AXIS] * len(shape)
    for i, letter in zip(kept, "ZYX"[-len(kept) :], strict=True):
        letters[i] = letter
    return _ZarrImage(array, inner, "".join(letters), [], None, [None] * len(shape))


def _length_um(image: _ZarrImage, axis: int) -> float | None:
    """The µm per step along ``axis`` (its scale in its unit; None if either is unknown)."""
    if axis < 0 or image.scale is None or not image.units[axis]:
        return None
    unit = str(image.units[axis]).strip()
    um = _UM_PER_NGFF_UNIT.get(unit.lower(), _UM_PER_UNIT.get(unit))
    value = image.scale[axis] * um if um is not None else math.nan
    return value if math.isfinite(value) and value > 0 else None


# ------------------------------------------------------------------------------------ shared
def _stored_array(fmt: str, path: str, array: str | None) -> zarr.Array:
    """The stored array, opened once per process (and per version of the file): a forked
    worker must not share its parent's file handle, a rewritten file must be reopened."""
    stat = os.stat(path)
    key = (fmt, path, array, os.getpid(), stat.st_ino, stat.st_mtime_ns)
    with _OPEN_LOCK:
        if key in _OPEN:
            _OPEN.move_to_end(key)
            return _OPEN[key][0]
    opened, store = _open_stored(fmt, path, array)  # outside the lock: it reads metadata
    with _OPEN_LOCK:
        if key in _OPEN:  # another thread opened it meanwhile
            _close(store)
            return _OPEN[key][0]
        _OPEN[key] = (opened, store)
        while len(_OPEN) > _OPEN_MAX:
            _close(_OPEN.popitem(last=False)[1][1])
    return opened


_OPEN: OrderedDict[tuple, tuple[zarr.Array, Any]] = OrderedDict()  # least recently used first
_OPEN_LOCK = threading.Lock()
_OPEN_MAX = 32


def _open_stored(fmt: str, path: str, array: str | None) -> tuple[zarr.Array, Any]:
    """The stored array and what to close when done with it (a TIFF's open file)."""
    if fmt == "tiff":  # tifffile's Zarr store of the first series' full-resolution level
        store = tifffile.imread(path, aszarr=True, series=0, level=0, squeeze=False)
        return zarr.open(store, mode="r"), store
    if array:
        return zarr.open_array(path, path=array, mode="r"), None
    return zarr.open_array(path, mode="r"), None


def _close(store: Any) -> None:
    if store is not None:
        with contextlib.suppress(Exception):
            store.close()


@atexit.register
def close_stores() -> None:
    """Close the files this process holds open for reading (tests, and at exit)."""
    with _OPEN_LOCK:
        while _OPEN:
            _close(_OPEN.popitem()[1][1])


def _bounds(region: tuple[slice, ...], shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """``region``'s (start, stop) per axis, within ``shape``; steps other than 1 are refused."""
    if isinstance(region, slice):
        region = (region,)
    region = tuple(region)
    if len(region) > len(shape) or not all(isinstance(s, slice) for s in region):
        raise ValueError(f"region must be up to {len(shape)} slices, got {region!r}")
    region = region + (slice(None),) * (len(shape) - len(region))
    bounds = []
    for s, n in zip(region, shape, strict=True):
        if s.step not in (None, 1):
            raise ValueError(f"region slices must have step 1, got {s!r}")
        start, stop, _ = s.indices(n)
        bounds.append((start, max(start, stop)))
    return bounds


def _why(exc: BaseException) -> str:
    """An exception as one short line."""
    text = " ".join(str(exc).split())
    if len(text) > 200:
        text = text[:197] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
