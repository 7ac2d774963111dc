"""How a run meets a batch system: SIGTERM and SIGINT stop it gracefully, I/O errors are a line.

``scancel`` and a wall-time limit send SIGTERM (then SIGKILL after a grace, SLURM's KillWait);
Ctrl-C sends SIGINT to the whole process group. The first signal asks the run to stop (no new
batch starts; those in flight may finish within ``runner.stop_grace``); a second one stops it
at once. The run then shuts its cluster down, prints the resume line and exits 143 (SIGTERM) or
130 (SIGINT). The local cluster's worker processes are started with SIGINT ignored, so Ctrl-C
reaches only the driver and no worker prints a traceback.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

EXIT_CODES = {"SIGTERM": 143, "SIGINT": 130}  # 128 + the signal number, as shells report


@dataclass
class Stop:
    """Set by a signal: stop starting batches; ``deadline`` ends the grace for those in flight
    (``now`` ends it at once)."""

    requested: threading.Event = field(default_factory=threading.Event)
    deadline: float = float("inf")
    signal_name: str = ""

    def request(self, signal_name: str, grace: float) -> None:
        if self.requested.is_set():  # a second signal: no more grace
            self.deadline = time.monotonic()
        else:
            self.signal_name = signal_name
            self.deadline = time.monotonic() + grace
            self.requested.set()

    def expired(self) -> bool:
        return self.requested.is_set() and time.monotonic() >= self.deadline

    def exit_code(self) -> int:
        """The exit code of a run this signal stopped."""
        return EXIT_CODES.get(self.signal_name, 1)


class IOFailure(Exception):
    """An I/O error of the run itself (disk full, permissions): one line, exit code 1."""

    def __init__(self, error: OSError | str):
        if isinstance(error, OSError):
            where = f" {error.filename}" if error.filename else ""
            error = f"cannot write{where}: {error.strerror or error}"
        super().__init__(
            f"{error}; free space or fix the folder, then run the same command again to resume "
            "(nothing committed is lost)"
        )


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Processes started inside the block ignore SIGINT: an ignored signal stays ignored
    across exec, and Python then leaves it so (no KeyboardInterrupt in a worker on Ctrl-C)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def stop_on_signals(stop: Stop, grace: float) -> Iterator[Stop]:
    """Within the block, SIGTERM and SIGINT request ``stop`` instead of killing the process."""
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum, frame) -> None:
        stop.request(signal.Signals(signum).name, grace)

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
