"""Progress reporting, the one place it happens: a live bar on a terminal, log lines otherwise."""

from __future__ import annotations

import logging
import sys
import threading
import time

from tqdm import tqdm

log = logging.getLogger("hpcseg.progress")


class Progress:
    """Counts images done; ``mode`` is auto | bar | log | none."""

    def __init__(self, total: int, mode: str = "auto", interval: float = 10.0):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.mode, self.total, self.interval = mode, total, interval
        self.done = self.failed = self.objects = 0
        self._start = self._last = time.monotonic()
        self._lock = threading.Lock()  # events arrive on the client's thread
        self._early: dict[str, list[int]] = {}  # batch key -> [images, failed, objects] so far
        self._finished: set[str] = set()
        self._bar = (
            tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True)
            if mode == "bar"
            else None
        )

    def image_done(self, batch: str, ok: bool, n_objects: int) -> None:
        """One image of a batch in flight is done (a worker's event): counted at once, so
        progress moves per image, not per batch."""
        with self._lock:
            if batch in self._finished:
                return
            seen = self._early.setdefault(batch, [0, 0, 0])
            seen[0] += 1
            seen[1] += 0 if ok else 1
            seen[2] += n_objects
            self._count(1, 0 if ok else 1, n_objects)

    def batch_done(self, batch: str, n_images: int, n_failed: int = 0, n_objects: int = 0) -> None:
        """A whole batch is done: what its events did not count yet is counted now."""
        with self._lock:
            self._finished.add(batch)
            seen = self._early.pop(batch, [0, 0, 0])
            self._count(n_images - seen[0], n_failed - seen[1], n_objects - seen[2])

    def update(self, n_images: int, n_failed: int = 0, n_objects: int = 0) -> None:
        with self._lock:
            self._count(n_images, n_failed, n_objects)

    def _count(self, n_images: int, n_failed: int = 0, n_objects: int = 0) -> None:
        self.done += n_images
        self.failed += n_failed
        self.objects += n_objects
        if self._bar is not None:
            self._bar.update(n_images)
            self._bar.set_postfix(failed=self.failed, objects=self.objects, refresh=False)
        elif self.mode == "log" and (n_images or n_failed or n_objects):
            now = time.monotonic()
            if now - self._last >= self.interval or self.done >= self.total:
                self._last = now
                self._log_line(now)

    def _log_line(self, now: float) -> None:
        elapsed = now - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        log.info(
            "progress: %d/%d images (%.0f%%), %d failed, %d objects, %.1f images/s, ETA %.0f s",
            self.done,
            self.total,
            pct,
            self.failed,
            self.objects,
            rate,
            eta,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
