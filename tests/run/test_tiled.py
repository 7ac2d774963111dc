"""The tiled mode equals the whole-image pipeline: labels, threshold and measurements, for any
chunking (one chunk, sizes that do not divide the image, chunks smaller than a nucleus,
objects across corners and over three or more chunks, empty chunks), in 2-D and 3-D.

Integers (labels, areas, boxes, counts) are compared exactly. Floats are compared to 1e-9
relative: per-object sums are added chunk by chunk in another order than one bincount over the
whole image (e.g. the intensity spread, merged by Chan's formula), so their last bits may
differ; integer-valued sums (areas, intensity sums of integer pixels, coordinate sums) are
exact either way.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hpcseg.config.compose import load_config
from hpcseg.data.mosaic import mosaic_region
from hpcseg.data.synthetic import FrameStyle, synthetic_frame, synthetic_stack
from hpcseg.pipeline import bands, diameter
from hpcseg.pipeline.grid import ChunkGrid
from hpcseg.pipeline.sampling import Sampling
from hpcseg.pipeline.segment import measured_scale, min_object_size, segment, with_refinement
from hpcseg.results import scratch
from hpcseg.run.tile_tasks import TileJob, _numbered_keys, committed, float32_at_or_below
from hpcseg.run.tiled import segment_tiled
from hpcseg.run.tiled_job import pipeline_for, sample_regions

# the default chain with its lengths fixed (as the tiled mode fixes them per image before the
# passes: tiled_job.pipeline_for); `diameter=auto` is tested on its own below
NUCLEI = load_config(["pipeline=nuclei_v1"]).pipeline
NUCLEI_3D = load_config(["dataset=synthetic3d", "pipeline=nuclei_v1"]).pipeline


def default_at_reference(overrides: list[str] = (), ndim: int = 2):
    """The default (`nuclei`: refine=objects, a split, a cut, a second split) with every length
    fixed at the reference diameter, as the tiled mode fixes them before its passes."""
    cfg = with_refinement(load_config(list(overrides)).pipeline)
    return diameter.resolve(cfg, diameter.REFERENCE, ndim)


DEFAULT = default_at_reference()
DEFAULT_3D = default_at_reference(["dataset=synthetic3d"], ndim=3)
WHOLE_PIXELS = Sampling()
STACK = synthetic_stack(3, 0)[0]  # 40 x 192 x 192


DEFAULT_BANDS, DEFAULT_LOOKUP_BLOCK = bands.BAND_ROWS, scratch.MAPPED_BLOCK


@pytest.fixture(autouse=True, scope="module")
def small_bands_and_lookup_blocks():
    """Filter bands (hpcseg.pipeline.bands) and label lookups (results.scratch) in blocks
    small enough that these small images go through them (by default only crops of more than
    512 rows are banded, and lookups are 65,536 pixels at a time)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bands, "BAND_ROWS", 16)
        patch.setattr(scratch, "MAPPED_BLOCK", 500)
        yield


@dataclass(frozen=True)
class InMemory:
    """An array with the LargeImage interface (shape, dtype, read)."""

    pixels: np.ndarray

    @property
    def shape(self):
        return self.pixels.shape

    @property
    def dtype(self):
        return self.pixels.dtype

    def read(self, region):
        return self.pixels[region]


def tiled(image: np.ndarray, cfg, chunk: tuple[int, ...], sampling: Sampling = WHOLE_PIXELS):
    """The tiled result and its label image."""
    with tempfile.TemporaryDirectory() as folder:
        grid = ChunkGrid(image.shape, chunk)
        job = TileJob(InMemory(image), cfg, sampling, grid, folder,
                      min_object_size(cfg, image.ndim, sampling))  # fmt: skip
        result = segment_tiled(job)
        labels = result.labels(job, tuple(slice(0, s) for s in image.shape))
    return result, labels


