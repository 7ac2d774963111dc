"""Plan batches, submit them to the cluster, follow progress, isolate faults, collect summaries.

This module knows nothing of pixels: it moves image records to
:func:`hpcseg.run.worker.process_batch` and counts what comes back.

Fault isolation: Dask retries nothing itself (``allowed-failures`` 0, set by the job), hpcseg
does. A batch whose worker dies (memory limit, crash, image time cap) is split and its images
run one by one; an image whose lone worker dies again is retried ``runner.retries`` more times
and then gets a ``failed`` row ("worker died ..."), so one image that kills workers costs only
itself. An image past ``runner.image_timeout`` fails at once.

Stopping: :class:`Stop` is set by the job's signal handlers; then no new batch starts, the
batches in flight may finish until the grace time ends, and the rest is left for the next run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from distributed import Client, Future, as_completed
from distributed.scheduler import KilledWorker

from hpcseg.data.records import ImageRecord
from hpcseg.results.parts import write_batch
from hpcseg.results.tables import images_schema, images_table
from hpcseg.run.progress import Progress
from hpcseg.run.signals import Stop
from hpcseg.run.watchdog import timed_out
from hpcseg.run.worker import BatchJob, BatchSummary, batch_key, process_batch

log = logging.getLogger(__name__)
PROGRESS_TOPIC = "hpcseg-progress"


@dataclass
class RunTotals:
    n_ok: int = 0
    n_failed: int = 0
    n_objects: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    not_run: int = 0  # left for the next run (stopped by a signal, or the batch not saved)
    unsaved: list[str] = field(default_factory=list)  # why batches could not be saved

    def add(self, summary: BatchSummary) -> None:
        """Count a finished batch's images."""
        self.n_ok += summary.n_ok
        self.n_failed += summary.n_failed
        self.n_objects += summary.n_objects
        self.failures += summary.failures


@dataclass
class _Task:
    records: list[ImageRecord]
    attempt: int = 0  # how often its worker died with this image alone


def plan_batches(records: Sequence[ImageRecord], batch_size: int) -> list[list[ImageRecord]]:
    """Consecutive batches of at most ``batch_size`` records."""
    return [list(records[i : i + batch_size]) for i in range(0, len(records), batch_size)]


def run_batches(
    client: Client,
    records: Sequence[ImageRecord],
    job: BatchJob,
    batch_size: int,
    retries: int,
    progress: Progress,
    stop: Stop | None = None,
) -> RunTotals:
    """Process ``records`` on the cluster; see the module docstring for faults and stopping."""
    stop = stop or Stop()
    totals = RunTotals()
    tasks: dict[str, _Task] = {}
    pending = as_completed()

    def submit(task: _Task) -> None:
        if stop.requested.is_set():  # stopping: splits and retries wait for the next run
            totals.not_run += len(task.records)
            return
        future = client.submit(process_batch, task.records, job=job, pure=False)
        tasks[future.key] = task
        pending.add(future)

    client.subscribe_topic(PROGRESS_TOPIC, lambda event: _on_event(progress, event))
    try:
        for batch in plan_batches(records, batch_size):
            submit(_Task(batch))
        stopping = False
        while not pending.is_empty():
            if stop.requested.is_set() and not stopping:
                stopping = True
                _cancel_not_started(client, pending, stop)
            if stop.expired():
                for future in list(pending.futures):
                    future.cancel()
                totals.not_run += sum(len(t.records) for t in tasks.values())
                break
            future = _next_ready(pending, timeout=0.5)
            if future is None:
                continue
            task = tasks.pop(future.key)
            if future.cancelled():
                totals.not_run += len(task.records)
                continue
            _collect(future, task, job, retries, totals, progress, submit)
    finally:
        client.unsubscribe_topic(PROGRESS_TOPIC)
    return totals


def _on_event(progress: Progress, event) -> None:
    """A worker's per-image event: (time, {"batch", "ok", "objects"})."""
    _, message = event
    if isinstance(message, dict) and {"batch", "ok", "objects"} <= set(message):
        progress.image_done(message["batch"], message["ok"], message["objects"])


