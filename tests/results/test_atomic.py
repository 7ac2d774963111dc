"""Atomic writes: a reader sees the old file or the whole new one, never a part."""

from __future__ import annotations

import pytest

from hpcseg.results.atomic import TMP_SUFFIX, atomic_path, remove_stale_temporaries


def test_the_target_appears_only_when_the_write_succeeds(tmp_path):
    target = tmp_path / "part.parquet"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(TMP_SUFFIX)
        tmp.write_text("new")
        assert not target.exists()  # not yet renamed
    assert target.read_text() == "new"
    assert list(tmp_path.iterdir()) == [target]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "run.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    (tmp_path / f".part-a.parquet.1234abcd{TMP_SUFFIX}").write_text("x")
    (tmp_path / f".part-b.parquet.99999999{TMP_SUFFIX}").write_text("x")
    keep = tmp_path / "part-c.parquet"
    keep.write_text("committed")
    assert remove_stale_temporaries(tmp_path) == 2
    assert list(tmp_path.iterdir()) == [keep]
    assert remove_stale_temporaries(tmp_path / "missing") == 0
