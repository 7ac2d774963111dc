"""One writer per output folder: an advisory lock held for the whole run.

``<out>/.hpcseg.lock`` is locked with ``flock`` (exclusive) by the driver for as long as the run
writes the folder; its content names the holder (host, pid, SLURM job, start time, command). The
kernel releases the lock when the holder exits in any way, SIGKILL included, so a lock left by a
dead process is no lock at all: the next run takes it and says whose it was. On NFS, Linux
implements ``flock`` with the server's byte-range locks, released the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from hpcseg.errors import UserError

LOCK_NAME = ".hpcseg.lock"
WAIT_POLL_SECONDS = 1.0


def holder_record() -> dict:
    """Who holds the lock: what a refused run prints."""
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "argv": " ".join(sys.argv),
    }


def describe(holder: dict) -> str:
    job = f", SLURM job {holder['slurm_job_id']}" if holder.get("slurm_job_id") else ""
    return f"host {holder.get('host')}, pid {holder.get('pid')}{job}, since {holder.get('started')}"


def _read_holder(fh) -> dict:
    fh.seek(0)
    try:
        return json.loads(fh.read() or "{}")
    except ValueError:
        return {}


@contextlib.contextmanager
def output_lock(root: Path, wait: bool = False, log=None) -> Iterator[dict]:
    """Hold ``root``'s lock inside the block; yield the record of a previous holder that ended
    without releasing it (killed), or {}. The record is cleared on a clean release.

    Refuses (UserError, one line naming the holder) when another process holds it, unless
    ``wait`` (then it waits, saying so once).
    """
    root = Path(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
        fh = open(root / LOCK_NAME, "a+")  # noqa: SIM115 (held open for the whole block)
    except OSError as exc:
        raise UserError(f"cannot create output.dir={root} ({exc.strerror})") from None
    acquired = False
    try:
        said = False
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_holder(fh)
                if not wait:
                    raise UserError(
                        f"output.dir={root} is being written by another hpcseg run "
                        f"({describe(holder)}); wait for it to finish, use another output.dir, "
                        "or add output.wait_for_lock=true"
                    ) from None
                if not said and log is not None:
                    log.info("waiting for the run writing %s (%s)", root, describe(holder))
                    said = True
                time.sleep(WAIT_POLL_SECONDS)
        acquired = True
        previous = _read_holder(fh)
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps(holder_record()))
        fh.flush()
        yield previous
    finally:
        if acquired:
            with contextlib.suppress(OSError):
                fh.truncate(0)
        fh.close()  # closing the descriptor releases the lock