def _next_ready(pending: as_completed, timeout: float) -> Future | None:
    """The next finished future within ``timeout`` seconds (so a stop is noticed), or None."""
    deadline = time.monotonic() + timeout
    while not pending.has_ready():
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)
    return next(pending)


def _cancel_not_started(client: Client, pending: as_completed, stop: Stop) -> None:
    """After a stop request: cancel the batches no worker has started; nothing of a cancelled
    batch is committed."""
    running = {key for keys in client.processing().values() for key in keys}
    futures = list(pending.futures)  # a cancelled future leaves pending.futures
    waiting = [f for f in futures if f.key not in running]
    in_flight = len(futures) - len(waiting)
    for future in waiting:
        future.cancel()
    grace = max(stop.deadline - time.monotonic(), 0.0)
    log.warning(
        "%s: stopping; %d batch(es) in flight may finish within %.0f s (send it again to stop "
        "at once), %d not started",
        stop.signal_name,
        in_flight,
        grace,
        len(waiting),
    )


def _collect(
    future: Future,
    task: _Task,
    job: BatchJob,
    retries: int,
    totals: RunTotals,
    progress: Progress,
    submit,
) -> None:
    """Count a finished batch, or split / retry / fail it when its worker died."""
    ids = [r.image_id for r in task.records]
    try:
        summary: BatchSummary = future.result()
    except KilledWorker:
        _worker_died(task, job, retries, totals, progress, submit)
        return
    except Exception as exc:  # the batch itself failed: no rows were written
        summary = BatchSummary(batch_key(task.records), error=f"{type(exc).__name__}: {exc}")
    if summary.error is not None:
        log.error(
            "batch not saved: %s (images %s ...); they run again on the next run",
            summary.error,
            ", ".join(ids[:3]),
        )
        totals.not_run += len(ids)
        totals.unsaved.append(summary.error)
        progress.batch_done(summary.key, len(ids), n_failed=len(ids))
        return
    _count(totals, progress, summary, summary.key)


def _worker_died(task: _Task, job: BatchJob, retries: int, totals: RunTotals, progress, submit):
    """Split a batch whose worker died; retry or fail an image that was alone on it."""
    if len(task.records) > 1:
        log.warning(
            "a worker died processing images %s ...; running its %d images one by one",
            ", ".join(r.image_id for r in task.records[:3]),
            len(task.records),
        )
        for record in task.records:
            submit(_Task([record]))
        return
    record = task.records[0]
    cap = timed_out(job.out_dir, record.image_id)
    if cap is None and task.attempt < retries:
        submit(_Task([record], task.attempt + 1))
        return
    if cap is not None:
        reason = f"took longer than runner.image_timeout={cap:g} s (its worker was restarted)"
    else:
        reason = (
            f"its worker died {task.attempt + 1} time(s) while processing it alone (over the "
            "memory limit? raise cluster.memory_limit, or lower dataset.max_pixels to refuse "
            "such images up front)"
        )
    _record_failures(job, task.records, reason)
    failed = BatchSummary(batch_key(task.records), n_failed=1, failures=[(record.image_id, reason)])
    _count(totals, progress, failed, failed.key)


def _count(totals: RunTotals, progress: Progress, summary: BatchSummary, key: str) -> None:
    totals.add(summary)
    for image_id, error in summary.failures:
        log.warning("image %s failed: %s", image_id, error)
    n = summary.n_ok + summary.n_failed
    progress.batch_done(key, n, summary.n_failed, summary.n_objects)


def _record_failures(job: BatchJob, records: list[ImageRecord], reason: str) -> None:
    """The rows of images that could not be processed on a worker, written by the driver."""
    rows = [job.image_row(r, status="failed", error=reason, n_objects=0) for r in records]
    images = images_table(rows, images_schema(job.metadata_columns))
    objects = job.objects_schema().empty_table()
    write_batch(
        job.out_dir, batch_key(records), objects, images, job.file_metadata, job.compression
    )
