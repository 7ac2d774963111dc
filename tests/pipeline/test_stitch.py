"""Components joined across chunks equal SciPy's labelling of the whole array."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage as ndi

from hpcseg.pipeline.grid import ChunkGrid
from hpcseg.pipeline.label import raster_order
from hpcseg.pipeline.stitch import Components, faces_of, label_chunk


def joined_labels(mask: np.ndarray, chunk: tuple[int, ...], connectivity: int) -> np.ndarray:
    """Label each chunk, join, and paint every pixel with its component (then raster order)."""
    grid = ChunkGrid(mask.shape, chunk)
    structure = ndi.generate_binary_structure(mask.ndim, connectivity)
    pieces = [label_chunk(mask[grid.core(i)], structure) for i in grid.indices()]
    comps = Components.join(grid, [n for _, n in pieces], [faces_of(lab) for lab, _ in pieces],
                            structure)  # fmt: skip
    out = np.zeros(mask.shape, np.int64)
    for k, (index, (labels, _)) in enumerate(zip(grid.indices(), pieces, strict=True)):
        out[grid.core(index)] = comps.of_chunk(k)[labels]
    return raster_order(out)


@settings(max_examples=60, deadline=None)
@given(
    mask=arrays(bool, st.tuples(st.integers(1, 30), st.integers(1, 30)), elements=st.booleans()),
    chunk=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    connectivity=st.sampled_from([1, 2]),
)
def test_joined_components_equal_scipy_2d(mask, chunk, connectivity):
    structure = ndi.generate_binary_structure(2, connectivity)
    expected = raster_order(ndi.label(mask, structure)[0])
    np.testing.assert_array_equal(joined_labels(mask, chunk, connectivity), expected)


@settings(max_examples=30, deadline=None)
@given(
    mask=arrays(bool, st.tuples(*[st.integers(1, 10)] * 3), elements=st.booleans()),
    chunk=st.tuples(*[st.integers(1, 5)] * 3),
    connectivity=st.sampled_from([1, 2, 3]),
)
def test_joined_components_equal_scipy_3d(mask, chunk, connectivity):
    structure = ndi.generate_binary_structure(3, connectivity)
    expected = raster_order(ndi.label(mask, structure)[0])
    np.testing.assert_array_equal(joined_labels(mask, chunk, connectivity), expected)


def test_a_diagonal_contact_across_a_chunk_corner_joins_only_with_full_connectivity():
    mask = np.zeros((4, 4), bool)
    mask[1, 1] = mask[2, 2] = True  # (1, 1) and (2, 2) lie in diagonal chunks of 2x2
    assert joined_labels(mask, (2, 2), 1).max() == 2
    assert joined_labels(mask, (2, 2), 2).max() == 1


def test_per_component_reductions():
    mask = np.array([[1, 1, 0, 1], [0, 1, 0, 1]], bool)
    grid = ChunkGrid(mask.shape, (2, 2))
    structure = ndi.generate_binary_structure(2, 1)
    pieces = [label_chunk(mask[grid.core(i)], structure) for i in grid.indices()]
    comps = Components.join(grid, [n for _, n in pieces], [faces_of(lab) for lab, _ in pieces],
                            structure)  # fmt: skip
    sizes = np.concatenate([np.bincount(lab.ravel())[1:] for lab, _ in pieces])
    assert comps.n_components == 2
    assert sorted(comps.total(sizes)[1:].tolist()) == [2, 3]
    assert comps.minimum(sizes)[1:].min() == 2 and comps.maximum(sizes)[1:].max() == 3