def assert_equal_to_one_shot(
    image: np.ndarray, cfg, chunk: tuple[int, ...], sampling: Sampling = WHOLE_PIXELS
):
    one = segment(image, cfg, sampling)
    result, labels = tiled(image, cfg, chunk, sampling)
    np.testing.assert_array_equal(labels, one.labels)
    assert result.threshold == one.threshold
    assert result.summary["area_total"] == one.summary["area_total"]
    assert list(result.objects) == list(one.objects)
    for name, expected in one.objects.items():
        got = np.asarray(result.objects[name])
        expected = np.asarray(expected)
        if expected.dtype.kind in "iub":
            np.testing.assert_array_equal(got, expected, err_msg=name)
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=0, err_msg=name)
    return one


@pytest.mark.parametrize(
    "chunk",
    [
        (260, 348),
        (128, 128),
        pytest.param((50, 65), marks=pytest.mark.slow),
        pytest.param((17, 19), marks=pytest.mark.slow),
    ],
    ids=["one chunk", "128 (does not divide)", "50x65", "17x19 (smaller than a nucleus)"],
)
@pytest.mark.parametrize("pipeline", ["nuclei_v1", "default"])
def test_nuclei_tiled_equals_one_shot_on_a_frame(chunk, pipeline):
    image = (
        synthetic_frame(0, 1)[0][:260, :348]
        if chunk[0] > 20
        else synthetic_frame(0, 1)[0][:140, :150]
    )
    cfg = NUCLEI if pipeline == "nuclei_v1" else DEFAULT
    one = assert_equal_to_one_shot(image, cfg, chunk)
    assert len(one.objects["label"]) > 10


def test_the_default_tiled_cuts_the_pieces_of_a_first_split():
    """refine=objects tiled: the first split's pieces are cut on their bright levels from the
    raw image smoothed at refine.peak_smoothing, then split again; the cut and the bright
    smoothing change the objects (so the test above can see a wrong one)."""
    image = synthetic_frame(3, 0)[0][:300, :400]
    one = assert_equal_to_one_shot(image, DEFAULT, (70, 90))
    unsmoothed = replace(DEFAULT, refine=replace(DEFAULT.refine, peak_smoothing=0.0))
    other = assert_equal_to_one_shot(image, unsmoothed, (70, 90))
    assert DEFAULT.refine.peak_smoothing > 0
    assert not np.array_equal(one.labels, other.labels)
    v1 = segment(image, NUCLEI)
    assert not np.array_equal(one.labels, v1.labels)


def test_nuclei_tiled_equals_one_shot_with_the_default_bands(monkeypatch):
    monkeypatch.setattr(bands, "BAND_ROWS", DEFAULT_BANDS)
    monkeypatch.setattr(scratch, "MAPPED_BLOCK", DEFAULT_LOOKUP_BLOCK)
    image = mosaic_region(3, (600, 150), (slice(0, 600), slice(0, 150)))
    one = assert_equal_to_one_shot(image, NUCLEI, (600, 80))  # 600 rows: banded
    assert len(one.objects["label"]) > 10


