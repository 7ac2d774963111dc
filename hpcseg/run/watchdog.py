"""The per-image time cap (``runner.image_timeout``), enforced on the worker.

A pathological input (a file whose parsing is quadratic, a decompression that never ends) can
hold a worker in C code that no Python timer can interrupt. So a watchdog thread watches the
image being processed; past the cap it leaves a marker naming the image in
``<out>/.timeouts/`` and kills its own worker process. The nanny starts a fresh worker, the
driver sees the worker die, runs the batch's images one by one, and the image that times out
alone is failed with the marker's reason (:mod:`hpcseg.run.batches`) instead of retried.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

TIMEOUT_FOLDER = ".timeouts"


def timeout_folder(out_dir: str | Path) -> Path:
    return Path(out_dir) / TIMEOUT_FOLDER


class Watchdog:
    """``with Watchdog(seconds, folder) as w: w.begin(id); ...; w.end()`` (None: no cap)."""

    def __init__(self, seconds: float | None, folder: Path):
        self.seconds, self.folder = seconds, Path(folder)
        self._current: tuple[str, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Watchdog:
        if self.seconds is not None:
            self._thread = threading.Thread(target=self._watch, name="hpcseg-watchdog", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def begin(self, image_id: str) -> None:
        self._current = (image_id, time.monotonic())

    def end(self) -> None:
        self._current = None

    def _watch(self) -> None:
        poll = min(1.0, self.seconds / 4)
        while not self._stop.wait(poll):
            current = self._current
            if current is not None and time.monotonic() - current[1] > self.seconds:
                self._kill(current[0])

    def _kill(self, image_id: str) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            (self.folder / image_id).write_text(f"{self.seconds:g}\n")
        finally:
            os.kill(os.getpid(), signal.SIGKILL)


def timed_out(out_dir: str | Path, image_id: str) -> float | None:
    """The cap an image exceeded (its marker), or None."""
    marker = timeout_folder(out_dir) / image_id
    try:
        return float(marker.read_text())
    except (OSError, ValueError):
        return None
