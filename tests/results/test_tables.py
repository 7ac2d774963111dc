"""The table schemas are the one source of column names: rows that disagree are refused."""

from __future__ import annotations

import numpy as np
import pytest

from hpcseg.config.schemas import PipelineConfig
from hpcseg.data.records import ImageRecord
from hpcseg.errors import UserError
from hpcseg.pipeline.measure import column_names
from hpcseg.pipeline.segment import STAGES
from hpcseg.results.tables import (
    IMAGE_COLUMN_NAMES,
    RESERVED_COLUMNS,
    ImageRow,
    images_schema,
    objects_schema,
    objects_table,
)
from hpcseg.run.worker import BatchJob, _process_one


def test_a_misspelt_image_column_is_refused():
    row = ImageRow(["plate"], image_id="a", plate="p1")
    row["n_objects"] = 3
    with pytest.raises(KeyError, match="n_object"):
        row["n_object"] = 3
    with pytest.raises(KeyError, match="thresold"):
        row.update(thresold=1.0)
    with pytest.raises(KeyError, match="well"):
        ImageRow(["plate"], well="A01")


def test_objects_table_needs_exactly_the_schema_columns():
    schema = objects_schema((), 2)
    columns = {name: [] for name in schema.names}
    assert objects_table(columns, schema).num_rows == 0
    with pytest.raises(KeyError, match="extra"):
        objects_table({**columns, "areaa": []}, schema)
    with pytest.raises(KeyError, match="missing"):
        objects_table({k: v for k, v in columns.items() if k != "area"}, schema)


def test_every_key_a_worker_writes_is_a_column(tmp_path):
    """A real image processed as a worker does: every key it sets is an images column and every
    measurement is an objects column (ImageRow raises otherwise)."""
    import tifffile

    from hpcseg.data.synthetic import synthetic_frame

    image, truth = synthetic_frame(3, 0, shape=(96, 128))
    tifffile.imwrite(tmp_path / "a.tif", image)
    tifffile.imwrite(tmp_path / "m.tif", truth)
    job = BatchJob(PipelineConfig(), 2**28, str(tmp_path), "f", ("plate",), {})
    record = ImageRecord("a", str(tmp_path / "a.tif"), str(tmp_path / "m.tif"), (("plate", "p"),))
    row, objects = _process_one(record, job)
    assert row["status"] == "ok" and row["n_true"] > 0
    assert set(row) <= IMAGE_COLUMN_NAMES | {"image_id", "plate"}
    assert {f"seconds_{s}" for s in STAGES} <= set(row)
    assert list(objects) == column_names(2, False)
    assert set(objects) <= set(objects_schema(("plate",)).names)


def test_reserved_metadata_names_cover_every_builtin_column():
    for name in ("image_id", "threshold", "background", "seconds_total", "f1_70", "tp_55",
                 "area", "centroid-0", "volume_um3", "solidity", "perimeter_um"):  # fmt: skip
        assert name in RESERVED_COLUMNS, name
    assert set(images_schema().names) <= RESERVED_COLUMNS
    assert set(objects_schema((), 3, True, True).names) <= RESERVED_COLUMNS


def test_a_metadata_group_named_like_a_column_is_a_config_error(make_config, tmp_path):
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(tmp_path / "p1_x.tif", np.zeros((8, 8), np.uint16))
    with pytest.raises(UserError, match="threshold"):
        make_config(
            "dataset=tiff_glob",
            f"dataset.path={tmp_path}/*.tif",
            "dataset.metadata_regex='(?P<threshold>[a-z0-9]+)_'",
        )
