"""End-to-end segmentation of whole frames: the default pipeline, filters, timings, the chain."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import two_touching_nuclei
from scipy import ndimage as ndi
from skimage.draw import disk

from hpcseg.config.schemas import PipelineConfig
from hpcseg.data.synthetic import synthetic_frame
from hpcseg.pipeline.sampling import Sampling
from hpcseg.pipeline.segment import STAGES, plan, segment


def test_nuclei_pipeline_splits_where_blog_merges(make_config):
    image = two_touching_nuclei()
    nuclei = segment(image, make_config().pipeline)
    blog = segment(image, make_config("pipeline=blog2021").pipeline)
    assert nuclei.labels.max() == 2
    assert blog.labels.max() == 1
    assert set(nuclei.seconds) == {
        "smooth", "threshold", "clean", "split", "refine", "diameter", "label", "measure",
    }  # fmt: skip
    assert nuclei.threshold is not None and 100 < nuclei.threshold < 1000


def test_nuclei_pipeline_finds_most_synthetic_nuclei(make_config):
    image, truth = synthetic_frame(0, 2)
    seg = segment(image, make_config().pipeline)
    n_true = len(np.unique(truth)) - 1
    assert 0.8 * n_true <= seg.labels.max() <= 1.2 * n_true


def test_dim_nucleus_next_to_a_bright_one_is_kept_separate(make_config):

    image = np.full((80, 100), 100.0)
    image[disk((40, 35), 12)] = 4000  # bright
    image[disk((40, 60), 12)] = 600  # dim, touching it
    image = ndi.gaussian_filter(image, 2.0).astype(np.uint16)
    seg = segment(image, make_config("pipeline=nuclei_refined").pipeline)
    assert seg.labels.max() == 2
    assert seg.labels[40, 30] != seg.labels[40, 66] and seg.labels[40, 66] > 0
    areas = sorted(seg.objects["area"].tolist())
    assert all(abs(a - 441) < 0.25 * 441 for a in areas)  # a disk of radius 12 has 441 pixels


def test_empty_image_gives_no_objects(make_config):
    image = np.full((50, 60), 10, np.uint16)
    for preset in ((), ("pipeline=blog2021",)):
        seg = segment(image, make_config(*preset).pipeline)
        assert seg.labels.max() == 0 and len(seg.objects["label"]) == 0


def test_physical_units_and_size_filter_in_um(make_config):
    image = two_touching_nuclei()
    image[2:6, 2:6] = 1000  # a speck of a few pixels
    cfg = make_config("pipeline.clean.min_area=1").pipeline
    plain = segment(image, cfg)
    speck = int(plain.objects["area"].min())
    assert speck < 100 and len(plain.objects["area"]) == 3
    seg = segment(image, cfg, Sampling(pixel_size=0.5))
    np.testing.assert_allclose(seg.objects["area_um2"], seg.objects["area"] * 0.25)
    np.testing.assert_allclose(seg.objects["centroid-1_um"], seg.objects["centroid-1"] * 0.5)
    np.testing.assert_allclose(
        seg.objects["equivalent_diameter_area_um"], seg.objects["equivalent_diameter_area"] * 0.5
    )
    filtered = make_config(
        "pipeline.clean.min_area=1",
        f"pipeline.clean.min_area_um2={(speck + 1) * 0.25}",
        "dataset.pixel_size=0.5",
    ).pipeline
    kept = segment(image, filtered, Sampling(pixel_size=0.5)).objects["area"].tolist()
    assert speck not in kept and len(kept) == 2


def test_min_area_um2_needs_a_pixel_size(make_config):
    from hpcseg.errors import UserError

    with pytest.raises(UserError, match=r"needs dataset\.pixel_size"):
        make_config("pipeline.clean.min_area_um2=20")


def test_exclude_border_drops_objects_touching_the_edge(make_config):
    image = np.full((60, 60), 100, np.uint16)
    image[disk((30, 30), 8)] = 2000
    image[0:10, 0:10] = 2000  # touches the border
    kept = segment(image, make_config().pipeline)
    dropped = segment(image, make_config("pipeline.clean.exclude_border=true").pipeline)
    assert kept.labels.max() == 2 and dropped.labels.max() == 1
    assert dropped.labels[30, 30] == 1 and not dropped.objects["touches_border"].any()


def test_stage_timings_are_booked_to_their_stage():
    """refine=objects: the refinement's time goes to seconds_refine, not to split."""
    image, _ = synthetic_frame(3, 1, shape=(260, 348))
    cfg = PipelineConfig()
    cfg.refine.method = "objects"
    result = segment(image, cfg)
    assert set(result.seconds) == set(STAGES)
    assert result.seconds["refine"] > 0 and result.seconds["split"] > 0
    cfg.refine.method = "none"
    assert segment(image, cfg).seconds["refine"] == 0.0


def test_plan_is_a_flat_chain_from_the_method_tables():
    cfg = PipelineConfig()
    cfg.refine.method = "components"
    assert [stage for stage, _ in plan(cfg)] == [
        "smooth", "threshold", "clean", "refine", "split", "label", "measure"
    ]  # fmt: skip
    assert [stage for stage, _ in plan(cfg, measure_scale=True)] == [
        "smooth", "threshold", "clean", "refine", "diameter", "split", "label", "measure"
    ]  # fmt: skip
    cfg.refine.method = "objects"
    assert [stage for stage, _ in plan(cfg)] == [
        "smooth", "threshold", "clean", "split", "refine", "split", "label", "measure"
    ]  # fmt: skip
    assert plan(PipelineConfig()) == plan(cfg)  # auto: objects for a whole image
    cfg.split.method, cfg.refine.method = "none", "none"
    assert [stage for stage, _ in plan(cfg)] == [
        "smooth", "threshold", "clean", "label", "measure"
    ]  # fmt: skip
