"""One hpcseg job: dataset → resume check → cluster → batches → run.json → summary.

:func:`preflight` holds the checks that touch nothing (run once, before Hydra's job starts);
:func:`run_job` runs the job and returns a :class:`JobResult` that a sweeper can read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dask

from hpcseg.cluster import cluster_kind, container_kind, start_cluster
from hpcseg.cluster.core import DASK_SETTINGS, quiet_workers_for_shutdown, uses_gpus
from hpcseg.config.schemas import ArrayBackend, Config, as_plain
from hpcseg.data import sources
from hpcseg.data.records import ImageRecord
from hpcseg.pipeline.sampling import Sampling
from hpcseg.results import provenance
from hpcseg.results.lock import describe as describe_holder
from hpcseg.results.lock import output_lock
from hpcseg.results.report import ReportError, write_report
from hpcseg.results.store import Store
from hpcseg.run.batches import PROGRESS_TOPIC, RunTotals, run_batches
from hpcseg.run.plan import WorkPlan, describe, plan_work
from hpcseg.run.progress import Progress
from hpcseg.run.signals import IOFailure, Stop, sigint_ignored, stop_on_signals
from hpcseg.run.summary import print_summary, summarise
from hpcseg.run.tiled import dask_mapper
from hpcseg.run.tiled_job import process_tiled, split_by_mode
from hpcseg.run.watchdog import timeout_folder
from hpcseg.run.worker import BatchJob

log = logging.getLogger("hpcseg")


@dataclass(frozen=True)
class JobResult:
    """What one invocation produced: its exit code (0 all ok, 1 some images failed, 2 a
    configuration error), the summary written to run.json, and the objective a sweeper
    maximises (``sweep.objective`` of the pooled scores; None without ground truth)."""

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
    if cfg.runner.dry_run:  # reached only by callers that skip the command line's dry run
        return JobResult(dry_run(cfg))
    stop = Stop()
    with stop_on_signals(stop, cfg.runner.stop_grace):
        try:
            return _run(cfg, stop)
        except OSError as exc:  # disk full, permissions, a vanished mount: nothing half-done
            raise IOFailure(exc) from None


def dry_run(cfg: Config) -> int:
    """Print what the job would do in its folder; change nothing."""
    dataset = sources.resolve(cfg.dataset)
    store = Store(cfg.output.dir)
    fingerprint = provenance.run_fingerprint(as_plain(cfg))
    plan = plan_work(cfg, store, dataset.records, fingerprint, dry_run=True)
    for line in describe(plan, cfg):
        print(line, flush=True)
    return 0


def _run(cfg: Config, stop: Stop) -> JobResult:
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    resolved = as_plain(cfg)
    fingerprint = provenance.run_fingerprint(resolved)
    dataset = sources.resolve(cfg.dataset)
    store = Store(cfg.output.dir)
    with output_lock(store.root, cfg.output.wait_for_lock, log) as previous:
        if previous:
            log.warning(
                "the last run writing %s (%s) ended without releasing it (killed?); its "
                "leftovers are checked now",
                store.root,
                describe_holder(previous),
            )
        plan = plan_work(cfg, store, dataset.records, fingerprint)
        if plan.forget:
            store.forget(plan.forget, plan.prepared.stored)
        shutil.rmtree(timeout_folder(store.root), ignore_errors=True)
        launcher, image = container_kind(cfg.container).launcher(cfg, store.root)
        log.info(
            "%d images in dataset '%s'; %d to do, %d already done in %s%s",
            len(dataset.records),
            cfg.dataset.name,
            len(plan.todo),
            len(plan.done) + len(plan.failed_kept),
            store.root,
            _redo_note(plan),
        )
        versions = provenance.versions()
        job = _batch_job(cfg, store, fingerprint, dataset.metadata_columns, resolved, versions,
                         image)  # fmt: skip
        totals, compute_seconds = _compute(cfg, store.root, launcher, plan.todo, job, stop)
        ids = {r.image_id for r in dataset.records}
        skipped = len(plan.done) + len(plan.failed_kept)
        summary = summarise(store, ids, skipped, totals, time.perf_counter() - t0,
                            compute_seconds, cfg.pipeline.smooth.contrast_to_noise)  # fmt: skip
        record = {
            "hpcseg_version": versions["hpcseg"],
            "fingerprint": fingerprint,
            "config": resolved,
            "versions": versions,
            "host": provenance.host(),
            "container": image,
            "started": started.isoformat(),
            "finished": datetime.now(UTC).isoformat(),
            "summary": summary,
            "this_run": _this_run(cfg, plan, totals, skipped, stop),
            "failures_this_run": [{"image_id": i, "error": e} for i, e in totals.failures[:1000]],
        }
        try:
            kept, unwritten = store.write_run_record(record, started), None
        except OSError as exc:  # reported below, after the summary
            kept, unwritten = None, exc
    print_summary(summary, store)
    return _finish(cfg, store, summary, totals, stop, kept, unwritten)


def worker_pipeline(cfg: Config):
    """The pipeline config the workers get: ``backend=auto`` stays auto (CuPy where the worker
    sees a GPU) only for GPU clusters; CPU clusters' workers run NumPy, so that the worker
    processes of ``cluster=local`` on a machine that has a GPU do not all crowd onto it."""
    if str(cfg.pipeline.backend) == "auto" and not uses_gpus(cfg.cluster):
        return dataclasses.replace(cfg.pipeline, backend=ArrayBackend.numpy)
    return cfg.pipeline


def _batch_job(cfg: Config, store: Store, fingerprint: str, metadata_columns, resolved: dict,
               versions: dict, image: dict | None) -> BatchJob:  # fmt: skip
    """What every worker task carries besides its images."""
    return BatchJob(
        pipeline=worker_pipeline(cfg),
        max_pixels=cfg.dataset.max_pixels,
        out_dir=str(store.root),
        fingerprint=fingerprint,
        metadata_columns=tuple(metadata_columns),
        file_metadata=provenance.file_metadata(resolved, versions, fingerprint, image),
        compression=cfg.output.compression,
        save_labels=cfg.output.save_labels,
        ndim=cfg.dataset.ndim,
        sampling=Sampling(cfg.dataset.pixel_size or None, cfg.dataset.z_step or None),
        channel=cfg.dataset.channel,
        identity=str(cfg.output.identity),
        image_timeout=cfg.runner.image_timeout,
        progress_topic=PROGRESS_TOPIC,
    )


def _this_run(cfg: Config, plan: WorkPlan, totals: RunTotals, skipped: int, stop: Stop) -> dict:
    """What this invocation did (the run record's ``this_run``)."""
    return {
        "processed": totals.n_ok + totals.n_failed,
        "failed": totals.n_failed,
        "not_run": totals.not_run,
        "skipped_already_done": skipped,
        "redone_changed": [{"image_id": i, "why": w} for i, w in plan.changed[:1000]],
        "retried_failed": len(plan.retry),
        "relabelled": len(plan.relabel),
        "labels_written": totals.n_ok if cfg.output.save_labels else 0,
        "quarantined": plan.prepared.quarantined,
        "removed_uncommitted": len(plan.prepared.removed),
        "stopped_by": stop.signal_name or None,
    }


def _finish(cfg: Config, store: Store, summary: dict, totals: RunTotals, stop: Stop,
            kept: Path | None, unwritten: OSError | None) -> JobResult:  # fmt: skip
    """The end of a run: an I/O failure, a stop by a signal, or the result (and report)."""
    if totals.unsaved:
        n = len(totals.unsaved)
        raise IOFailure(f"{n} batch(es) could not be saved ({totals.unsaved[0]})")
    if unwritten is not None:
        raise IOFailure(unwritten)
    log.info("run record: %s", kept)
    if stop.signal_name:
        print(
            f"hpcseg: stopped by {stop.signal_name}: {totals.not_run} image(s) not run; "
            "run the same command again to resume",
            file=sys.stderr,
            flush=True,
        )
        return JobResult(exit_code=stop.exit_code(), summary=summary, output_dir=str(store.root))
    if cfg.output.report:
        try:
            paths = write_report(store.root)
            print(f"hpcseg: report: {len(paths)} pictures in {store.root / 'report'}", flush=True)
        except ReportError as exc:  # the results stand; only their pictures are missing
            print(f"hpcseg: report not written: {exc}", file=sys.stderr, flush=True)
    accuracy = summary["accuracy"]
    return JobResult(
        exit_code=1 if summary["images_failed"] else 0,
        summary=summary,
        objective=accuracy.get(cfg.sweep.objective.value) if accuracy else None,
        output_dir=str(store.root),
    )


def _redo_note(plan: WorkPlan) -> str:
    parts = []
    if plan.changed:
        parts.append(f"{len(plan.changed)} changed inputs redone")
    if plan.retry:
        parts.append(f"{len(plan.retry)} failed retried")
    if plan.relabel:
        parts.append(f"{len(plan.relabel)} redone for their label images")
    if plan.prepared.quarantined:
        parts.append(f"{len(plan.prepared.quarantined)} damaged batch(es) quarantined")
    return f" ({'; '.join(parts)})" if parts else ""


def _compute(
    cfg: Config,
    root: Path,
    launcher: list[str] | None,
    todo: list[ImageRecord],
    job: BatchJob,
    stop: Stop,
) -> tuple[RunTotals, float]:
    """Process ``todo`` on the configured cluster; the totals and the seconds it took once
    the cluster was up."""
    if not todo or stop.requested.is_set():
        return RunTotals(not_run=len(todo)), 0.0
    with dask.config.set(DASK_SETTINGS), contextlib.ExitStack() as cluster:
        with sigint_ignored():  # the workers started now leave Ctrl-C to the driver
            client = cluster.enter_context(start_cluster(cfg.cluster, root, launcher))
        t_compute = time.perf_counter()
        progress = Progress(len(todo), cfg.runner.progress.value, cfg.runner.log_interval)
        whole, tiled = split_by_mode(cfg, todo)
        try:
            totals = run_batches(
                client, whole, job, cfg.runner.batch_size, cfg.runner.retries, progress, stop
            )
            array = getattr(cfg.dataset, "array", None)
            for record in tiled:
                if stop.requested.is_set():
                    totals.not_run += 1
                    continue
                done = process_tiled(dask_mapper(client, stop), record, job, cfg.mode, array, stop)
                if done is None:  # stopped by a signal
                    totals.not_run += 1
                    continue
                totals.add(done)
                progress.batch_done(done.key, 1, done.n_failed, done.n_objects)
        finally:
            progress.close()
            quiet_workers_for_shutdown(client)
    return totals, time.perf_counter() - t_compute