@pytest.mark.slow
def test_objects_across_chunk_corners_and_many_chunks_are_one_object_each():
    image = synthetic_frame(0, 1)[0][:200, :260]
    one = segment(image, NUCLEI)
    _, labels = tiled(image, NUCLEI, (23, 29))
    grid = ChunkGrid(image.shape, (23, 29))
    spans = [len({tuple(np.array(p) // grid.chunk) for p in np.argwhere(one.labels == i)})
             for i in range(1, one.labels.max() + 1)]  # fmt: skip
    assert max(spans) >= 4  # some nucleus lies on four or more chunks (a corner)
    np.testing.assert_array_equal(labels, one.labels)


def test_empty_chunks_and_an_empty_image():
    image = synthetic_frame(0, 1)[0][:260, :348].copy()
    image[:, 200:] = image[:, :200].min()  # the right part is flat background
    assert_equal_to_one_shot(image, NUCLEI, (64, 64))
    flat = np.full((90, 120), 100, np.uint16)
    result, labels = tiled(flat, NUCLEI, (40, 50))
    assert len(result.objects["label"]) == 0 and not labels.any()


def rings(shape: tuple[int, int], centres: list[tuple[int, int]]) -> np.ndarray:
    """Bright rings (radii 5..10 px) with dark middles on a dim background: objects whose
    mask has a hole."""
    yy, xx = np.indices(shape)
    image = np.full(shape, 100, np.uint16)
    for y, x in centres:
        r = np.hypot(yy - y, xx - x)
        image[(r >= 5) & (r <= 10)] = 2000
    return image


@pytest.mark.parametrize("pipeline", ["nuclei_v1", "default"])
def test_holes_inside_a_chunk_across_its_border_and_open_to_the_image_border(pipeline):
    """fill_holes tiled: a hole wholly inside a chunk is filled by the mask pass, one across
    chunk borders (an edge, a corner) after the chunks' background joined, and a dark middle
    open to the image border (a ring cut by it) is not a hole. Without the per-object cut,
    which would cut the dark middles out again."""
    chunk = (40, 40)
    centres = [(20, 20), (40, 70), (80, 80), (60, 18), (3, 100)]  # inside, edge, corner, ..
    image = rings((120, 130), centres)
    uncut = ["pipeline.refine.method=none"]
    if pipeline == "default":
        cfg = default_at_reference(uncut)
    else:
        cfg = load_config(["pipeline=nuclei_v1", *uncut]).pipeline
    one = assert_equal_to_one_shot(image, cfg, chunk)
    filled = [bool(one.labels[y, x]) for y, x in centres]
    assert filled == [True, True, True, True, False]  # the last middle reaches the border
    # a bar across the image: the first chunk's background above and below it are two labels,
    # a hole inside the chunk numbered between them and one across its lower border after
    barred = rings((120, 130), [(14, 20), (40, 20)])
    barred[28:32] = 2000
    one = assert_equal_to_one_shot(barred, cfg, chunk)
    filled = [bool(one.labels[y, x]) for y, x in [(14, 20), (40, 20), (35, 2)]]
    assert filled == [True, True, False]  # below the bar: open to the image's left border


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    height=st.integers(60, 150),
    width=st.integers(60, 150),
    chunk_y=st.integers(12, 160),
    chunk_x=st.integers(12, 160),
    connectivity=st.sampled_from([1, 2]),
    pipeline=st.sampled_from(["nuclei_v1", "default"]),
)
@pytest.mark.slow
def test_property_nuclei_tiled_equals_one_shot(
    seed, height, width, chunk_y, chunk_x, connectivity, pipeline
):
    image = mosaic_region(seed, (height, width), (slice(0, height), slice(0, width)))
    connected = [f"pipeline.label.connectivity={connectivity}"]
    if pipeline == "default":
        cfg = default_at_reference(connected)
    else:
        cfg = load_config(["pipeline=nuclei_v1", *connected]).pipeline
    chunk = (min(chunk_y, height), min(chunk_x, width))
    assert_equal_to_one_shot(image, cfg, chunk)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    depth=st.integers(8, 24),
    chunk=st.tuples(st.integers(4, 24), st.integers(16, 96), st.integers(16, 96)),
    corner=st.tuples(st.integers(0, 16), st.integers(0, 96), st.integers(0, 96)),
    pipeline=st.sampled_from(["nuclei_v1", "default"]),
)
@pytest.mark.slow
def test_property_nuclei_3d_tiled_equals_one_shot(depth, chunk, corner, pipeline):
    z, y, x = corner
    stack = STACK[z : z + depth, y : y + 96, x : x + 96]
    chunk = tuple(min(c, s) for c, s in zip(chunk, stack.shape, strict=True))
    cfg = NUCLEI_3D if pipeline == "nuclei_v1" else DEFAULT_3D
    assert_equal_to_one_shot(stack, cfg, chunk, Sampling(0.5, 1.0))


@pytest.mark.parametrize(
    "overrides",
    [
        ["pipeline.threshold.method=otsu", "pipeline.refine.method=none"],
        ["pipeline.clean.fill_holes=false", "pipeline.split.method=none"],
        ["pipeline.clean.opening=disk", "pipeline.clean.opening_radius=2"],
        ["pipeline.clean.exclude_border=true"],
        ["pipeline.smooth.keep_dtype=true", "pipeline.threshold.method=otsu"],
        ["pipeline.smooth.keep_dtype=true"],
        ["pipeline.split.smoothing=0", "pipeline.split.min_distance=7"],
        ["pipeline.measure.shape_features=true"],
        ["pipeline.threshold.lower=0.8", "pipeline.threshold.noise=1"],
    ],
    ids=[
        "otsu",
        "no holes no split",
        "disk opening",
        "exclude border",
        "integer otsu",
        "integer log otsu",
        "seeds",
        "shape features",
        "threshold lowered further",
    ],
)
@pytest.mark.parametrize("pipeline", ["nuclei_v1", "default"])
def test_other_settings_tiled_equal_one_shot(overrides, pipeline):
    image = synthetic_frame(3, 0)[0][:300, :400]
    if pipeline == "default":  # the per-object cut and the second split under each setting
        cfg = default_at_reference(overrides)
    else:
        cfg = load_config(["pipeline=nuclei_v1", *overrides]).pipeline
    assert_equal_to_one_shot(image, cfg, (70, 90))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("chunk", "shape_features"),
    [((12, 64, 64), False), ((7, 50, 70), True)],
    ids=["12x64x64", "7x50x70 with shape features"],
)
def test_nuclei_3d_tiled_equals_one_shot(chunk, shape_features):
    stack = STACK[8:32, :128, :128]
    sampling = Sampling(0.5, 1.0)  # anisotropic: z planes twice the pixel size apart
    overrides = ["dataset=synthetic3d", "pipeline=nuclei_v1",
                 f"pipeline.measure.shape_features={shape_features}"]  # fmt: skip
    one = assert_equal_to_one_shot(stack, load_config(overrides).pipeline, chunk, sampling)
    assert len(one.objects["label"]) > 5


