"""Plan batches, submit them to the cluster, follow progress, collect summaries.

This module knows nothing of pixels: it moves image records to
:func:`hpcseg.run.worker.process_batch` and counts what comes back.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from distributed import Client, as_completed

from hpcseg.data.records import ImageRecord
from hpcseg.run.progress import Progress
from hpcseg.run.worker import BatchJob, BatchSummary, process_batch

log = logging.getLogger(__name__)


@dataclass
class RunTotals:
    n_ok: int = 0
    n_failed: int = 0
    n_objects: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)


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
) -> RunTotals:
    """Process ``records`` on the cluster; a batch that keeps failing marks its images failed."""
    batches = plan_batches(records, batch_size)
    futures = client.map(process_batch, batches, job=job, retries=retries, pure=False)
    size_of = {f.key: len(b) for f, b in zip(futures, batches, strict=True)}
    ids_of = {f.key: [r.image_id for r in b] for f, b in zip(futures, batches, strict=True)}
    totals = RunTotals()
    for future in as_completed(futures):
        try:
            summary: BatchSummary = future.result()
        except Exception as exc:  # the batch itself failed (e.g. disk full, worker killed)
            reason = f"batch failed: {type(exc).__name__}: {exc}"
            log.error(
                "%s (images %s ...); they are retried on the next run",
                reason,
                ", ".join(ids_of[future.key][:3]),
            )
            n = size_of[future.key]
            totals.n_failed += n
            totals.failures += [(i, reason) for i in ids_of[future.key]]
            progress.update(n, n_failed=n)
            continue
        totals.n_ok += summary.n_ok
        totals.n_failed += summary.n_failed
        totals.n_objects += summary.n_objects
        totals.failures += summary.failures
        for image_id, error in summary.failures:
            log.warning("image %s failed: %s", image_id, error)
        progress.update(summary.n_ok + summary.n_failed, summary.n_failed, summary.n_objects)
    return totals
