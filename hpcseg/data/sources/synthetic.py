"""``dataset=synthetic`` (and ``synthetic3d``): frames generated once into a cache folder."""

from __future__ import annotations

from pathlib import Path

from hpcseg.config.schemas import SyntheticDatasetConfig
from hpcseg.data import synthetic
from hpcseg.data.records import Dataset, ImageRecord, image_id_of
from hpcseg.errors import UserError
from hpcseg.pipeline.sampling import Sampling

SCHEMA = SyntheticDatasetConfig


def _folder(cfg: SyntheticDatasetConfig) -> tuple[Path, tuple[int, ...], float]:
    shape = (cfg.height, cfg.width) if cfg.ndim == 2 else (cfg.depth, cfg.height, cfg.width)
    z_ratio = Sampling(cfg.pixel_size, cfg.z_step).spacing(3)[0]
    return synthetic.synthetic_folder(cfg.cache_dir, cfg.seed, shape, z_ratio), shape, z_ratio


def resolve(cfg: SyntheticDatasetConfig) -> Dataset:
    folder, shape, z_ratio = _folder(cfg)
    try:
        paths = synthetic.ensure_frames(folder, cfg.seed, cfg.n_images, shape, z_ratio)
    except OSError as exc:
        raise UserError(
            f"cannot write synthetic frames to {folder} ({exc.strerror}); "
            "set dataset.cache_dir or HPCSEG_CACHE_DIR to a writable folder"
        ) from None
    records = [
        ImageRecord(image_id_of(str(p)), str(p), str(folder / "masks" / p.name)) for p in paths
    ]
    return Dataset(records)


def check(cfg: SyntheticDatasetConfig) -> None:
    """Nothing to check before generating."""


def folders(cfg: SyntheticDatasetConfig) -> list[Path]:
    """The cache folder the frames live in."""
    if cfg.cache_dir:
        return [Path(cfg.cache_dir).expanduser().absolute()]
    return [synthetic.default_cache_dir()]