@pytest.mark.parametrize("pipeline", ["nuclei_v1", "default"])
def test_chunk_results_are_reused_after_an_interruption(tmp_path, pipeline):
    """A pass's committed chunks are not run again (the tiled mode's resume), also after the
    arrays of the passes before were released."""
    image = synthetic_frame(0, 2)[0]
    grid = ChunkGrid(image.shape, (200, 200))
    cfg = NUCLEI if pipeline == "nuclei_v1" else DEFAULT
    job = TileJob(InMemory(image), cfg, Sampling(), grid, str(tmp_path), 30)
    calls = []

    def counting(step, fn, job, items, shared):
        calls.append((step, len(items)))
        return [committed(
            step, fn, job, k, index, shared if extra is None else extra)
            for k, index, extra in items]  # fmt: skip

    class Killed(Exception):
        pass

    def killed_in_objects(step, fn, job, items, shared):  # 4 chunks of the pass, then a kill
        if step == "objects":
            counting(step, fn, job, items[:4], shared)
            raise Killed
        return counting(step, fn, job, items, shared)

    with pytest.raises(Killed):
        segment_tiled(job, killed_in_objects)
    calls.clear()
    resumed = segment_tiled(job, counting)
    n_chunks = len(grid.indices())
    assert dict(calls)["objects"] == n_chunks - 4
    assert all(n == 0 for s, n in calls if s != "objects")
    fresh = TileJob(InMemory(image), cfg, Sampling(), grid, str(tmp_path / "fresh"), 30)
    whole = segment_tiled(fresh)
    for column in ("label", "area", "mean_intensity", "centroid-0", "centroid-1"):
        np.testing.assert_array_equal(whole.objects[column], resumed.objects[column])


