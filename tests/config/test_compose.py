"""Config composition and validation: bad input is one clear line and exit code 2."""

from __future__ import annotations

import pytest
from conftest import run_cli

from hpcseg.config.schemas import PipelineConfig, SmoothMethod, ThresholdMethod
from hpcseg.errors import UserError


def test_defaults_are_the_nuclei_pipeline_on_synthetic_data(make_config):
    cfg = make_config()
    assert cfg.dataset.name == "synthetic" and cfg.dataset.n_images == 16
    assert cfg.pipeline == PipelineConfig()  # the yaml preset adds nothing but its name
    assert cfg.pipeline.split.method == "watershed"
    assert cfg.cluster.name == "local" and cfg.cluster.n_workers is None
    assert cfg.output.dir == "hpcseg-output/nuclei"


def test_nuclei_refined_preset(make_config):
    p = make_config("pipeline=nuclei_refined").pipeline
    assert p.name == "nuclei_refined" and p.threshold.method == "log_otsu"
    assert p.refine.method == "objects" and p.refine.fraction == 0.4
    assert p.split.method == "watershed"


def test_blog2021_preset(make_config):
    p = make_config("pipeline=blog2021").pipeline
    assert p.smooth.method == SmoothMethod.gaussian and p.smooth.keep_dtype
    assert p.threshold.method == ThresholdMethod.local_gaussian and p.threshold.block_size is None
    assert p.clean.opening == "cross" and not p.clean.fill_holes and p.clean.min_area == 0
    assert p.split.method == "none" and p.label.connectivity == 1


def test_overrides_reach_the_dataclasses(make_config, tmp_path):
    (tmp_path / "a.tif").write_bytes(b"")
    cfg = make_config(
        "dataset=tiff_glob",
        f"dataset.path={tmp_path}/*.tif",
        "cluster.n_workers=3",
        "runner.batch_size=5",
        "pipeline.smooth.sigma=2.5",
    )
    assert cfg.dataset.path == f"{tmp_path}/*.tif"
    assert (cfg.cluster.n_workers, cfg.runner.batch_size, cfg.pipeline.smooth.sigma) == (3, 5, 2.5)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("dataset.nimages=3", "unknown config key 'dataset.nimages'"),
        ("colour=red", "unknown config key 'colour'"),
        ("dataset.n_images=many", "dataset.n_images"),
        ("pipeline.smooth.sigma=-1", "pipeline.smooth.sigma=-1.0 is out of range: must be >= 0"),
        ("pipeline.threshold.method=magic", "pipeline.threshold.method"),
        ("pipeline.threshold.block_size=50", "must be odd"),
        (
            "dataset=nope",
            "dataset=nope: no such dataset option; available: "
            "bbbc039, synthetic, synthetic3d, tiff_glob",
        ),
        ("runner.batch_size=0", "runner.batch_size=0 is out of range"),
        ("dataset=tiff_glob", "dataset.path is required"),
    ],
)
def test_bad_override_is_a_user_error(make_config, override, expected):
    with pytest.raises(UserError, match=None) as info:
        make_config(override)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["dataset.nimages=3"], "dataset.nimages"),
        (["dataset.n_images=x"], "dataset.n_images"),
        (["pipeline.smooth.sigma=-0.5"], "pipeline.smooth.sigma"),
        (["dataset=tiff_glob"], "dataset.path"),
        (["dataset=tiff_glob", "dataset.path=/no/such/dir/*.tif"], "dataset.path"),
    ],
)
def test_cli_bad_config_exit_2_one_line_nothing_written(tmp_path, args, key):
    out = tmp_path / "out"
    proc = run_cli(*args, f"output.dir={out}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("hpcseg: error: ") and key in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # not even Hydra's log folder


@pytest.mark.slow
def test_cli_help_and_cfg_job(tmp_path):
    helped = run_cli("--help", cwd=tmp_path)
    assert helped.returncode == 0
    assert (
        "pipeline: blog2021, nuclei, nuclei_refined" in helped.stdout
        and "dataset: bbbc039, synthetic, synthetic3d, tiff_glob" in helped.stdout
    )
    shown = run_cli("pipeline=blog2021", "--cfg", "job", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "name: blog2021" in shown.stdout and "method: local_gaussian" in shown.stdout
    assert list(tmp_path.iterdir()) == []
