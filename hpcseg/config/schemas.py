"""Configuration schemas: the one place where types, defaults, ranges and docs live.

The YAML files under ``conf/`` only pick a schema and set preset values; Hydra merges them into
these dataclasses, so an unknown key or a wrong type is rejected while composing. Numeric ranges
are declared here as field metadata and checked by :mod:`hpcseg.config.validate`.

Plain dataclasses: nothing here imports Hydra or OmegaConf, so workers that receive a pipeline
config do not import them either. Each kind of dataset, cluster and container is one schema
class; :data:`SCHEMAS` finds them by their group's base class and their ``name``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

# OmegaConf's marker of a value that must be given (omegaconf.MISSING is this same string)
MISSING = "???"


def choices(name: str, members: str) -> type[StrEnum]:
    """A string enum of the space-separated ``members`` (each member's value is its name)."""
    return StrEnum(name, {m: m for m in members.split()}, module=__name__)


def param(default: Any, doc: str, *, ge: float | None = None, le: float | None = None) -> Any:
    """A config field with a one-line doc and an optional inclusive range [ge, le]."""
    meta = {"doc": doc, "ge": ge, "le": le}
    if isinstance(default, list | dict):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


# ----------------------------------------------------------------------------------- dataset
@dataclass
class DatasetConfig:
    """What every dataset has."""

    name: str = param(MISSING, "Dataset kind (the config group option).")
    max_pixels: int = param(
        2**28, "Images with more pixels than this fail (decompression-bomb cap).", ge=1
    )
    pixel_size: float | None = param(
        None, "Micrometres per pixel; adds µm columns, allows the µm size filters.", ge=0.0
    )
    ndim: int = param(2, "2: frames (Y, X); 3: z-stacks (Z, Y, X), one TIFF per stack.", ge=2, le=3)
    z_step: float | None = param(
        None, "3-D: micrometres between planes (anisotropic voxels); needs pixel_size.", ge=0.0
    )
    channel: str | None = param(
        None,
        "Channel of a multi-channel image: an index (0, 1, ...) or an OME channel name; "
        "null = the image must have one.",
    )


@dataclass
class SyntheticDatasetConfig(DatasetConfig):
    """BBBC039-like frames with ground truth, generated once into a cache folder."""

    name: str = "synthetic"
    n_images: int = param(16, "Number of frames.", ge=1, le=1_000_000)
    seed: int = param(0, "Seed; frame i depends only on (seed, i).", ge=0)
    height: int = param(520, "Frame height in pixels.", ge=64, le=8192)
    width: int = param(696, "Frame width in pixels.", ge=64, le=8192)
    depth: int = param(40, "3-D (ndim=3): planes per stack.", ge=8, le=1024)
    cache_dir: str | None = param(
        None, "Where frames are generated; default $HPCSEG_CACHE_DIR or ~/.cache/hpcseg."
    )


@dataclass
class TiffGlobDatasetConfig(DatasetConfig):
    """A glob of TIFF files, optional ground-truth masks matched by file name."""

    name: str = "tiff_glob"
    path: str = param(MISSING, "Glob of input TIFFs, e.g. '/data/*.tif' (** allowed).")
    masks: str | None = param(None, "Glob of instance masks, matched to images by file name.")
    metadata_regex: str | None = param(
        None, "Regex with named groups applied to each file name; groups become columns."
    )


Split = choices("Split", "all training validation test")


@dataclass
class ZarrDatasetConfig(DatasetConfig):
    """Zarr v2/v3 arrays or OME-Zarr images, one image per store, read lazily chunk by chunk
    (for ``mode=tiled``: slides, plate mosaics, light-sheet volumes)."""

    name: str = "zarr"
    path: str = param(MISSING, "Glob of Zarr stores (folders), e.g. '/data/*.ome.zarr'.")
    array: str | None = param(
        None,
        "Path of the array inside each store; null = the OME-Zarr multiscale level 0, or the "
        "store itself when it is one array.",
    )


@dataclass
class BBBC039DatasetConfig(DatasetConfig):
    """The public BBBC039 set as unzipped: images/*.tif, masks/*.png, metadata/<split>.txt."""

    name: str = "bbbc039"
    root: str = param(MISSING, "Folder holding the set's images/, masks/ and metadata/ folders.")
    split: Split = param(Split.all, "all | training | validation | test (metadata/<split>.txt).")


# ------------------------------------------------------------------------------------- mode
@dataclass
class ModeConfig:
    """How an image meets the workers: whole (many-images mode) or in chunks (tiled)."""

    name: str = param(MISSING, "Mode kind (the config group option).")


@dataclass
class ImagesModeConfig(ModeConfig):
    """Each image whole on one worker, many images at once (frames, plates of small fields)."""

    name: str = "images"


@dataclass
class TiledModeConfig(ModeConfig):
    """Each image in chunks across the workers, with results equal to the whole image's."""

    name: str = "tiled"
    chunk_size: int = param(
        2048,
        "Chunk edge in pixels along Y and X (a worker holds a few chunks and their halos).",
        ge=16,
        le=65536,
    )
    chunk_planes: int = param(64, "3-D: chunk depth in planes (Z).", ge=4, le=65536)
    max_pixels: int = param(
        2**40, "Tiled images with more pixels (voxels) than this fail (never read whole).", ge=1
    )


@dataclass
class AutoModeConfig(TiledModeConfig):
    """Tiled for the images above ``tile_above`` pixels, whole for the rest."""

    name: str = "auto"
    tile_above: int = param(
        2**25, "auto: images with more pixels (voxels) than this are tiled (2**25: 5793²).", ge=1
    )


# ---------------------------------------------------------------------------------- pipeline
SmoothMethod = choices("SmoothMethod", "none gaussian")


ThresholdMethod = choices("ThresholdMethod", "otsu log_otsu li local_gaussian")


Opening = choices("Opening", "none cross disk")


SplitMethod = choices("SplitMethod", "none watershed")


Landscape = choices("Landscape", "distance intensity distance_intensity")


@dataclass
class SmoothConfig:
    method: SmoothMethod = param(SmoothMethod.gaussian, "Denoising filter.")
    sigma: float | None = param(
        None,
        "Gaussian sigma in pixels (frame plane); null = from the diameter: max(1, d/20), and "
        "d/20 for nuclei up to 12 px across; times the noise's factor (contrast_to_noise).",
        ge=0.0,
        le=100.0,
    )
    contrast_to_noise: float = param(
        3.0,
        "A derived sigma (null), 2-D frames: a frame whose nuclei stand fewer than this many "
        "noise deviations above its background (measured per frame, an images column) gets "
        "sigma x this / its ratio (in 12 % steps, at most 4x: photon-starved frames); 0 = off.",
        ge=0.0,
        le=1000.0,
    )
    keep_dtype: bool = param(False, "Keep the input dtype (the blog's behaviour) or use float32.")


@dataclass
class ThresholdConfig:
    method: ThresholdMethod = param(
        ThresholdMethod.log_otsu,
        "otsu | log_otsu (Otsu on the log of intensities above one count: keeps dim nuclei) | "
        "li | local_gaussian.",
    )
    block_size: int | None = param(
        None, "local_gaussian: block size in pixels (odd); null = the whole frame (the blog).", ge=3
    )
    offset: float = param(0.0, "local_gaussian: subtracted from the local threshold.")
    correction: float = param(
        1.0, "otsu/log_otsu/li: the global threshold is multiplied by this.", ge=0.0
    )
    lower: float | None = param(
        None,
        "otsu/log_otsu/li: move the threshold this fraction of the way down to the background "
        "level (the histogram's mode below it; log units for log_otsu), so dim nuclei and "
        "blurred edges enter the mask and the per-object cut trims them; 0 = the method's own; "
        "null = 0.5 for 2-D frames, 0 for z-stacks.",
        ge=0.0,
        le=1.0,
    )
    noise: float = param(
        3.0,
        "otsu/log_otsu/li: a lowered threshold stays at least this many standard deviations "
        "of the background (read on the histogram's flank below its mode) above it.",
        ge=0.0,
    )
    floor: float | None = param(
        None,
        "otsu/log_otsu/li: intensities at or below this are background and left out of the "
        "histogram (zero padding, a background subtracted to 0); null = one count: 1 for "
        "integer images, 2^-16 for float ones (scaled to [0, 1]; set 1 for float images in "
        "counts). Pixels at 0 never count.",
        ge=0.0,
    )


@dataclass
class CleanConfig:
    opening: Opening = param(Opening.none, "Binary opening of the mask before labelling.")
    opening_radius: int = param(1, "Radius of the disk opening (pixels).", ge=1, le=50)
    fill_holes: bool = param(True, "Fill holes inside objects.")
    min_area: int | None = param(
        None,
        "Remove objects smaller than this many pixels (voxels in 3-D); null = from the diameter "
        "(30 at d=20, with the nucleus' area or volume).",
        ge=0,
    )
    min_area_um2: float | None = param(
        None, "2-D: remove objects smaller than this many µm² (needs dataset.pixel_size).", ge=0.0
    )
    min_volume_um3: float | None = param(
        None, "3-D: remove objects smaller than this many µm³ (needs dataset.pixel_size).", ge=0.0
    )
    exclude_border: bool = param(False, "Drop objects that touch the image border.")


@dataclass
class SplitConfig:
    method: SplitMethod = param(SplitMethod.watershed, "How touching nuclei are split.")
    min_distance: int | None = param(
        None,
        "watershed: minimum distance in pixels between nucleus centres (seeds); null = d/5.",
        ge=1,
        le=500,
    )
    smoothing: float | None = param(
        None, "watershed: Gaussian sigma applied to the landscape; null = d/20.", ge=0.0
    )
    landscape: Landscape = param(
        Landscape.distance,
        "watershed on: distance (to the object edge) | intensity | distance_intensity (both).",
    )


RefineMethod = choices("RefineMethod", "auto none components objects")


@dataclass
class RefineConfig:
    method: RefineMethod = param(
        RefineMethod.auto,
        "Per-object thresholds: auto (objects; components without a split) | none | "
        "components (each connected component before the split) | objects (after a first "
        "split, then split again: more accurate, slower: README Benchmarks).",
    )
    fraction: float | None = param(
        None,
        "Object threshold = background + fraction x (object's bright level - background); "
        "null = 0.4 for objects, 0.3 for components.",
        ge=0.0,
        le=1.0,
    )
    margin: int | None = param(
        None,
        "Pixels around the objects left out of their background estimate; null = 3d/20.",
        ge=1,
        le=500,
    )
    window: int | None = param(
        None,
        "Background window in pixels (odd) around each pixel; null = about 1.5d (31 at d=20).",
        ge=3,
        le=2001,
    )
    peak_smoothing: float | None = param(
        None,
        "Gaussian sigma (pixels) of the image each object's bright level is measured on "
        "(objects method): chromatin texture and photon noise widen the spread at finer "
        "scales and put the cut in the texture's valleys; 0 = the smoothed image; null = d/10 "
        "for 2-D images, 0 for z-stacks (where it lowered F1@0.7).",
        ge=0.0,
        le=100.0,
    )


@dataclass
class MeasureConfig:
    shape_features: bool = param(
        False, "Also perimeter, Euler number and solidity (per-object crops: ~10x slower)."
    )


@dataclass
class LabelConfig:
    connectivity: int = param(1, "1 = edge neighbours (the cross), 2 = also diagonals.", ge=1, le=2)


ArrayBackend = choices("ArrayBackend", "auto numpy cupy")


@dataclass
class PipelineConfig:
    """smooth → threshold → clean → split → label → measure; defaults are the `nuclei` preset."""

    name: str = param("nuclei", "Preset name (recorded in the outputs).")
    require_integer_input: bool = param(True, "Fail images whose pixels are not integers.")
    backend: ArrayBackend = param(
        ArrayBackend.auto,
        "Array library of the stages: auto (CuPy on the workers of a GPU cluster that see a "
        "GPU, else NumPy) | numpy | cupy (fails where CuPy or a GPU is missing).",
    )
    diameter: str = param(
        "auto",
        "Typical nucleus diameter: auto (estimated per image from its foreground), pixels "
        "('24') or micrometres ('7.5um', needs dataset.pixel_size); the lengths left null "
        "below are derived from it.",
    )
    smooth: SmoothConfig = field(default_factory=SmoothConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    refine: RefineConfig = field(default_factory=RefineConfig)
    label: LabelConfig = field(default_factory=LabelConfig)
    measure: MeasureConfig = field(default_factory=MeasureConfig)


# ----------------------------------------------------------------------------------- cluster
@dataclass
class ClusterConfig:
    name: str = param(MISSING, "Cluster kind (the config group option).")


@dataclass
class LocalClusterConfig(ClusterConfig):
    """A `distributed.LocalCluster` of worker processes on this machine."""

    name: str = "local"
    n_workers: int | None = param(None, "Worker processes; null = one per CPU core.", ge=1)
    threads_per_worker: int = param(1, "Threads per worker process.", ge=1)
    memory_limit: str = param("auto", "Per-worker memory limit ('auto', '4GiB', ...).")
    dashboard_address: str = param("127.0.0.1:0", "Dashboard bind address; localhost by default.")


@dataclass
class JobQueueClusterConfig(ClusterConfig):
    """Workers as batch jobs through dask-jobqueue; the driver runs where you start hpcseg."""

    queue: str | None = param(None, "Partition (SLURM -p) or queue (PBS -q); null = default.")
    account: str | None = param(None, "Account/project charged for the jobs (-A).")
    cores: int = param(1, "CPU cores per job.", ge=1)
    processes: int = param(1, "Dask worker processes per job (cores are split among them).", ge=1)
    memory: str = param("2GiB", "Memory per job ('4GiB', '500MB', ...).")
    walltime: str = param("01:00:00", "Wall-time limit per job (HH:MM:SS).")
    jobs: int = param(2, "Jobs to run when adapt=false.", ge=1)
    adapt: bool = param(False, "Scale adaptively between min_jobs and max_jobs.")
    min_jobs: int = param(1, "adapt: fewest jobs.", ge=0)
    max_jobs: int = param(10, "adapt: most jobs.", ge=1)
    job_name: str = param("hpcseg-worker", "Job name shown by squeue/qstat.")
    job_directives: list[str] = param([], "Extra scheduler directives, e.g. ['--qos=long'].")
    prologue: list[str] = param([], "Shell lines run before the worker, e.g. ['module load x'].")
    interface: str | None = param(None, "Network interface for scheduler and workers (ib0, lo).")
    local_directory: str | None = param(None, "Node-local scratch for worker spill files.")
    log_directory: str | None = param(None, "Worker job logs; null = <output.dir>/logs/workers.")
    worker_lifetime: str | None = param(
        None, "Retire workers after this long ('55m') so jobs end before walltime; null = never."
    )
    lifetime_stagger: str = param(
        "5m", "Random spread of worker_lifetime, so jobs do not end together."
    )
    tls: bool = param(True, "Encrypt and authenticate scheduler-worker traffic (temporary certs).")
    dashboard_address: str = param("127.0.0.1:0", "Dashboard bind address; localhost by default.")
    worker_timeout: float = param(
        300.0, "Seconds to wait for the first worker before failing.", ge=1
    )
    python: str | None = param(None, "Worker Python command; null = this Python.")


@dataclass
class SlurmClusterConfig(JobQueueClusterConfig):
    name: str = "slurm"


@dataclass
class PBSClusterConfig(JobQueueClusterConfig):
    name: str = "pbs"
    resource_spec: str | None = param(
        None, "PBS -l resource line; null = select=1:ncpus=<cores>:mem=<memory>."
    )


class GpuClusterConfig:
    """Marks the GPU cluster kinds: dask-cuda's workers, one per GPU (with container=apptainer
    they run with --nv)."""


@dataclass
class LocalGpuClusterConfig(GpuClusterConfig, ClusterConfig):
    """dask-cuda's `LocalCUDACluster`: one worker process per GPU of this machine."""

    name: str = "local_gpu"
    devices: list[str] | None = param(
        None, "GPUs to use (CUDA_VISIBLE_DEVICES entries), e.g. [0,1]; null = every GPU visible."
    )
    threads_per_worker: int = param(1, "Threads per worker (per GPU).", ge=1)
    memory_limit: str = param("auto", "Host memory limit per worker ('auto', '16GiB', ...).")
    dashboard_address: str = param("127.0.0.1:0", "Dashboard bind address; localhost by default.")


@dataclass
class GpuJobQueueClusterConfig(GpuClusterConfig, JobQueueClusterConfig):
    """What the GPU batch-job kinds add: GPUs per job and the worker command."""

    gpus: int = param(
        1, "GPUs per job; dask-cuda starts one worker per GPU (cores, memory shared).", ge=1
    )
    worker_module: str = param(
        "dask_cuda.cli", "The job's worker command (python -m <module>): dask-cuda's worker."
    )


@dataclass
class SlurmGpuClusterConfig(GpuJobQueueClusterConfig, SlurmClusterConfig):
    """Workers as SLURM jobs on GPU nodes: dask-cuda's worker, --gres=gpu:<gpus> per job."""

    name: str = "slurm_gpu"


@dataclass
class PBSGpuClusterConfig(GpuJobQueueClusterConfig, PBSClusterConfig):
    """Workers as PBS jobs on GPU nodes: dask-cuda's worker, ngpus=<gpus> per job."""

    name: str = "pbs_gpu"


@dataclass
class SlurmRunnerConfig(ClusterConfig):
    """All inside one sbatch allocation: rank 0 scheduler, rank 1 the driver, the rest workers."""

    name: str = "slurm_runner"
    shared_dir: str | None = param(
        None,
        "Shared folder for the scheduler file and TLS certificates; null = <output.dir>/.runner.",
    )
    tls: bool = param(True, "Encrypt and authenticate scheduler-worker traffic (temporary certs).")
    interface: str | None = param(None, "Network interface for scheduler and workers.")
    dashboard_address: str = param("127.0.0.1:0", "Dashboard bind address; localhost by default.")
    worker_timeout: float = param(
        300.0,
        "Seconds to wait for the scheduler's certificates and file, then the first worker.",
        ge=1,
    )
    worker_class: str | None = param(
        None,
        "Worker class of the worker ranks; null = Dask's; dask_cuda.CUDAWorker on GPU nodes "
        "(one worker per GPU the rank sees; jobs/hpcseg-gpu.sbatch sets it).",
    )


# --------------------------------------------------------------------------------- container
@dataclass
class ContainerConfig:
    name: str = param("none", "Container kind (the config group option).")


@dataclass
class ApptainerConfig(ContainerConfig):
    """Workers (or, in runner mode, every rank) run inside an Apptainer image."""

    name: str = "apptainer"
    image: str = param(MISSING, "Path of the .sif image (containers/build.sh builds one).")
    binds: list[str] = param(
        [], "Extra binds 'src[:dst[:ro]]'; dataset, masks, output and cache folders are added."
    )
    env: dict[str, str] = param({}, "Environment variables set inside the container.")
    cleanenv: bool = param(True, "Start from a clean environment (--cleanenv).")
    nv: bool = param(False, "Expose NVIDIA GPUs (--nv); for GPU nodes.")
    flags: list[str] = param([], "Extra `apptainer exec` flags, e.g. ['--contain'].")
    executable: str = param("apptainer", "The apptainer (or singularity) command.")


# -------------------------------------------------------------------------- runner, output
ProgressMode = choices("ProgressMode", "auto bar log none")


@dataclass
class RunnerConfig:
    batch_size: int = param(8, "Images per task; each batch writes one Parquet part.", ge=1)
    retries: int = param(
        2,
        "When a worker dies (memory limit, crash), its batch's images are run one by one; an "
        "image whose worker dies again is retried this many more times, then fails.",
        ge=0,
        le=20,
    )
    image_timeout: float | None = param(
        None,
        "Seconds one image may take (read + segment + measure); longer: its worker is "
        "restarted and the image fails. null = no limit.",
        ge=1.0,
    )
    stop_grace: float = param(
        60.0,
        "On SIGTERM/SIGINT, seconds to let batches in flight finish (a second signal stops "
        "at once).",
        ge=0.0,
    )
    progress: ProgressMode = param(
        ProgressMode.auto, "auto = live bar on a terminal, log lines otherwise."
    )
    log_interval: float = param(10.0, "Seconds between progress log lines.", ge=0.1)
    dry_run: bool = param(
        False, "List the images that would run (to do / done / changed) and exit; --dry-run."
    )


IdentityMode = choices("IdentityMode", "stat sha256")


@dataclass
class OutputConfig:
    dir: str = param("hpcseg-output/${pipeline.name}", "Output folder (Parquet dataset).")
    resume: bool = param(True, "Skip images already done by the same pipeline in `dir`.")
    overwrite: bool = param(False, "Delete earlier results in `dir` first.")
    retry_failed: bool = param(False, "Redo the images that failed in `dir` (only those).")
    redo_changed: bool = param(
        False, "Redo done images whose input file changed (else such a rerun is refused)."
    )
    identity: IdentityMode = param(
        IdentityMode.stat,
        "How an input is recognised on resume: stat (path, size, mtime) | sha256 (also its "
        "content hash; reads every input).",
    )
    wait_for_lock: bool = param(
        False, "Wait for another run writing `dir` to finish instead of refusing to start."
    )
    compression: str = param("zstd", "Parquet compression codec.")
    report: bool = param(False, "Write the report PNGs (hpcseg report) when the run ends.")
    save_labels: bool = param(
        False, "Also write each label image as <dir>/labels/<image_id>.tif (zlib-compressed)."
    )


# ------------------------------------------------------------------------------------- sweep
Objective = choices("Objective", "f1_avg f1_50 f1_70 f1_90")


@dataclass
class SweepConfig:
    """Sweeps (``hpcseg -m``): what an optimising sweeper maximises, how the points share a
    cluster, and each point's SLURM job under ``hydra/launcher=slurm`` (the names of
    cluster=slurm; conf/hydra/launcher/slurm.yaml maps them onto submitit's)."""

    objective: Objective = param(
        Objective.f1_avg,
        "The score each point returns to an optimising sweeper (hydra/sweeper=optuna), pooled "
        "over the dataset's ground truth: f1_avg (mean F1 over IoU 0.5-0.9) | f1_50 | f1_70 "
        "| f1_90. Higher is better.",
    )
    reuse_cluster: bool = param(
        True,
        "Points run in this process (Hydra's basic launcher) share one Dask cluster instead "
        "of starting one each.",
    )
    queue: str | None = param(
        None, "hydra/launcher=slurm: partition of the point jobs (-p); null = the default."
    )
    account: str | None = param(None, "hydra/launcher=slurm: account charged (-A).")
    cores: int = param(
        2,
        "hydra/launcher=slurm: CPU cores per point job; its local Dask cluster gets one "
        "worker per core.",
        ge=1,
    )
    memory: str = param(
        "4GiB", "hydra/launcher=slurm: memory per point job ('8GiB', '500MB'; whole GiB, up)."
    )
    walltime: str = param(
        "01:00:00", "hydra/launcher=slurm: wall-time limit per point job (HH:MM:SS, D-HH:MM:SS)."
    )
    max_parallel: int = param(
        64, "hydra/launcher=slurm: most point jobs running at once (the array's %N).", ge=1
    )


@dataclass
class Config:
    dataset: Any = MISSING
    mode: Any = MISSING
    cluster: Any = MISSING
    container: Any = MISSING
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)


def _kinds(base: type) -> dict[str, type]:
    """The schema of every kind of a group: ``base`` and its subclasses that have a name."""
    found, todo = {}, [base]
    while todo:
        cls = todo.pop(0)
        todo += cls.__subclasses__()
        name = cls.__dataclass_fields__["name"].default
        if name != MISSING:
            found[name] = cls
    return found


# group -> kind name -> schema class (the config group options' schemas)
SCHEMAS: dict[str, dict[str, type]] = {
    "dataset": _kinds(DatasetConfig),
    "mode": _kinds(ModeConfig),
    "cluster": _kinds(ClusterConfig),
    "container": _kinds(ContainerConfig),
}


def schema_fields(class_name: str) -> list[str]:
    """The field names of the schema dataclass called ``class_name`` ([] if there is none)."""
    for obj in globals().values():
        if isinstance(obj, type) and obj.__name__ == class_name and dataclasses.is_dataclass(obj):
            return [f.name for f in dataclasses.fields(obj)]
    return []


def as_plain(obj: Any) -> dict:
    """A config dataclass as JSON-ready plain data (enums as their values)."""
    return json.loads(json.dumps(asdict(obj), default=lambda v: getattr(v, "value", str(v))))
