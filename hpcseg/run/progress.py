"""Progress reporting, the one place it happens: a live bar on a terminal, log lines otherwise."""

from __future__ import annotations

import logging
import sys
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
        self._bar = (
            tqdm(total=total, unit="img", file=sys.stderr, dynamic_ncols=True)
            if mode == "bar"
            else None
        )

    def update(self, n_images: int, n_failed: int = 0, n_objects: int = 0) -> None:
        self.done += n_images
        self.failed += n_failed
        self.objects += n_objects
        if self._bar is not None:
            self._bar.update(n_images)
            self._bar.set_postfix(failed=self.failed, objects=self.objects, refresh=False)
        elif self.mode == "log":
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
