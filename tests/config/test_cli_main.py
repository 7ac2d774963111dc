"""`hpcseg` flags and subcommands through the console entry point, in this process (fast; the
same cases as subprocesses are in test_compose.py and tests/test_cli.py, marked slow)."""

from __future__ import annotations

import errno
import sys

import pytest
from hydra.core.global_hydra import GlobalHydra

from hpcseg import __version__, cli
from hpcseg.config import compose
from hpcseg.errors import UserError
from hpcseg.run.signals import IOFailure


def _main(monkeypatch, capsys, *argv: str) -> tuple[int, str, list[str]]:
    """``hpcseg argv`` in this process: exit code, stdout, the non-empty stderr lines."""
    monkeypatch.setattr(sys, "argv", ["hpcseg", *argv])
    with pytest.raises(SystemExit) as info:
        cli.main()
    GlobalHydra.instance().clear()
    out, err = capsys.readouterr()
    return info.value.code, out, [line for line in err.splitlines() if line.strip()]


def test_version_is_hpcseg_then_hydra(monkeypatch, capsys):
    for flag in ("--version", "--vers"):  # argparse's abbreviations, as in Hydra
        code, out, err = _main(monkeypatch, capsys, flag)
        assert (code, err) == (0, [])
        assert out == f"hpcseg {__version__} (Hydra {cli.HYDRA_VERSION})\n"


def test_keys_subcommand(monkeypatch, capsys):
    code, out, err = _main(monkeypatch, capsys, "keys", "pipeline.split")
    assert (code, err) == (0, [])
    assert "pipeline.split.min_distance: int | null = null, in [1, 500]" in out.splitlines()
    code, out, err = _main(monkeypatch, capsys, "keys", "pipline")
    assert code == 2 and out == "" and len(err) == 1
    assert err[0].startswith("hpcseg: error: no config key starts with 'pipline': keys start")
    code, out, err = _main(monkeypatch, capsys, "keys", "a", "b")
    assert code == 2 and len(err) == 1
    code, out, err = _main(monkeypatch, capsys, "keys")
    assert code == 0 and "output.compression: str = zstd" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cfg", "job", "dataset.nimages=3"], "unknown config key 'dataset.nimages'"),
        (["--cfg", "jobb"], "argument --cfg/-c: invalid choice: 'jobb'"),
        (["--cfg", "job", "-p", "nope"], "--package nope: no such package in the config"),
        (["--cfg", "job", "+dataset.pathh=x"], "unknown config key 'dataset.pathh'"),
        (["--cfg", "job", "-m"], "--cfg shows one config without running"),
        (["--resolve"], "--resolve and -p/--package go with --cfg"),
        (["-m", "dataset.nimages=3,4"], "multirun point #0 (dataset.nimages=3): unknown config"),
        (["-m", "pipeline.smooth.sigma=-2,-1"], "multirun point #0 (pipeline.smooth.sigma=-2):"),
        (["-m", "pipeline.smooth.sigma=1,2", "hydra.sweep.subdir=same"], "would both write"),
        (["output.compression=banana"], "output.compression=banana is not a Parquet codec"),
        (["container.executable=x"], "unknown config key 'container.executable'"),
    ],
)
def test_mistakes_are_one_line_exit_2_and_write_nothing(
    monkeypatch, capsys, tmp_path, argv, message
):
    monkeypatch.chdir(tmp_path)
    code, out, err = _main(monkeypatch, capsys, *argv)
    assert code == 2 and out == ""
    assert len(err) == 1 and err[0].startswith("hpcseg: error: ") and message in err[0], err
    assert list(tmp_path.iterdir()) == []  # no multirun/ or logs/ folder either


def test_cfg_with_a_missing_value_still_shows_it(monkeypatch, capsys):
    code, out, err = _main(monkeypatch, capsys, "dataset=tiff_glob", "--cfg", "job")
    assert (code, err) == (0, [])
    assert "  path: ???" in out.splitlines()


def test_dry_run_flag_lists_and_writes_nothing(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    args = ("dataset.n_images=2", "dataset.height=64", "dataset.width=64", "output.dir=out")
    code, out, err = _main(monkeypatch, capsys, "--dry-run", *args)
    assert (code, err) == (0, []), err
    assert "would run" in out
    assert not (tmp_path / "out" / "logs").exists()  # no Hydra job: no log folder
    assert _main(monkeypatch, capsys, "runner.dry_run=true", *args)[1] == out


@pytest.mark.parametrize(
    ("error", "code", "text"),
    [
        (IOFailure(OSError(errno.ENOSPC, "No space left on device", "/o/x")), 1, "cannot write"),
        (OSError(errno.ENOSPC, "No space left on device"), 1, "No space left on device"),
        (UserError("bad key"), 2, "bad key"),
    ],
)
def test_io_failures_are_one_line_exit_1(monkeypatch, capsys, error, code, text):
    def fail(argv):
        raise error

    monkeypatch.setattr(cli, "run", fail)
    got, _, err = _main(monkeypatch, capsys)
    assert got == code and len(err) == 1 and text in err[0] and err[0].startswith("hpcseg: error")


def test_hydra_folder_that_cannot_be_made_is_a_config_error(monkeypatch, tmp_path):
    """Where permissions do not tell (root, /proc): Hydra's own mkdir fails; a path's error is
    the configuration's (exit 2), a full disk is not (it reaches main as an OSError)."""
    monkeypatch.chdir(tmp_path)
    raised = []

    def run_job(**kwargs):
        raise raised[-1]

    monkeypatch.setattr(compose, "run_job", run_job)
    raised.append(OSError(errno.ENOENT, "No such file or directory"))
    with pytest.raises(UserError, match=r"cannot create Hydra's folder hydra\.run\.dir=.*/logs/"):
        compose.run_once(["output.dir=out"], lambda cfg: None, lambda cfg: None)
    raised.append(OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError, match="No space left"):
        compose.run_once(["output.dir=out"], lambda cfg: None, lambda cfg: None)
    assert list(tmp_path.iterdir()) == []
