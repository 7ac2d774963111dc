"""The two output tables' columns and types: the one place they are declared.

Rows are built through :class:`ImageRow` and :func:`objects_table`, which refuse a key that is
not a column (a misspelt key would otherwise become a silent null column), and the names a
file-name metadata group may not take are derived from these columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pyarrow as pa

from hpcseg.pipeline.measure import column_names
from hpcseg.pipeline.segment import STAGES
from hpcseg.results.evaluate import SCORE_COUNT_COLUMNS, SCORE_VALUE_COLUMNS

# seconds_<stage>: reading, the copies to and from a GPU, the pipeline's stages, scoring against
# the mask (and the total)
TIMED_STEPS = ("read", "transfer", *STAGES, "score")

IMAGE_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("path", pa.string()),
    ("mask_path", pa.string()),
    # the input's identity when it was processed (resume checks it): size, mtime, optional hash
    ("input_bytes", pa.int64()),
    ("input_mtime_ns", pa.int64()),
    ("input_sha256", pa.string()),
    ("status", pa.string()),
    ("error", pa.string()),
    ("n_objects", pa.int64()),
    ("shape", pa.list_(pa.int64())),
    ("mode", pa.string()),  # images (whole on a worker) or tiled
    ("backend", pa.string()),  # the stages' array library: numpy or cupy
    ("n_chunks", pa.int64()),  # tiled: chunks the image was cut into
    ("chunk_grid", pa.list_(pa.int64())),  # tiled: chunks along each axis
    ("dtype", pa.string()),
    ("file_pixel_size", pa.float64()),  # µm per pixel as the file declares it (OME, TIFF tags)
    ("threshold", pa.float64()),
    ("diameter", pa.float64()),  # the nucleus diameter (px) the pipeline's lengths came from
    # (seconds_diameter: measuring it; the steps it ran again are booked to their own stages)
    ("contrast_to_noise", pa.float64()),  # measured for a derived smoothing (frames): below
    # smooth.contrast_to_noise, more smoothing (null: not measured; seconds_diameter has it)
    ("area_total", pa.int64()),
    ("area_mean", pa.float64()),
    ("background", pa.float64()),
    *((name, pa.int64()) for name in SCORE_COUNT_COLUMNS),
    *((name, pa.float64()) for name in SCORE_VALUE_COLUMNS),
    *((f"seconds_{step}", pa.float64()) for step in TIMED_STEPS),
    ("seconds_total", pa.float64()),
    ("fingerprint", pa.string()),
    ("hostname", pa.string()),
    ("slurm_job_id", pa.string()),
    ("container", pa.string()),
)
IMAGE_COLUMN_NAMES = frozenset(name for name, _ in IMAGE_COLUMNS)


def _object_type(name: str) -> pa.DataType:
    if name == "label":
        return pa.int32()
    if name in ("area", "euler_number") or name.startswith("bbox-"):
        return pa.int64()
    if name == "touches_border":
        return pa.bool_()
    return pa.float64()


def _all_object_columns() -> frozenset[str]:
    """Every column any measurement variant (2-D/3-D, shape features, µm) can produce."""
    return frozenset(
        name
        for ndim in (2, 3)
        for shape_features in (False, True)
        for name in column_names(ndim, shape_features, physical=True)
    )


# a metadata group with one of these names would collide with a built-in column
RESERVED_COLUMNS = frozenset({"image_id"}) | IMAGE_COLUMN_NAMES | _all_object_columns()


def _leading(metadata_columns: Iterable[str]) -> list[pa.Field]:
    return [pa.field("image_id", pa.string())] + [
        pa.field(c, pa.string()) for c in metadata_columns
    ]


def objects_schema(
    metadata_columns: Iterable[str] = (),
    ndim: int = 2,
    shape_features: bool = False,
    physical: bool = False,
) -> pa.Schema:
    """image_id, the metadata columns, then the measurement columns in :func:`column_names`
    order."""
    names = column_names(ndim, shape_features, physical)
    return pa.schema(_leading(metadata_columns) + [pa.field(c, _object_type(c)) for c in names])


def images_schema(metadata_columns: Iterable[str] = ()) -> pa.Schema:
    """image_id, the metadata columns, then :data:`IMAGE_COLUMNS`."""
    return pa.schema(_leading(metadata_columns) + [pa.field(n, t) for n, t in IMAGE_COLUMNS])


class ImageRow(dict):
    """One row of the images table: setting a key that is not a column raises KeyError."""

    def __init__(self, metadata_columns: Iterable[str] = (), **values) -> None:
        super().__init__()
        self.columns = IMAGE_COLUMN_NAMES | {"image_id", *metadata_columns}
        self.update(values)

    def __setitem__(self, key: str, value) -> None:
        if key not in self.columns:
            raise KeyError(f"'{key}' is not a column of the images table")
        super().__setitem__(key, value)

    def update(self, *args, **values) -> None:  # dict.update bypasses __setitem__
        for key, value in dict(*args, **values).items():
            self[key] = value


def images_table(rows: list[ImageRow], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def objects_table(columns: Mapping[str, list], schema: pa.Schema) -> pa.Table:
    """The objects table from one list per column; the keys must be exactly the schema's."""
    extra = set(columns) - set(schema.names)
    missing = set(schema.names) - set(columns)
    if extra or missing:
        raise KeyError(
            f"objects columns differ from the schema: extra {sorted(extra)}, "
            f"missing {sorted(missing)}"
        )
    return pa.Table.from_pydict(dict(columns), schema=schema)
