"""The tiled mode's working folder for one image: intermediate arrays and per-chunk results.

``<output.dir>/tiled/<image key>/``: each pass's chunk-sized arrays (Zarr, written by the chunk
that owns the pixels, read with halos by the next pass) and each chunk's small result
(``<pass>/<chunk>.npz``, written atomically after its arrays: the chunk's commit). A rerun after
a kill finds the committed chunks and redoes only the others; ``meta.json`` names the inputs and
settings, so a folder from other inputs is cleared instead of reused.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from pathlib import Path

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from hpcseg.pipeline.grid import ChunkGrid, Region

_CODEC = BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")


def tiled_root(out_dir: str | Path) -> Path:
    return Path(out_dir) / "tiled"


class Scratch:
    """One image's working folder (safe to use from many processes at once: each chunk writes
    only its own pixels and files)."""

    def __init__(self, folder: str | Path, grid: ChunkGrid):
        self.folder = Path(folder)
        self.grid = grid

    def prepare(self, meta: dict) -> bool:
        """Create the folder for ``meta``; True when an earlier run's chunks can be reused."""
        marker = self.folder / "meta.json"
        if marker.exists():
            try:
                if json.loads(marker.read_text()) == meta:
                    return True
            except (OSError, ValueError):
                pass
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta, sort_keys=True))
        os.replace(tmp, marker)
        return False

    def create(self, name: str, dtype) -> None:
        """A chunk-sized array (zeros) unless it exists (a resumed pass keeps its chunks)."""
        path = self.folder / f"{name}.zarr"
        if not path.exists():
            zarr.create_array(
                store=str(path),
                shape=self.grid.shape,
                chunks=self.grid.chunk,
                dtype=np.dtype(dtype).str,
                fill_value=0,
                compressors=_CODEC,
            )

    def read(self, name: str, region: Region) -> np.ndarray:
        return _open(str(self.folder / f"{name}.zarr"), self.grid.chunk)[region]

    def write(self, name: str, region: Region, block: np.ndarray) -> None:
        _open(str(self.folder / f"{name}.zarr"), self.grid.chunk)[region] = block

    def result_path(self, step: str, k: int) -> Path:
        return self.folder / step / f"{k}.npz"

    def load_result(self, step: str, k: int) -> dict | None:
        """A committed chunk result, or None."""
        path = self.result_path(step, k)
        try:
            with np.load(path, allow_pickle=False) as data:
                return {key: data[key] for key in data.files}
        except (OSError, ValueError, EOFError):
            return None

    def save_result(self, step: str, k: int, values: dict) -> None:
        path = self.result_path(step, k)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **values)
        os.replace(tmp, path)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@functools.lru_cache(maxsize=32)
def _open(path: str, chunk: tuple[int, ...]):
    """An opened array (kept per process); the chunk shape is part of the key, so an array
    re-created with another grid is opened afresh."""
    return zarr.open_array(path, mode="r+")
