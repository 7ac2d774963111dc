"""z-stacks end to end: reader, anisotropic stages, 3-D columns, scoring, labels, report."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from conftest import run_cli

from hpcseg.data import synthetic
from hpcseg.data.reader import read_image
from hpcseg.errors import ImageError, UserError
from hpcseg.pipeline import clean, split
from hpcseg.pipeline.sampling import Sampling, window
from hpcseg.pipeline.segment import min_object_size, segment
from hpcseg.results.evaluate import score
from hpcseg.results.store import Store

STACK3D = ("dataset=synthetic3d", "dataset.depth=24", "dataset.height=96", "dataset.width=96")


def test_sampling_turns_pixel_lengths_into_per_axis_lengths():
    coarse_z = Sampling(pixel_size=0.5, z_step=1.5)
    assert coarse_z.spacing(3) == (3.0, 1.0, 1.0) and coarse_z.microns(3) == (1.5, 0.5, 0.5)
    assert coarse_z.spacing(2) == (1.0, 1.0) and coarse_z.microns(2) == (0.5, 0.5)
    assert Sampling(z_step=2.0).spacing(3) == (1.0, 1.0, 1.0)  # no pixel size: isotropic
    assert Sampling().microns(3) is None
    assert window(4, (3.0, 1.0, 1.0)) == (3, 9, 9)  # 4 pixels span 1.33 planes: 1 either side
    assert window(4, (1.0, 1.0)) == (9, 9)


def test_disk_opening_footprint_follows_the_spacing():
    from skimage.morphology import disk

    assert np.array_equal(clean.opening_footprint("disk", 3, (1.0, 1.0)), disk(3).astype(bool))
    ball = clean.opening_footprint("disk", 2, (2.0, 1.0, 1.0))
    assert ball.shape == (3, 5, 5)
    assert np.array_equal(ball[1], disk(2).astype(bool))  # the centre plane is the disk
    assert ball[0].sum() == ball[2].sum() == 1  # one plane away is 2 pixels away
    assert clean.opening_footprint("cross", 1, (2.0, 1.0, 1.0)).shape == (3, 3, 3)


def two_touching_ellipsoids(z_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Two nuclei of radius 9 pixels (9 / z_ratio planes) whose centres are 15 pixels apart."""
    zz, yy, xx = np.ogrid[:24, :40, :56]
    truth = np.zeros((24, 40, 56), np.int32)
    for index, cx in enumerate((20, 35), start=1):
        inside = ((zz - 12) * z_ratio / 9) ** 2 + ((yy - 20) / 9) ** 2 + ((xx - cx) / 9) ** 2 <= 1
        truth[inside & (truth == 0)] = index
    image = np.where(truth > 0, 1000, 100).astype(np.uint16)
    return image, truth


def test_distance_map_is_measured_in_in_plane_pixels():
    slab = np.zeros((7, 30, 30), np.int32)
    slab[1:6, 1:29, 1:29] = 1  # 5 planes thick, 28 pixels wide
    isotropic = split.object_distance(slab, 0.0)
    coarse_z = split.object_distance(slab, 0.0, spacing=(3.0, 1.0, 1.0))
    assert isotropic[3, 15, 15] == 3.0  # three planes to the slab's face
    assert coarse_z[3, 15, 15] == 9.0  # ... which are 9 pixels away


def test_watershed_splits_touching_nuclei_in_3d():
    _, truth = two_touching_ellipsoids(z_ratio=3.0)
    mask = truth > 0
    anisotropic = split.watershed_split(mask, 5, 1.0, spacing=(3.0, 1.0, 1.0))
    assert len(np.unique(anisotropic[anisotropic > 0])) == 2
    assert anisotropic[12, 20, 15] != anisotropic[12, 20, 40]
    assert score(truth, anisotropic)["f1_90"] == 1.0


