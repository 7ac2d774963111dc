"""Config composition and validation: bad input is one clear line and exit code 2."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from conftest import run_cli
from hydra.core.global_hydra import GlobalHydra

from hpcseg import cli
from hpcseg.config.compose import HYDRA_VERSION, as_strings, load_config
from hpcseg.config.keys import describe
from hpcseg.config.schemas import PipelineConfig, SmoothMethod, ThresholdMethod
from hpcseg.config.show import help_text, show_config
from hpcseg.config.sweep_points import plan_sweep
from hpcseg.errors import UserError

README = Path(__file__).resolve().parents[2] / "README.md"


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
        # keys Hydra adds with `+` (as its own error message suggests) are still checked
        ("+dataset.pathh=x", "unknown config key 'dataset.pathh' (valid keys here: name, "),
        ("+colour=red", "unknown config key 'colour' (valid keys here: dataset, mode, cluster, "),
        ("+pipeline.smooth.x=1", "unknown config key 'pipeline.smooth.x'"),
        ("output.compression=banana", "output.compression=banana is not a Parquet codec"),
        ("cluster.memory_limit=banana", "cluster.memory_limit=banana is not a memory limit"),
        ("cluster.memory_limit=-1GiB", "cluster.memory_limit=-1GiB is not a memory limit"),
        ("cluster.n_workers=100000", "cluster.n_workers=100000 is more than 4 x the "),
        ("output.dir=", "output.dir is empty: give it a value"),
        ("pipeline.smooth.sigma=1,2", "pipeline.smooth.sigma=1,2 has several values: add -m"),
        ("dataset.seed", "'dataset.seed' is not an override: write key=value"),
    ],
)
def test_bad_override_is_a_user_error(make_config, override, expected):
    with pytest.raises(UserError, match=None) as info:
        make_config(override)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["dataset=tiff_glob", "dataset.path="], "dataset.path is empty: give it a value"),
        (
            ["dataset=tiff_glob", "dataset.path=/x/*.tif", "dataset.masks="],
            "dataset.masks is empty: give it a value, or dataset.masks=null for none",
        ),
        (["cluster=slurm", "cluster.memory=banana"], "cluster.memory=banana is not a memory"),
        (["cluster=slurm", "cluster.walltime=banana"], "cluster.walltime=banana is not a wall"),
        (["cluster=pbs", "cluster.walltime=2-00:00:00"], "use HH:MM:SS"),
        (
            ["dataset=tiff_glob", r"dataset.metadata_regex=(?P<plate>\w+)_s(?P<site>\d+)"],
            "cannot read the override 'dataset.metadata_regex=(?P<plate>",
        ),
    ],
)
def test_bad_overrides_are_one_user_error_line(make_config, overrides, expected):
    with pytest.raises(UserError) as info:
        make_config(*overrides)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_values_of_string_keys_stay_text(make_config, tmp_path):
    """Hydra's grammar reads `true` as a bool and `1e3` as a float; OmegaConf then makes the
    str keys 'True' and '1000.0'. For a str key the text is meant."""
    image = tmp_path / "i.sif"
    image.write_bytes(b"")
    cfg = load_config(
        ["container=apptainer", f"container.image={image}", "container.executable=true",
         "output.dir=1e3", "cluster.memory_limit=0", "dataset.cache_dir=1_000",
         "dataset.n_images=3"]
    )  # fmt: skip
    assert cfg.container.executable == "true"
    assert (cfg.output.dir, cfg.cluster.memory_limit, cfg.dataset.cache_dir) == (
        "1e3",
        "0",
        "1_000",
    )
    assert cfg.dataset.n_images == 3  # numbers stay numbers for the other keys
    assert as_strings(["container.executable=true,false", "output.dir=a,1.50", "x=true"]) == [
        "container.executable='true','false'",
        "output.dir=a,'1.50'",
        "x=true",
    ]
    unchanged = ["+container.executable=no", "~output.dir", "output.dir='1'", "output.dir=int(3)"]
    assert as_strings(unchanged) == unchanged


# ---------------------------------------------------------------- the README's own examples
def _readme_commands() -> list[list[str]]:
    """Every command of README's "Running it" block, split as a POSIX shell splits it."""
    section = README.read_text().split("## Running it", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line, comments=True) for line in block.replace("\\\n", " ").splitlines()]


def test_readme_metadata_regex_example_composes_as_written():
    commands = [c for c in _readme_commands() if any("metadata_regex" in w for w in c)]
    assert commands, "README's metadata_regex example is gone"
    for words in commands:
        cfg = load_config(words[1:])
        regex = re.compile(cfg.dataset.metadata_regex)
        assert cfg.dataset.metadata_regex == r"(?P<plate>\w+)_(?P<well>[A-P]\d{2})_s(?P<site>\d+)"
        assert regex.fullmatch("plate7_B03_s12").groupdict() == {
            "plate": "plate7",
            "well": "B03",
            "site": "12",
        }


def test_every_readme_running_example_composes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = _readme_commands()
    assert len(commands) >= 10
    for words in commands:
        assert words[0] == "hpcseg", words
        args = words[1:]
        if args[:1] == ["keys"]:
            assert describe(*args[1:]), words
        elif "--help" in args:
            assert "Exit codes" in help_text([a for a in args if a != "--help"])
        elif "--cfg" in args:
            i = args.index("--cfg")
            assert "name: " in show_config(args[:i] + args[i + 2 :], args[i + 1])
        elif "-m" in args:
            plan = plan_sweep([a for a in args if a != "-m"])
            assert plan.expected > 1 and not plan.invalid, words
        else:
            load_config(args)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- --cfg, --help
