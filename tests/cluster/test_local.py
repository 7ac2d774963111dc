"""A local cluster inside a SLURM allocation takes the allocation's memory, not the node's."""

from __future__ import annotations

import pytest

from hpcseg.cluster.core import default_memory_limit
from hpcseg.cluster.slurm import check_submission
from hpcseg.errors import UserError


def test_auto_memory_in_an_allocation_is_its_share_per_worker(monkeypatch):
    monkeypatch.delenv("SLURM_MEM_PER_NODE", raising=False)
    assert default_memory_limit(2, "auto") == "auto"  # distributed's own share of the machine
    monkeypatch.setenv("SLURM_MEM_PER_NODE", "4096")  # MiB, as SLURM sets it
    assert default_memory_limit(2, "auto") == 2 * 2**30
    assert default_memory_limit(2, "3GiB") == "3GiB"  # an explicit limit stays


def test_a_slurm_sweep_without_sbatch_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    with pytest.raises(UserError, match="but sbatch is not on PATH here"):
        check_submission({"partition": "debug"})
