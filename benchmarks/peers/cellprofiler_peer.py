"""CellProfiler 5 (IdentifyPrimaryObjects) as a peer in hpcseg's accuracy benchmarks.

    python benchmarks/peers/cellprofiler_peer.py [--seed 9001] [--images 40] [--workdir DIR]

Runs under hpcseg's venv and calls CellProfiler only as a subprocess, from its own venv
(``${HPCSEG_PEERS:-~/.cache/hpcseg/peers}/cellprofiler``, made by install_cellprofiler.sh), with
the pipeline nuclei.cppipe next to this file. The CLI segments synthetic frames of ``--seed``,
scores them against their masks (pooled over all frames, as bench_accuracy.py does) and prints
`CellProfiler 5 (IdentifyPrimaryObjects) | F1@0.5 | F1@0.7 | F1@0.9 | mean F1 | merges | splits |
images/s (start-up excluded) | images/s (start-up included)`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

HERE = Path(__file__).resolve().parent
PIPELINE = HERE / "nuclei.cppipe"
INSTALL = "bash benchmarks/peers/install_cellprofiler.sh"
DIAMETER_LINE = re.compile(
    r"^(\s*Typical diameter of objects, in pixel units \(Min,Max\):).*$", re.M
)


def venv() -> Path:
    """CellProfiler's virtualenv: $HPCSEG_PEERS/cellprofiler, else ~/.cache/hpcseg/peers/..."""
    peers = os.environ.get("HPCSEG_PEERS") or Path.home() / ".cache" / "hpcseg" / "peers"
    return Path(peers).expanduser() / "cellprofiler"


def available() -> str | None:
    """None when CellProfiler's venv imports the modules nuclei.cppipe uses, else why not."""
    exe = venv() / "bin" / "cellprofiler"
    if not exe.exists():
        return f"CellProfiler not installed in {venv()}: run {INSTALL}"
    check = "import cellprofiler.modules.identifyprimaryobjects, cellprofiler.modules.saveimages"
    try:
        # -I keeps the current directory off sys.path: this folder must not shadow the
        # cellprofiler package
        proc = subprocess.run(
            [str(venv() / "bin" / "python"), "-I", "-c", check],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"CellProfiler in {venv()} does not start ({exc}): rerun {INSTALL}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"CellProfiler in {venv()} does not import ({last}): rerun {INSTALL}"
    return None


def _run(pipeline: Path, files: list[Path], out: Path, workdir: Path, log: Path) -> float:
    """One headless CellProfiler command over ``files``; its wall-clock seconds."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    file_list = out.with_suffix(".txt")
    file_list.write_text("".join(f"{f}\n" for f in files))
    tmp = workdir / "tmp"
    tmp.mkdir(exist_ok=True)
    cmd = [str(venv() / "bin" / "cellprofiler"), "-c", "-r", "-p", str(pipeline),
           "--file-list", str(file_list), "-o", str(out), "-t", str(tmp),
           "-e", "imageio_reader"]  # fmt: skip
    with log.open("w") as fp:
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=fp, stderr=subprocess.STDOUT, cwd=workdir)
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"CellProfiler failed (exit {proc.returncode}); see {log}")
    return seconds


def segment(
    images: list[np.ndarray], workdir: Path, diameter: tuple[int, int] = (8, 40)
) -> tuple[list[np.ndarray], float, float]:
    """Segment 2-D uint16 ``images`` with nuclei.cppipe; ``(labels, seconds, startup_seconds)``.

    All frames go through ONE CellProfiler command; ``seconds`` is its wall-clock time, start-up
    included (interpreter, imports, pipeline load, exit; with only imageio_reader enabled no JVM
    starts). ``startup_seconds`` comes from a second command, run after it on the first frame
    alone: with t_n the n-frame command and t_1 the 1-frame one, a frame costs
    (t_n - t_1) / (n - 1) and the start-up is t_1 minus one frame's cost (for n = 1 there is no
    second command and the whole command counts as start-up). ``diameter`` is
    IdentifyPrimaryObjects' typical diameter (min, max) in pixels. Labels come back as uint16
    arrays, in the order of ``images``; CellProfiler's logs stay in ``workdir``.
    """
    workdir = Path(workdir)
    frames = workdir / "frames"
    frames.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        if image.ndim != 2:
            raise ValueError(f"image {i} has shape {image.shape}; CellProfiler gets 2-D frames")
        path = frames / f"frame-{i:05d}.tif"
        tifffile.imwrite(path, np.asarray(image, np.uint16))
        paths.append(path)
    text, count = DIAMETER_LINE.subn(rf"\g<1>{diameter[0]},{diameter[1]}", PIPELINE.read_text())
    if count != 1:
        raise RuntimeError(f"{PIPELINE} has {count} typical-diameter settings, expected one")
    pipeline = workdir / "nuclei.cppipe"
    pipeline.write_text(text)

    seconds = _run(pipeline, paths, workdir / "out", workdir, workdir / "cellprofiler.log")
    labels = []
    for path in paths:
        out = workdir / "out" / f"{path.stem}_labels.tiff"
        if not out.exists():
            raise RuntimeError(
                f"CellProfiler wrote no {out.name}; see {workdir / 'cellprofiler.log'}"
            )
        labels.append(tifffile.imread(out).astype(np.uint16))
    if len(paths) > 1:
        one = _run(pipeline, paths[:1], workdir / "out-1", workdir, workdir / "cellprofiler-1.log")
        startup = max(0.0, one - (seconds - one) / (len(paths) - 1))
    else:
        startup = seconds
    return labels, seconds, startup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=9001)
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--workdir", type=Path, help="kept afterwards (default: a temporary folder)")
    args = ap.parse_args()
    reason = available()
    if reason:
        sys.exit(reason)

    from hpcseg.data.synthetic import synthetic_frame
    from hpcseg.results.evaluate import pooled, score

    frames = [synthetic_frame(args.seed, i) for i in range(args.images)]
    with tempfile.TemporaryDirectory(prefix="hpcseg-cellprofiler-") as tmp:
        workdir = args.workdir or Path(tmp)
        labels, seconds, startup = segment([image for image, _ in frames], workdir)
    a = pooled([score(truth, pred) for (_, truth), pred in zip(frames, labels, strict=True)])
    n = args.images
    print(f"seed {args.seed}, {n} images: CellProfiler command {seconds:.1f} s, "
          f"start-up {startup:.1f} s, {a['n_pred']} objects ({a['n_true']} true)")  # fmt: skip
    print("peer | F1@0.5 | F1@0.7 | F1@0.9 | mean F1 | merges | splits | "
          "images/s (start-up excluded) | images/s (start-up included)")  # fmt: skip
    print("--- | --- | --- | --- | --- | --- | --- | --- | ---")
    print(f"CellProfiler 5 (IdentifyPrimaryObjects) | {a['f1_50']:.3f} | {a['f1_70']:.3f} | "
          f"{a['f1_90']:.3f} | {a['f1_avg']:.3f} | {a['merges']} | {a['splits']} | "
          f"{n / max(seconds - startup, 1e-9):.1f} | {n / seconds:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
