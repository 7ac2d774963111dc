"""Connected components across chunks, exactly, without a driver-side pass over the pixels.

Each chunk labels its own core (SciPy) and sends back its label count, per-label partial
values and its faces (the first and last layer along each axis). :class:`Components` joins
the chunks: the faces of neighbouring chunks are laid side by side in one two-layer slab per
chunk boundary (spanning the whole image, so contacts across chunk corners are seen too), the
label pairs the structuring element connects become graph edges, and one union-find
(``scipy.sparse.csgraph.connected_components``) over all chunk labels gives each its
component. Per-label partials are then reduced per component (sum, min, max, any), so the
driver's work grows with labels and chunk faces, never with pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from hpcseg.pipeline.grid import ChunkGrid


def label_chunk(mask: np.ndarray, structure: np.ndarray) -> tuple[np.ndarray, int]:
    """SciPy's labels of one chunk's core (int32)."""
    labels, n = ndi.label(mask, structure=structure, output=np.int32)
    return labels, int(n)


def faces_of(labels: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per axis, the first and the last layer of a chunk's labels (what its neighbours see)."""
    return [(np.take(labels, 0, axis=a).copy(), np.take(labels, -1, axis=a).copy())
            for a in range(labels.ndim)]  # fmt: skip


def _pairs(low: np.ndarray, high: np.ndarray, offset: tuple[int, ...]):
    """Label pairs (low[p], high[p + offset]) where both are objects."""
    src, dst = [], []
    for o, n in zip(offset, low.shape, strict=True):
        src.append(slice(max(-o, 0), n - max(o, 0)))
        dst.append(slice(max(o, 0), n - max(-o, 0)))
    a, b = low[tuple(src)].ravel(), high[tuple(dst)].ravel()
    both = (a > 0) & (b > 0)
    return a[both], b[both]


@dataclass
class Components:
    """The components of a label set spread over a chunk grid.

    ``offsets[k]`` is added to chunk k's local labels (raster order of chunks) to make them
    global; ``component[g]`` is the component of global label g (0: the background).
    """

    grid: ChunkGrid
    offsets: np.ndarray  # (chunks + 1,) int64: chunk k's labels are offsets[k]+1 .. offsets[k+1]
    component: np.ndarray  # (labels + 1,) int64; component[0] == 0, components 1..n_components
    n_components: int

    @classmethod
    def join(
        cls,
        grid: ChunkGrid,
        counts: list[int],
        faces: list[list[tuple[np.ndarray, np.ndarray]]],
        structure: np.ndarray,
    ) -> Components:
        """Join the chunks' labels (``counts`` and ``faces`` per chunk, in grid raster order)."""
        offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])
        n_labels = int(offsets[-1])
        position = {index: k for k, index in enumerate(grid.indices())}
        centre = (1,) * grid.ndim
        edges_a, edges_b = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        for axis in range(grid.ndim):
            others = [a for a in range(grid.ndim) if a != axis]
            slab_shape = tuple(grid.shape[a] for a in others)
            steps = [
                tuple(d - 1 for a, d in enumerate(offset) if a != axis)
                for offset in np.argwhere(structure)
                if offset[axis] == 2  # neighbours one step up along this axis
            ]
            if structure[centre] and not steps:
                continue
            for boundary in range(grid.counts[axis] - 1):
                low = np.zeros(slab_shape, np.int64)
                high = np.zeros(slab_shape, np.int64)
                for index in grid.indices():
                    if index[axis] not in (boundary, boundary + 1):
                        continue
                    k = position[index]
                    core = grid.core(index)
                    where = tuple(core[a] for a in others)
                    first, last = faces[k][axis]
                    if index[axis] == boundary:
                        low[where] = np.where(last > 0, last.astype(np.int64) + offsets[k], 0)
                    else:
                        high[where] = np.where(first > 0, first.astype(np.int64) + offsets[k], 0)
                for step in steps:
                    a, b = _pairs(low, high, step)
                    edges_a.append(a)
                    edges_b.append(b)
        a, b = np.concatenate(edges_a), np.concatenate(edges_b)
        graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n_labels + 1,) * 2)
        _, component = connected_components(graph, directed=False)
        # number components 1..n in order of their smallest global label; 0 stays background
        order = np.unique(component[1:], return_index=True)[1] + 1
        renumber = np.zeros(component.max() + 1, np.int64)
        renumber[component[np.sort(order)]] = np.arange(1, len(order) + 1)
        component = renumber[component]
        component[0] = 0
        return cls(grid, offsets, component, len(order))

    def of_chunk(self, k: int) -> np.ndarray:
        """Local label -> component for chunk k (index 0: background)."""
        lut = self.component[self.offsets[k] : self.offsets[k + 1] + 1].copy()
        lut[0] = 0
        return lut

    def total(self, values: np.ndarray) -> np.ndarray:
        """Per-component sums of per-label ``values`` (global label order), index 0 unused."""
        out = np.zeros((self.n_components + 1, *values.shape[1:]), values.dtype)
        np.add.at(out, self.component[1:], values)
        return out

    def minimum(self, values: np.ndarray) -> np.ndarray:
        out = np.full((self.n_components + 1, *values.shape[1:]), _largest(values.dtype))
        np.minimum.at(out, self.component[1:], values)
        return out

    def maximum(self, values: np.ndarray) -> np.ndarray:
        out = np.full((self.n_components + 1, *values.shape[1:]), _smallest(values.dtype))
        np.maximum.at(out, self.component[1:], values)
        return out


def _largest(dtype) -> float | int:
    return np.iinfo(dtype).max if np.issubdtype(dtype, np.integer) else np.inf


def _smallest(dtype) -> float | int:
    return np.iinfo(dtype).min if np.issubdtype(dtype, np.integer) else -np.inf