@pytest.mark.parametrize("pipeline", ["nuclei_v1", "default"])
def test_the_image_is_read_once_per_chunk_without_halo(pipeline):
    """The raw pass reads each core once, without a halo (which would decode the neighbouring
    storage chunks of a Zarr too); the later passes read the copy in scratch ``raw``, halos
    included, with the same results."""
    image = synthetic_frame(0, 1)[0][:260, :348]
    cfg = NUCLEI if pipeline == "nuclei_v1" else DEFAULT
    reads: list[tuple[slice, ...]] = []

    @dataclass(frozen=True)
    class Counted(InMemory):
        def read(self, region):
            reads.append(region)
            return super().read(region)

    grid = ChunkGrid(image.shape, (128, 128))
    with tempfile.TemporaryDirectory() as folder:
        job = TileJob(Counted(image), cfg, WHOLE_PIXELS, grid, folder,
                      min_object_size(cfg, 2, WHOLE_PIXELS))  # fmt: skip
        result = segment_tiled(job)
        labels = result.labels(job, tuple(slice(0, s) for s in image.shape))
    assert reads == [grid.core(i) for i in grid.indices()]
    assert any(h > 0 for h in job.smooth_halo)  # a halo the smooth pass reads from scratch
    np.testing.assert_array_equal(labels, segment(image, cfg).labels)
    if pipeline == "default":  # and the measurements, taken from the copy
        assert_equal_to_one_shot(image, cfg, (128, 128))


def test_an_unreadable_result_after_its_arrays_went_starts_the_image_afresh(tmp_path, caplog):
    """A committed result that cannot be read again (a damaged file) is redone, but the arrays
    its pass read were released: the image is segmented afresh, with a warning, not stuck."""
    image = synthetic_frame(0, 2)[0]
    grid = ChunkGrid(image.shape, (200, 200))
    job = TileJob(InMemory(image), DEFAULT, Sampling(), grid, str(tmp_path), 30)
    first = segment_tiled(job)
    job.scratch.result_path("clean", 1).write_bytes(b"not an npz")  # damaged
    with caplog.at_level("WARNING", logger="hpcseg"):
        again = segment_tiled(job)
    assert "segmenting this image afresh" in caplog.text
    for column in ("label", "area", "mean_intensity", "centroid-0", "centroid-1"):
        np.testing.assert_array_equal(first.objects[column], again.objects[column])


def test_released_scratch_arrays_cannot_be_read(tmp_path):
    """The passes delete each array once no later pass reads it; a read or write of a released
    array fails instead of reading zeros (a resumed pass would otherwise get empty chunks)."""
    image = synthetic_frame(0, 2)[0]
    grid = ChunkGrid(image.shape, (200, 200))
    job = TileJob(InMemory(image), NUCLEI, Sampling(), grid, str(tmp_path), 30)
    segment_tiled(job)
    folder = tmp_path
    kept = {p.parent.name for p in folder.glob("*/*.npy")}
    assert kept == {"keys"}  # the final labels only
    with pytest.raises(RuntimeError, match="released"):
        job.scratch.read("smoothed", grid.core((0, 0)))
    with pytest.raises(RuntimeError, match="released"):
        job.scratch.write("height", grid.core((0, 0)), np.zeros((200, 200), np.float32))


@pytest.mark.blog
@pytest.mark.slow
def test_blog2021_tiled_equals_the_dask_image_blog_graph_on_a_mosaic():
    """The seed, exactly, at scale: dask-image's own graph on the same array and chunks (its
    threshold_local block is the chunk), labels up to renumbering, area and mean per object."""
    import dask
    import dask.array as da
    from dask_image import ndfilters, ndmeasure, ndmorph
    from scipy import ndimage as ndi

    from hpcseg.pipeline.label import raster_order

    frames = [synthetic_frame(5, i)[0] for i in range(4)]
    mosaic = np.block([[frames[0], frames[1]], [frames[2], frames[3]]])
    chunk = (300, 400)  # does not divide 1040 x 1392
    with dask.config.set(scheduler="threads"):
        images = da.from_array(mosaic, chunks=chunk)
        # persisted step by step: with current dask, dask-image recomputes an unpersisted
        # upstream graph once per consumer (dask/dask#12062)
        smoothed = ndfilters.gaussian_filter(images, sigma=1).persist()
        thresh = ndfilters.threshold_local(smoothed, images.chunksize).persist()
        binary = ndmorph.binary_opening(
            smoothed > thresh, structure=ndi.generate_binary_structure(2, 1)
        ).persist()
        labels, n = dask.compute(*ndmeasure.label(binary))
    expected = raster_order(labels)
    result, ours = tiled(mosaic, load_config(["pipeline=blog2021"]).pipeline, chunk)
    np.testing.assert_array_equal(ours, expected)
    index = np.arange(1, n + 1)
    np.testing.assert_array_equal(
        result.objects["area"], ndi.sum_labels(np.ones_like(expected), expected, index)
    )
    np.testing.assert_allclose(
        result.objects["mean_intensity"], ndi.mean(mosaic, expected, index), rtol=1e-12
    )
    assert n > 150


