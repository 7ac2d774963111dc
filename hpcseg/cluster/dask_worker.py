"""``python -m hpcseg.cluster.dask_worker ARGS``: Dask's worker command (the same ARGS) with
hpcseg's worker settings (:data:`hpcseg.cluster.core.WORKER_SETTINGS`): the command that job
scripts and container workers run."""

from __future__ import annotations

import dask
from distributed.cli.dask_worker import main

from hpcseg.cluster.core import WORKER_SETTINGS

if __name__ == "__main__":
    with dask.config.set(WORKER_SETTINGS):
        main()
