"""dataset=bbbc039 on a small folder written in the public set's layout and mask encoding."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image
from skimage.measure import label

from hpcseg.data import sources
from hpcseg.data.reader import read_mask
from hpcseg.data.synthetic import synthetic_frame
from hpcseg.errors import UserError
from hpcseg.results.evaluate import SCORE_COUNT_COLUMNS, SCORE_VALUE_COLUMNS, score
from hpcseg.results.store import Store
from hpcseg.run.job import run_job

NAMES = [f"IXMtest_{well}_s{site}_w1DEADBEEF-{i}" for i, (well, site) in
         enumerate([("A02", 1), ("B11", 3), ("P24", 9), ("C07", 2)])]  # fmt: skip
SPLITS = {"training": NAMES[:2], "validation": NAMES[2:3], "test": NAMES[3:]}


def touching_pairs(labels: np.ndarray) -> set[tuple[int, int]]:
    """Pairs of different objects that are 8-neighbours."""
    pairs = set()
    padded = np.pad(labels, 1)
    core = padded[1:-1, 1:-1]
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        other = padded[1 + dy : padded.shape[0] - 1 + dy, 1 + dx : padded.shape[1] - 1 + dx]
        touch = (core > 0) & (other > 0) & (core != other)
        pairs |= {tuple(sorted(p)) for p in zip(core[touch], other[touch], strict=True)}
    return pairs


def bbbc039_encoding(instances: np.ndarray) -> np.ndarray:
    """The set's PNG values: 1 for an object touching none, 2, 3, ... (greedy colours) for
    touching ones, so that no two touching objects share a value."""
    neighbours: dict[int, set[int]] = {}
    for a, b in touching_pairs(instances):
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    value = np.zeros(int(instances.max()) + 1, np.uint8)
    for obj in range(1, len(value)):
        if obj in neighbours:
            used = {value[n] for n in neighbours[obj]}
            value[obj] = min(v for v in range(2, 255) if v not in used)
        else:
            value[obj] = 1
    return value[instances]


@pytest.fixture(scope="module")
def bbbc039_root(tmp_path_factory):
    """images/*.tif, masks/*.png (RGB, value in red), metadata/*.txt, plus the same ground truth
    as plain label TIFFs for comparison."""
    root = tmp_path_factory.mktemp("BBBC039")
    for sub in ("images", "masks", "metadata", "truth_tiff"):
        (root / sub).mkdir()
    for index, name in enumerate(NAMES):
        image, mask = synthetic_frame(21, index, (160, 200))
        instances = label(mask, background=0, connectivity=2)  # one object per 8-connected piece
        tifffile.imwrite(root / "images" / f"{name}.tif", image)
        tifffile.imwrite(root / "truth_tiff" / f"{name}.tif", instances.astype(np.uint16))
        red = bbbc039_encoding(instances)
        Image.fromarray(np.stack([red, red, np.zeros_like(red)], axis=-1)).save(
            root / "masks" / f"{name}.png"
        )
    for split, names in SPLITS.items():
        (root / "metadata" / f"{split}.txt").write_text("".join(f"{n}.png\n" for n in names))
    return root


def test_png_masks_decode_to_the_instances(bbbc039_root):
    for name in NAMES:
        truth = tifffile.imread(bbbc039_root / "truth_tiff" / f"{name}.tif")
        decoded = read_mask(str(bbbc039_root / "masks" / f"{name}.png"), truth.shape)
        assert touching_pairs(truth), "the test needs touching objects"
        assert score(truth, decoded)["f1_90"] == 1.0 and decoded.max() == truth.max()


def test_records_splits_and_file_name_metadata(make_config, bbbc039_root):
    data = sources.resolve(make_config("dataset=bbbc039", f"dataset.root={bbbc039_root}").dataset)
    assert [r.image_id for r in data.records] == sorted(NAMES)
    assert data.metadata_columns == ["split", "well", "site"]
    first = dict(data.records[0].metadata)
    assert first == {"split": "training", "well": "A02", "site": "1"}
    assert all(r.mask_path.endswith(".png") for r in data.records)
    test_only = make_config("dataset=bbbc039", f"dataset.root={bbbc039_root}", "dataset.split=test")
    assert [r.image_id for r in sources.resolve(test_only.dataset).records] == SPLITS["test"]


def test_wrong_root_or_missing_split_file_is_one_clear_error(make_config, tmp_path):
    with pytest.raises(UserError, match="has no images/ folder"):
        make_config("dataset=bbbc039", f"dataset.root={tmp_path}")
    (tmp_path / "images").mkdir()
    with pytest.raises(UserError, match=r"metadata/validation\.txt"):
        make_config("dataset=bbbc039", f"dataset.root={tmp_path}", "dataset.split=validation")


@pytest.mark.slow  # two local clusters
def test_scored_run_equals_the_same_truth_as_label_tiffs(make_config, bbbc039_root, tmp_path):
    common = ("cluster.n_workers=1", "runner.progress=none")
    bbbc = make_config("dataset=bbbc039", f"dataset.root={bbbc039_root}",
                       f"output.dir={tmp_path / 'bbbc'}", *common)  # fmt: skip
    plain = make_config("dataset=tiff_glob", f"dataset.path={bbbc039_root}/images/*.tif",
                        f"dataset.masks={bbbc039_root}/truth_tiff/*.tif",
                        f"output.dir={tmp_path / 'plain'}", *common)  # fmt: skip
    assert run_job(bbbc).exit_code == 0 and run_job(plain).exit_code == 0
    columns = ["image_id", *SCORE_COUNT_COLUMNS, *SCORE_VALUE_COLUMNS]

    def scores(out):
        return sorted(Store(out).read_images(columns=columns).to_pylist(), key=str)

    ours = scores(tmp_path / "bbbc")
    assert len(ours) == len(NAMES) and all(r["n_true"] > 20 and r["f1_70"] > 0.5 for r in ours)
    assert ours == scores(tmp_path / "plain")
    wells = Store(tmp_path / "bbbc").read_objects(columns=["well"]).column("well").to_pylist()
    assert set(wells) == {"A02", "B11", "P24", "C07"}