@pytest.mark.parametrize("method", ["otsu", "log_otsu"])
def test_8_and_16_bit_thresholds_come_from_the_smooth_pass(method):
    """The chunks' value counts give the exact histogram: no histogram pass, same threshold
    (int8 with negative values too)."""
    frame = synthetic_frame(3, 0)[0][:200, :260]
    cfg = load_config(["pipeline=nuclei_v1", f"pipeline.threshold.method={method}",
                       "pipeline.smooth.keep_dtype=true"])  # fmt: skip
    signed = (np.clip(frame.astype(np.int32) // 4, 0, 227) - 100).astype(np.int8)
    for image in (frame, signed):
        one = segment(image, cfg.pipeline, WHOLE_PIXELS)
        result, labels = tiled(image, cfg.pipeline, (64, 90))
        assert "histogram" not in result.seconds
        assert result.threshold == one.threshold
        assert result.summary == one.summary  # the background median too
        assert one.labels.max() > 3
        np.testing.assert_array_equal(labels, one.labels)


@pytest.mark.parametrize(
    "variant",
    [
        "zero-padded",
        "zero-padded, 16-bit smoothing",
        "[0, 1], padded",
        "floor 50",
        "zeros",
        "otsu, zero-padded",
        "otsu, zero-padded, 16-bit smoothing",
    ],
)
def test_global_threshold_floor_tiled(variant):
    """log_otsu and otsu leave the pixels at or below the floor out of their histogram (one
    count: zero padding; 2^-16 for a float image; or ``threshold.floor``): tiled, the same
    threshold and labels, also where whole chunks (or all of them) have no pixel above the
    floor and from the smooth pass's 16-bit counts."""
    frame = synthetic_frame(3, 0)[0][:200, :260]
    overrides = ["pipeline=nuclei_v1", "pipeline.threshold.lower=0.5"]
    if variant.startswith("otsu"):
        overrides.append("pipeline.threshold.method=otsu")
    image = np.pad(frame, ((0, 0), (0, 300)))
    if variant.startswith("[0, 1]"):
        image = (image / frame.max()).astype(np.float32)
    elif variant == "zeros":
        image = np.zeros_like(image)
    elif variant == "floor 50":
        overrides.append("pipeline.threshold.floor=50")
    if "16-bit" in variant:
        overrides.append("pipeline.smooth.keep_dtype=true")
    cfg = load_config(overrides).pipeline
    one = assert_equal_to_one_shot(image, cfg, (64, 90))
    if variant == "zeros":
        assert one.labels.max() == 0 and one.threshold == 1.0
    else:
        assert one.labels.max() > 10
    if "16-bit" in variant:
        assert "histogram" not in tiled(image, cfg, (64, 90))[0].seconds


@pytest.mark.parametrize("shape", [(40, 50), (6, 30, 40), (1, 1), (0, 5)])
def test_keys_are_numbered_in_key_order_with_their_first_pixels(shape):
    """A core's keys numbered 1..m in ascending key order (0 stays 0), each with its first
    pixel in raster order, as np.unique over the pixels gives them: keys in runs along the rows
    (objects), alone (a key that changes every pixel) and none."""
    rng = np.random.default_rng(len(shape))
    runs = np.repeat(rng.integers(0, 5, size=-(-int(np.prod(shape)) // 4)), 4)
    for keys in (runs[: int(np.prod(shape))].reshape(shape) * 10**9 + 7,
                 rng.integers(0, 3, shape) * rng.integers(1, 10**12, shape),
                 np.zeros(shape, np.int64)):  # fmt: skip
        keys = np.where(keys % 3 == 0, 0, keys).astype(np.int64)
        local, table, first = _numbered_keys(keys)
        flat = keys.ravel()
        expected, at = np.unique(flat[flat > 0], return_index=True)
        np.testing.assert_array_equal(table, np.concatenate([[0], expected]))
        np.testing.assert_array_equal(first, np.flatnonzero(flat)[at])
        np.testing.assert_array_equal(table[local], keys)
        assert local.dtype == np.int32 and local.shape == keys.shape


def test_float32_cuts_decide_as_float64():
    """refine_apply compares float32 pixels with float32 cuts: the same decisions as float64,
    also for values one step either side of each cut."""
    rng = np.random.default_rng(1)
    cut = np.concatenate([rng.normal(500, 300, 20_000), [np.inf, 7e38, 0.0, 1e-45, 1.0, 2.5]])
    with np.errstate(over="ignore"):
        near = cut.astype(np.float32)  # 7e38: inf
    values = np.concatenate([near, np.nextafter(near, np.float32(np.inf)),
                             np.nextafter(near, np.float32(-np.inf))])  # fmt: skip
    expected = values.astype(np.float64) > np.tile(cut, 3)
    np.testing.assert_array_equal(values > np.tile(float32_at_or_below(cut), 3), expected)
    # the cut rounded to the nearest float32 instead decides some of these pixels otherwise
    assert not np.array_equal(values > np.tile(near, 3), expected)


def test_auto_diameter_is_measured_on_samples_then_tiled_as_given():
    """`diameter=auto`: the tiled mode measures the diameter once, on up to 5 sampled chunks
    (the lower median), fixes every length with it, and the passes equal the whole image with
    that diameter given."""
    image = synthetic_frame(3, 0)[0]  # 520 x 696: enough nuclei in each sample
    auto = load_config([]).pipeline
    grid = ChunkGrid(image.shape, (180, 240))
    pipeline, measured, contrast = pipeline_for(auto, WHOLE_PIXELS, InMemory(image), grid)
    regions = sample_regions(grid)
    assert len(regions) == 5 and regions[0] == grid.core((1, 1))  # the centre of 3 x 3
    found = [measured_scale(image[r], auto, WHOLE_PIXELS) for r in regions]
    diameters = sorted(d for d, _ in found if d is not None)
    contrasts = sorted(c for _, c in found if c is not None)
    assert diameters and measured == diameters[(len(diameters) - 1) // 2]
    assert contrast == contrasts[(len(contrasts) - 1) // 2] > 3  # no extra smoothing here
    assert pipeline == diameter.resolve(with_refinement(auto), measured)
    assert pipeline == diameter.resolve(with_refinement(auto), measured, 2, contrast)
    assert str(pipeline.refine.method) == "objects"
    given = segment(image, replace(auto, diameter=str(measured)))
    one = assert_equal_to_one_shot(image, pipeline, (180, 240))
    np.testing.assert_array_equal(one.labels, given.labels)
    blog = load_config(["pipeline=blog2021"]).pipeline
    fixed, none, no_contrast = pipeline_for(blog, WHOLE_PIXELS, InMemory(image), grid)
    assert none is None and no_contrast is None
    assert fixed.smooth == blog.smooth and fixed.clean == blog.clean


def test_a_photon_starved_image_is_smoothed_more_tiled_too():
    """The contrast to noise is measured with the diameter on the samples (here the one chunk
    of 260 x 348, the whole frame): the same extra smoothing as the whole image's, and the
    tiled passes give the whole image's labels."""
    image = synthetic_frame(6, 1, (260, 348), FrameStyle(photons=0.03))[0]
    auto = load_config([]).pipeline
    grid = ChunkGrid(image.shape, image.shape)
    pipeline, measured, contrast = pipeline_for(auto, WHOLE_PIXELS, InMemory(image), grid)
    whole = segment(image, auto)
    assert (measured, contrast) == (whole.diameter, whole.contrast) and contrast < 2.0
    assert pipeline.smooth.sigma == diameter.noise_factor(contrast, 3.0) > 1.4
    one = assert_equal_to_one_shot(image, pipeline, (130, 174))
    np.testing.assert_array_equal(one.labels, whole.labels)
    given = load_config(["pipeline.diameter=20"]).pipeline  # measured with a given one too
    assert pipeline_for(given, WHOLE_PIXELS, InMemory(image), grid)[1:] == (20.0, contrast)


def test_the_contrast_of_a_tiled_image_is_the_lower_median_of_its_samples():
    """A photon-starved 520 x 696 frame (photons x0.015) in 2 x 2 chunks: 3 samples; the
    contrast is the lower median of theirs and sets the smoothing of every pass."""
    image = synthetic_frame(6, 1, (520, 696), FrameStyle(photons=0.015))[0]
    auto = load_config([]).pipeline
    grid = ChunkGrid(image.shape, (260, 348))
    pipeline, _, contrast = pipeline_for(auto, WHOLE_PIXELS, InMemory(image), grid)
    regions = sample_regions(grid)
    found = sorted(measured_scale(image[r], auto, WHOLE_PIXELS)[1] for r in regions)
    assert len(regions) == 3 and len(set(found)) == 3 and contrast == found[1] < 2.83
    assert pipeline.smooth.sigma == diameter.noise_factor(contrast, 3.0) > 1.0


def test_an_empty_middle_does_not_decide_the_diameter():
    """A slide whose centre chunk is empty glass (camera noise): the other samples decide."""
    frame = synthetic_frame(3, 0)[0][:300, :390]
    image = np.tile(frame, (3, 3))
    glass = np.random.default_rng(0).poisson(110, frame.shape).astype(frame.dtype)
    image[300:600, 390:780] = glass
    grid = ChunkGrid(image.shape, (300, 390))
    auto = load_config([]).pipeline
    assert measured_scale(glass, auto, WHOLE_PIXELS)[0] is None  # noise: no diameter to measure
    _, measured, contrast = pipeline_for(auto, WHOLE_PIXELS, InMemory(image), grid)
    assert measured == measured_scale(frame[:300, :390], auto, WHOLE_PIXELS)[0]
    assert contrast > 2.0


@pytest.mark.parametrize("setting", ["auto", "24"])
def test_glass_does_not_vote_on_the_contrast(setting):
    """Glass in 3 of the 5 sampled chunks (the centre, above and left of it): its specks read
    as a low contrast, but a sample without nuclei (no diameter estimate, with a given
    diameter too) does not vote, so the 2 tissue samples decide (all 5 voting, the glass's
    lower median would smooth the whole slide)."""
    frame = synthetic_frame(3, 0)[0][:300, :390]
    image = np.tile(frame, (3, 3))
    glass = np.random.default_rng(0).poisson(110, frame.shape).astype(frame.dtype)
    for row, col in ((1, 1), (0, 1), (1, 0)):
        image[300 * row : 300 * (row + 1), 390 * col : 390 * (col + 1)] = glass
    grid = ChunkGrid(image.shape, (300, 390))
    cfg = load_config([f"pipeline.diameter={setting}"]).pipeline
    regions = sample_regions(grid)
    glassy = [r for r in regions if not image[r].any() or np.array_equal(image[r], glass)]
    assert len(regions) == 5 and len(glassy) == 3
    glass_contrast = measured_scale(glass, cfg, WHOLE_PIXELS)
    assert glass_contrast[0] is None and glass_contrast[1] < 2.0
    _, _, contrast = pipeline_for(cfg, WHOLE_PIXELS, InMemory(image), grid)
    assert contrast == measured_scale(frame, cfg, WHOLE_PIXELS)[1] > 2.0
