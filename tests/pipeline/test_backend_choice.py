"""Which array library the stages use: ``pipeline.backend`` from the config to the worker."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import standin

from hpcseg.config.compose import load_config
from hpcseg.config.validate import validate
from hpcseg.data.synthetic import synthetic_frame
from hpcseg.errors import UserError
from hpcseg.pipeline import backend, devices, gpu
from hpcseg.pipeline.segment import segment, segment_on
from hpcseg.run.job import worker_pipeline

needs_no_gpu = pytest.mark.skipif(
    importlib.util.find_spec("cupy") is not None and gpu.available(),
    reason="this machine has CuPy and a GPU: the no-GPU answers cannot be checked here",
)


@needs_no_gpu
def test_select_without_a_gpu():
    assert devices.select("numpy") is backend.NUMPY
    assert devices.select("auto") is backend.NUMPY
    with pytest.raises(UserError, match=r"pipeline.backend=cupy .*pip install 'hpcseg\[gpu\]'"):
        devices.select("cupy")
    with pytest.raises(ValueError, match="unknown array backend 'opencl'"):
        devices.select("opencl")


def test_auto_means_numpy_on_cpu_clusters_and_gpus_on_gpu_clusters():
    assert str(worker_pipeline(load_config([])).backend) == "numpy"
    assert str(worker_pipeline(load_config(["cluster=slurm"])).backend) == "numpy"
    for kind in ("local_gpu", "slurm_gpu", "pbs_gpu"):
        cfg = load_config([f"cluster={kind}"])
        assert str(worker_pipeline(cfg).backend) == "auto", kind
    chosen = load_config(["pipeline.backend=numpy", "cluster=local_gpu"])
    assert str(worker_pipeline(chosen).backend) == "numpy"


@needs_no_gpu
def test_cupy_is_refused_where_it_cannot_run():
    with pytest.raises(UserError, match=r"needs CuPy|sees no GPU"):
        load_config(["pipeline.backend=cupy"])  # the local workers would run here
    cfg = load_config(["cluster=slurm"])
    cfg.pipeline.backend = "cupy"
    validate(cfg)  # the jobs' nodes may have GPUs: not checked here
    cfg.mode.name = "tiled"
    with pytest.raises(UserError, match=r"pipeline\.backend=cupy is not available with mode=tiled"):
        validate(cfg)


def test_segment_on_a_device_returns_host_results(device):
    image, _ = synthetic_frame(5, 2, shape=(128, 160))
    cfg = load_config([]).pipeline
    result, seconds = segment_on(device, image, cfg)
    plain = segment(image, cfg)
    assert type(result.labels) is np.ndarray
    assert all(type(v) is np.ndarray for v in result.objects.values())
    assert seconds >= 0.0
    # the same foreground and objects (the batched split may move a few boundary pixels)
    np.testing.assert_array_equal(result.labels > 0, plain.labels > 0)
    assert result.labels.max() == plain.labels.max()
    assert (result.labels != plain.labels).mean() < 1e-3
    on_numpy, none = segment_on(backend.NUMPY, image, cfg)
    assert none == 0.0 and np.array_equal(on_numpy.labels, plain.labels)


def test_the_stand_in_refuses_host_arrays_as_cupy_does():
    on_device = np.arange(4).view(standin.OnDevice)
    with pytest.raises(TypeError, match="a NumPy array met a device array"):
        on_device + np.arange(4)
    assert type(on_device + 1) is standin.OnDevice  # scalars are fine
