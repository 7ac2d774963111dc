"""Planning a sweep (``hpcseg -m``): points composed and checked first, one folder each under
the sweep folder, refused points recorded rather than fatal, the Optuna checks, hpcseg's
SLURM launcher preset. Nothing here runs a point."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from hpcseg.cluster.slurm import sbatch_options
from hpcseg.config.sweep_points import (
    BASIC_LAUNCHER,
    output_dir_names_sweep,
    plan_sweep,
    wants_multirun,
)
from hpcseg.errors import UserError
from hpcseg.results.points import PointRecord, write_point


def _refuse(cfg):
    raise UserError("checked")


def test_a_typo_or_a_missing_option_refuses_the_whole_sweep(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"^unknown config key 'dataset\.nimages'"):
        plan_sweep(["dataset.n_images=1,2", "dataset.nimages=3"])  # a typo in a fixed key
    with pytest.raises(UserError, match=r"^multirun point #0 \(dataset\.nimages=3\): unknown"):
        plan_sweep(["dataset.nimages=3,4"])  # a typo in a swept key
    with pytest.raises(UserError, match=r"point #1 \(pipeline=nope\): pipeline=nope: no such"):
        plan_sweep(["pipeline=nuclei,nope"])
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the sweep folder


def test_a_value_one_point_refuses_is_that_points_failure_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = plan_sweep(["pipeline.smooth.sigma=1,-1", "dataset.seed=3,4"])
    assert plan.points is not None and len(plan.points) == 4
    assert sorted(plan.configs) == [0, 1] and sorted(plan.invalid) == [2, 3]
    assert plan.invalid[2].startswith(
        "multirun point #2 (pipeline.smooth.sigma=-1 dataset.seed=3): "
        "pipeline.smooth.sigma=-1.0 is out of range"
    )
    assert [plan.configs[i].dataset.seed for i in (0, 1)] == [3, 4]
    # every point refused: nothing would run, so the sweep is refused up front
    with pytest.raises(UserError, match=r"^multirun point #0 \(pipeline.smooth.sigma=-1\)"):
        plan_sweep(["pipeline.smooth.sigma=-1,-2"])
    # the check (preflight) runs on every valid point; its refusal is the point's
    with pytest.raises(UserError, match=r"point #0 \(cluster.n_workers=1\): checked"):
        plan_sweep(["cluster.n_workers=1,2"], _refuse)
    assert list(tmp_path.iterdir()) == []


def test_every_point_writes_its_own_folder_under_the_sweep_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = plan_sweep(["pipeline.smooth.sigma=1,2"])
    assert plan.sweep_dir.parent == Path("hpcseg-output/multirun")  # next to single runs
    assert [plan.configs[i].output.dir for i in (0, 1)] == [
        str(plan.sweep_dir / "0"),
        str(plan.sweep_dir / "1"),
    ]
    assert plan.in_process and plan.launcher == BASIC_LAUNCHER and plan.expected == 2
    assert plan.swept == ["pipeline.smooth.sigma"] and plan.objective == "f1_avg"
    # output.dir given with -m names the sweep folder (so the same command resumes it)
    named = plan_sweep(["pipeline.smooth.sigma=1,2", f"output.dir={tmp_path}/s"])
    assert named.sweep_dir == tmp_path / "s"
    assert named.configs[1].output.dir == f"{tmp_path}/s/1"
    assert "output.dir=" not in " ".join(named.points[1])  # not a point's own override
    assert output_dir_names_sweep(["output.dir=a", "x=1"]) == ["x=1", "hydra.sweep.dir=a"]
    # hydra.sweep.dir wins over output.dir
    both = ["output.dir=a", "hydra.sweep.dir=b", "x=1"]
    assert output_dir_names_sweep(both) == ["hydra.sweep.dir=b", "x=1"]
    with pytest.raises(UserError, match=r"give output\.dir=<folder> once"):
        plan_sweep(["output.dir=a,b"])
    with pytest.raises(UserError, match=r"#0 \(pipeline.smooth.sigma=1\) and multirun point #1"):
        plan_sweep(["pipeline.smooth.sigma=1,2", "hydra.sweep.subdir=same"])
    assert list(tmp_path.iterdir()) == []


def test_an_experiment_preset_is_a_sweep_of_its_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert wants_multirun(["experiment=threshold_declump", "pipeline.smooth.sigma=1,2"])
    assert wants_multirun(["hydra.mode=MULTIRUN", "pipeline.smooth.sigma=1,2"])
    assert not wants_multirun(["pipeline.smooth.sigma=1"])
    plan = plan_sweep(["experiment=threshold_declump"])
    assert plan.expected == 6 and not plan.invalid
    assert plan.swept == ["pipeline.threshold.method", "pipeline.split.method"]
    assert {c.dataset.n_images for c in plan.configs.values()} == {8}
    methods = {(c.pipeline.threshold.method.value, c.pipeline.split.method.value)
               for c in plan.configs.values()}  # fmt: skip
    assert len(methods) == 6
    assert str(plan.sweep_dir).startswith("hpcseg-output/experiments/threshold_declump/")


def test_an_optimising_sweep_needs_maximize_and_ground_truth(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen = []
    plan = plan_sweep(["hparams_search=nuclei_optuna"], check_objective=seen.append)
    assert plan.points is None and plan.n_trials == 30 and plan.expected == 30
    assert "pipeline.smooth.sigma" in plan.swept and len(plan.swept) == 6
    assert len(seen) == 1 and seen[0].output.dir == str(plan.sweep_dir / "0")
    with pytest.raises(UserError, match=r"set hydra\.sweeper\.direction=maximize"):
        plan_sweep(["hparams_search=nuclei_optuna", "hydra.sweeper.direction=minimize"])
    with pytest.raises(UserError, match="checked"):
        plan_sweep(["hparams_search=nuclei_optuna"], check_objective=_refuse)
    # a study restarts at trial 0: another study's folders would get other parameters
    write_point(tmp_path / "old" / "0", PointRecord(0, [], 0, "ok"))
    with pytest.raises(UserError, match=r"already holds 1 point folder\(s\): an optimising"):
        plan_sweep(["hparams_search=nuclei_optuna", f"output.dir={tmp_path}/old"])


def test_no_ground_truth_is_refused_for_optuna(tmp_path, monkeypatch):
    from hpcseg.run.sweep import require_ground_truth

    monkeypatch.chdir(tmp_path)
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((64, 64), np.uint16))
    with pytest.raises(UserError, match=r"dataset 'tiff_glob' has no masks"):
        plan_sweep(
            ["hparams_search=nuclei_optuna", "dataset=tiff_glob", f"dataset.path={tmp_path}/*.tif"],
            check_objective=require_ground_truth,
        )


def test_the_slurm_launcher_preset_maps_hpcseg_names_onto_submitit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plan = plan_sweep(
        ["hydra/launcher=slurm", "sweep.queue=debug", "sweep.cores=4", "sweep.memory=3.5GiB",
         "sweep.walltime=1-00:00:30", "sweep.account=lab", "hydra.launcher.qos=short",
         "+hydra.launcher.additional_parameters.exclusive=true", "pipeline.smooth.sigma=1,2"]
    )  # fmt: skip
    assert plan.on_slurm and not plan.in_process
    options = plan.launcher_options
    assert (options["partition"], options["cpus_per_task"], options["mem_gb"]) == ("debug", 4, 4)
    assert (options["timeout_min"], options["account"]) == (24 * 60 + 1, "lab")
    assert sbatch_options(options) == [
        "--partition=debug", "--account=lab", "--qos=short", "--cpus-per-task=4", "--mem=4GB",
        "--time=1441", "--nodes=1", "--ntasks-per-node=1", "--exclusive",
    ]  # fmt: skip
    with pytest.raises(UserError, match=r"^hydra.launcher.mem_gb: lots is not a memory size"):
        plan_sweep(["hydra/launcher=slurm", "sweep.memory=lots", "pipeline.smooth.sigma=1,2"])
    with pytest.raises(UserError, match=r"^hydra.launcher.timeout_min: 5 is not a wall time"):
        plan_sweep(["hydra/launcher=slurm", "sweep.walltime=5", "pipeline.smooth.sigma=1"])


def test_a_missing_sweep_plugin_is_named_with_the_install_line():
    from hpcseg.config.hydra_errors import one_line

    missing = Exception("In 'hydra/launcher/slurm': Could not find 'hydra/launcher/submitit_slurm'")
    assert one_line(missing) == (
        "submitit_slurm is a Hydra plugin hpcseg does not install by default: pip install "
        "'hpcseg[sweep]' (hydra-submitit-launcher, hydra-optuna-sweeper)"
    )
    preset = Exception("In 'hydra/launcher/slurm': Could not load 'hydra/launcher/submitit_slurm'.")
    assert one_line(preset) == one_line(missing)  # the preset's defaults list names it
    other = Exception("Could not find 'hydra/launcher/nope'\nAvailable options:\n\tbasic\n\tslurm")
    assert one_line(other) == "hydra/launcher=nope: no such hydra/launcher option; available: " + (
        "basic, slurm"
    )


def test_cfg_hydra_resolve_shows_the_launcher_in_submitits_units():
    from hpcseg.config.show import show_config

    text = show_config(["hydra/launcher=slurm", "sweep.memory=3.5GiB", "sweep.queue=debug"],
                       "hydra", "hydra.launcher", resolve=True)  # fmt: skip
    assert "mem_gb: 4\n" in text and "partition: debug\n" in text and "timeout_min: 60\n" in text
    assert "dir: hpcseg-output/nuclei/logs/" in show_config([], "hydra", "hydra.run", resolve=True)


def test_the_launcher_gets_the_checked_configs_instead_of_composing_again(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from hpcseg.config.sweep_points import CheckedPoints

    monkeypatch.chdir(tmp_path)
    plan = plan_sweep(["pipeline.smooth.sigma=1,2"])
    calls = []

    class Loader:
        def load_sweep_config(self, master, overrides):
            calls.append(overrides)
            return plan.hydra.config_loader.load_sweep_config(master, overrides)

    loader = CheckedPoints(Loader(), plan)
    got = loader.load_sweep_config(plan.composed, plan.points[1])
    assert calls == []  # answered from the plan
    fresh = plan.hydra.config_loader.load_sweep_config(plan.composed, plan.points[1])
    assert got.pipeline.smooth.sigma == fresh.pipeline.smooth.sigma == 2.0
    assert got.output.dir == str(plan.sweep_dir / "1")  # the point's own folder, as it runs
    mine, theirs = OmegaConf.to_container(got.pipeline), OmegaConf.to_container(fresh.pipeline)
    assert mine == theirs
    got.pipeline.smooth.sigma = 5.0  # a copy: the plan's config is not changed by its user
    assert loader.load_sweep_config(plan.composed, plan.points[1]).pipeline.smooth.sigma == 2.0
    loader.load_sweep_config(plan.composed, ["pipeline.smooth.sigma=3"])  # not planned
    assert calls == [["pipeline.smooth.sigma=3"]]