def _hydra_prints(capsys, monkeypatch, argv: list[str]) -> str:
    """What Hydra's own entry point prints for ``hpcseg argv`` (hpcseg's before this work)."""
    GlobalHydra.instance().clear()
    monkeypatch.setattr(sys, "argv", ["hpcseg", *argv])
    capsys.readouterr()
    cli.register_configs()
    cli._hydra_main()
    GlobalHydra.instance().clear()
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["pipeline=blog2021", "dataset.n_images=3", "--cfg", "job"],
        ["--cfg", "all", "cluster=slurm"],
        ["--cfg", "hydra"],
        ["--cfg", "job", "--resolve", "-p", "output"],  # output.dir: hpcseg-output/nuclei
        ["--cfg", "job", "-p", "dataset.n_images"],
        ["--cfg", "job", "dataset=tiff_glob"],  # dataset.path: ??? is shown as it is
    ],
)
def test_cfg_prints_what_hydra_prints(capsys, monkeypatch, argv):
    expected = _hydra_prints(capsys, monkeypatch, argv)
    assert cli.run(argv) == 0
    assert capsys.readouterr().out == expected


def test_help_shows_hpcseg_not_hydra_internals():
    text = help_text([])
    assert "schema/" not in text and "hpcseg/config.py" not in text
    assert "dataset: bbbc039, synthetic, synthetic3d, tiff_glob" in text
    for needed in ("hpcseg keys [PREFIX]", "hpcseg report OUTPUT_DIR", "130 interrupted",
                   "143 terminated", "-m key=a,b",
                   "now: dataset=synthetic mode=images pipeline=nuclei"):  # fmt: skip
        assert needed in text, needed
    assert "now: dataset=tiff_glob" in help_text(["dataset=tiff_glob"])  # path still to give
    with pytest.raises(UserError, match=r"unknown config key 'dataset\.nimages'"):
        help_text(["dataset.nimages=3"])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "key"),
    [
        (["dataset.nimages=3"], "dataset.nimages"),
        (["dataset.n_images=x"], "dataset.n_images"),
        (["pipeline.smooth.sigma=-0.5"], "pipeline.smooth.sigma"),
        (["dataset=tiff_glob"], "dataset.path"),
        (["dataset=tiff_glob", "dataset.path=/no/such/dir/*.tif"], "dataset.path"),
        (["output.compression=banana"], "output.compression=banana"),
        (["cluster.memory_limit=banana"], "cluster.memory_limit=banana"),
        (["cluster.memory_limit=-1GiB"], "cluster.memory_limit=-1GiB"),
        (["cluster.n_workers=100000"], "cluster.n_workers=100000"),
        (["dataset=tiff_glob", "dataset.path="], "dataset.path is empty"),
        (["+dataset.pathh=x"], "dataset.pathh"),
        (["--cfg", "job", "dataset.nimages=3"], "dataset.nimages"),
        (["--cfg", "hydra", "+colour=red"], "colour"),
        (["-p", "pipeline", "--cfg", "all", "pipeline.smooth.sigma=-1"], "pipeline.smooth.sigma"),
        (["--cfg", "jobb"], "--cfg"),
        (["--help", "dataset.nimages=3"], "dataset.nimages"),
        (["--info", "defaults", "dataset.nimages=3"], "dataset.nimages"),
        (["-m", "dataset.nimages=3,4"], "multirun point #0 (dataset.nimages=3)"),
        (["-m", "pipeline.smooth.sigma=-2,-1", "dataset.n_images=1"], "multirun point #0"),
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
    assert list(tmp_path.iterdir()) == []  # not even Hydra's log (or multirun) folder


@pytest.mark.slow
@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("file", "output.dir={file} is a file, not a folder: choose another output.dir"),
        ("file/out", "output.dir={file}/out cannot be created: {file} is a file, not a folder"),
    ],
)
def test_cli_output_dir_that_cannot_be_a_folder(tmp_path, where, message):
    file = tmp_path / "file"
    file.write_text("not a folder")
    proc = run_cli(f"output.dir={tmp_path / where}", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"hpcseg: error: {message.format(file=file)}"
    assert list(tmp_path.iterdir()) == [file] and file.read_text() == "not a folder"


@pytest.mark.slow
def test_cli_help_and_cfg_job(tmp_path):
    helped = run_cli("--help", cwd=tmp_path)
    assert helped.returncode == 0
    assert (
        "pipeline: blog2021, nuclei, nuclei_refined" in helped.stdout
        and "dataset: bbbc039, synthetic, synthetic3d, tiff_glob" in helped.stdout
    )
    assert "schema/" not in helped.stdout and "hpcseg/config" not in helped.stdout
    for needed in ("hpcseg keys [PREFIX]", "hpcseg report OUTPUT_DIR", "130 interrupted",
                   "143 terminated"):  # fmt: skip
        assert needed in helped.stdout, needed
    shown = run_cli("pipeline=blog2021", "--cfg", "job", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "name: blog2021" in shown.stdout and "method: local_gaussian" in shown.stdout
    version = run_cli("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.startswith("hpcseg 0.")
    assert version.stdout.rstrip().endswith(f"(Hydra {HYDRA_VERSION})")
    keys = run_cli("keys", "output", cwd=tmp_path)
    assert keys.returncode == 0, keys.stderr
    assert "output.compression: str = zstd" in keys.stdout.splitlines()
    assert list(tmp_path.iterdir()) == []
