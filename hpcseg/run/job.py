"""One hpcseg job: dataset → resume check → cluster → batches → run.json → summary.

:func:`preflight` holds the checks that touch nothing (run once, before Hydra's job starts);
:func:`run_job` runs the job and returns a :class:`JobResult` that a sweeper can read.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hpcseg.cluster import cluster_kind, container_kind, start_cluster
from hpcseg.config.schemas import Config, as_plain
from hpcseg.data import sources
from hpcseg.data.records import ImageRecord
from hpcseg.pipeline.sampling import Sampling
from hpcseg.results import provenance
from hpcseg.results.report import write_report
from hpcseg.results.store import Store
from hpcseg.run.batches import RunTotals, run_batches
from hpcseg.run.progress import Progress
from hpcseg.run.summary import print_summary, summarise
from hpcseg.run.worker import BatchJob

log = logging.getLogger("hpcseg")


@dataclass(frozen=True)
class JobResult:
    """What one invocation produced: its exit code (0 all ok, 1 some images failed, 2 a
    configuration error), the summary written to run.json, and the objective a sweeper
    maximises (pooled mean F1 over IoU 0.5-0.9; None without ground truth)."""

    exit_code: int
    summary: dict | None = None
    objective: float | None = None
    output_dir: str | None = None


def preflight(cfg: Config) -> None:
    """The checks of a validated config that touch nothing: the dataset's globs and folders,
    the container runtime and image."""
    sources.check(cfg.dataset)
    container_kind(cfg.container).check(cfg.container)


def run_job(cfg: Config) -> JobResult:
    """Run the whole job (``cfg`` validated and preflighted)."""
    kind = cluster_kind(cfg.cluster)
    if kind.serves(cfg.cluster):  # slurm_runner: scheduler and worker ranks only serve
        kind.serve(cfg.cluster, cfg.output.dir)
        return JobResult(0)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    resolved = as_plain(cfg)
    fingerprint = provenance.run_fingerprint(resolved)
    versions = provenance.versions()

    dataset = sources.resolve(cfg.dataset)
    store = Store(cfg.output.dir)
    done = store.prepare(fingerprint, cfg.output.resume, cfg.output.overwrite)
    launcher, image = container_kind(cfg.container).launcher(cfg, store.root)
    todo = [r for r in dataset.records if r.image_id not in done]
    skipped = len(dataset.records) - len(todo)
    log.info(
        "%d images in dataset '%s'; %d to do, %d already done in %s",
        len(dataset.records),
        cfg.dataset.name,
        len(todo),
        skipped,
        store.root,
    )
    job = BatchJob(
        pipeline=cfg.pipeline,
        max_pixels=cfg.dataset.max_pixels,
        out_dir=str(store.root),
        fingerprint=fingerprint,
        metadata_columns=tuple(dataset.metadata_columns),
        file_metadata=provenance.file_metadata(resolved, versions, fingerprint, image),
        compression=cfg.output.compression,
        save_labels=cfg.output.save_labels,
        ndim=cfg.dataset.ndim,
        sampling=Sampling(cfg.dataset.pixel_size or None, cfg.dataset.z_step or None),
    )
    totals, compute_seconds = _compute(cfg, store.root, launcher, todo, job)
    wall = time.perf_counter() - t0

    ids = {r.image_id for r in dataset.records}
    summary = summarise(store, ids, skipped, totals, wall, compute_seconds)
    store.write_run_json(
        {
            "hpcseg_version": versions["hpcseg"],
            "fingerprint": fingerprint,
            "config": resolved,
            "versions": versions,
            "host": provenance.host(),
            "container": image,
            "started": started.isoformat(),
            "finished": datetime.now(UTC).isoformat(),
            "summary": summary,
            "failures_this_run": [{"image_id": i, "error": e} for i, e in totals.failures[:1000]],
        }
    )
    print_summary(summary, store)
    if cfg.output.report:
        paths = write_report(store.root)
        print(f"hpcseg: report: {len(paths)} pictures in {store.root / 'report'}", flush=True)
    accuracy = summary["accuracy"]
    return JobResult(
        exit_code=1 if summary["images_failed"] else 0,
        summary=summary,
        objective=accuracy.get("f1_avg") if accuracy else None,
        output_dir=str(store.root),
    )


def _compute(
    cfg: Config, root: Path, launcher: list[str] | None, todo: list[ImageRecord], job: BatchJob
) -> tuple[RunTotals, float]:
    """Process ``todo`` on the configured cluster; the totals and the seconds it took once
    the cluster was up."""
    if not todo:
        return RunTotals(), 0.0
    with start_cluster(cfg.cluster, root, launcher) as client:
        t_compute = time.perf_counter()
        progress = Progress(len(todo), cfg.runner.progress.value, cfg.runner.log_interval)
        try:
            totals = run_batches(
                client, todo, job, cfg.runner.batch_size, cfg.runner.retries, progress
            )
        finally:
            progress.close()
    return totals, time.perf_counter() - t_compute