def test_nuclei_pipeline_on_a_synthetic_stack(make_config):
    image, truth = synthetic.synthetic_stack(11, 0, (32, 128, 128), z_ratio=2.0)
    assert image.shape == truth.shape == (32, 128, 128) and image.dtype == np.uint16
    cfg = make_config().pipeline
    seg = segment(image, cfg, Sampling(pixel_size=0.5, z_step=1.0))
    scores = score(truth, seg.labels)
    assert scores["f1_50"] >= 0.8, scores
    assert {"centroid-2", "volume_um3", "axis_minor_length_um"} <= set(seg.objects)
    assert "eccentricity" not in seg.objects and "area_um2" not in seg.objects
    np.testing.assert_allclose(seg.objects["volume_um3"], seg.objects["area"] * 0.25)
    np.testing.assert_allclose(seg.objects["centroid-0_um"], seg.objects["centroid-0"] * 1.0)
    # telling the stages that planes are coarser than pixels matters on such data
    isotropic = score(truth, segment(image, cfg).labels)
    assert scores["f1_70"] > isotropic["f1_70"], (scores, isotropic)


def test_synthetic_stack_is_deterministic():
    a = synthetic.synthetic_stack(3, 1, (16, 64, 64), 2.0)
    b = synthetic.synthetic_stack(3, 1, (16, 64, 64), 2.0)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert a[1].max() >= 2


def test_min_volume_um3_and_geometry_errors(make_config):
    cfg = make_config(*STACK3D, "pipeline=nuclei_v1", "pipeline.clean.min_volume_um3=10")
    # 10 µm³ at 1 x 0.5 x 0.5 µm voxels is 40 voxels
    assert min_object_size(cfg.pipeline, 3, Sampling(0.5, 1.0)) == 40
    for overrides, message in (
        (("dataset.z_step=1",), "set dataset.ndim=3 too"),
        (("dataset.ndim=3", "dataset.z_step=1"), "needs dataset.pixel_size"),
        ((*STACK3D, "pipeline.clean.min_area_um2=3"), "z-stacks use pipeline.clean.min_volume"),
        (("dataset.pixel_size=1", "pipeline.clean.min_volume_um3=3"), "is for z-stacks"),
    ):
        with pytest.raises(UserError, match=message):
            make_config(*overrides)


def test_reader_takes_stacks_only_when_asked(tmp_path):
    stack = np.zeros((5, 32, 40), np.uint16)
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    tifffile.imwrite(tmp_path / "frame.tif", stack[0])
    assert read_image(str(tmp_path / "stack.tif"), 10**6, ndim=3).pixels.shape == (5, 32, 40)
    with pytest.raises(ImageError, match=r"for z-stacks set dataset\.ndim=3"):
        read_image(str(tmp_path / "stack.tif"), 10**6)
    with pytest.raises(ImageError, match=r"expected a 3-D z-stack \(Z, Y, X"):
        read_image(str(tmp_path / "frame.tif"), 10**6, ndim=3)
    with pytest.raises(ImageError, match=r"exceed dataset\.max_pixels"):
        read_image(str(tmp_path / "stack.tif"), 5 * 32 * 40 - 1, ndim=3)


@pytest.mark.slow
def test_synthetic3d_job_writes_3d_columns_labels_scores_and_report(tmp_path):
    out = tmp_path / "out"
    proc = run_cli(*STACK3D, "dataset.n_images=3", f"output.dir={out}", "output.save_labels=true",
                   "output.report=true", "pipeline.measure.shape_features=true",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "accuracy over 3 images with ground truth" in proc.stdout
    store = Store(out)
    objects = store.read_objects()
    for column in ("bbox-5", "centroid_weighted-2", "volume_um3", "solidity", "euler_number"):
        assert column in objects.column_names
    assert "perimeter" not in objects.column_names
    images = store.read_images().to_pylist()
    assert all(r["shape"] == [24, 96, 96] and r["f1_50"] > 0.6 for r in images), images
    labels = tifffile.imread(out / "labels" / f"{images[0]['image_id']}.tif")
    assert labels.shape == (24, 96, 96) and labels.max() == images[0]["n_objects"]
    assert any(p.name.startswith("qc_") for p in (out / "report").iterdir())
