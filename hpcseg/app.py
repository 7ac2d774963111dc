"""One hpcseg job: dataset → resume check → cluster → batches → run.json → summary."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from datetime import UTC, datetime

from omegaconf import OmegaConf

from hpcseg import container, evaluate, provenance
from hpcseg.cluster import start_cluster
from hpcseg.config import ApptainerConfig, Config
from hpcseg.data import sources
from hpcseg.pipeline.sampling import Sampling
from hpcseg.progress import Progress
from hpcseg.runner import RunTotals, run_batches
from hpcseg.runner_mode import is_service_rank, serve_rank
from hpcseg.store import SCORE_COUNT_COLUMNS, Store
from hpcseg.worker import BatchJob

log = logging.getLogger("hpcseg")


def _plain(obj) -> dict:
    """A dataclass config as JSON-ready plain data (enums as their values)."""
    return json.loads(json.dumps(asdict(obj), default=lambda v: getattr(v, "value", str(v))))


def run_job(cfg: Config) -> int:
    """Run the whole job; return the exit code (0 all ok, 1 some images failed)."""
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    resolved = _plain(cfg)
    # what decides the rows: the pipeline and the data's geometry (µm columns, 3-D columns)
    geometry = {k: resolved["dataset"].get(k) for k in ("pixel_size", "ndim", "z_step")}
    fingerprint = provenance.fingerprint({**resolved["pipeline"], **geometry})
    versions = provenance.versions()

    if is_service_rank(cfg.cluster):  # slurm_runner: scheduler and worker ranks only serve
        serve_rank(cfg.cluster, cfg.output.dir)
        return 0

    dataset = sources.resolve(cfg.dataset)
    store = Store(cfg.output.dir)
    done = store.prepare(fingerprint, cfg.output.resume, cfg.output.overwrite)
    launcher, image = _container(cfg, store.root)
    todo = [r for r in dataset.records if r.image_id not in done]
    skipped = len(dataset.records) - len(todo)
    log.info(
        "%d images in dataset '%s'; %d to do, %d already done in %s",
        len(dataset.records),
        cfg.dataset.name,
        len(todo),
        skipped,
        store.root,
    )

    job = BatchJob(
        pipeline=cfg.pipeline,
        max_pixels=cfg.dataset.max_pixels,
        out_dir=str(store.root),
        fingerprint=fingerprint,
        metadata_columns=tuple(dataset.metadata_columns),
        file_metadata={
            b"hpcseg.config": OmegaConf.to_yaml(resolved).encode(),
            b"hpcseg.versions": json.dumps(versions).encode(),
            b"hpcseg.fingerprint": fingerprint.encode(),
            b"hpcseg.container": json.dumps(image).encode(),
        },
        compression=cfg.output.compression,
        save_labels=cfg.output.save_labels,
        ndim=cfg.dataset.ndim,
        sampling=Sampling(cfg.dataset.pixel_size or None, cfg.dataset.z_step or None),
    )
    totals = RunTotals()
    t_compute = time.perf_counter()
    if todo:
        with start_cluster(cfg.cluster, store.root, launcher) as client:
            t_compute = time.perf_counter()
            progress = Progress(len(todo), cfg.runner.progress.value, cfg.runner.log_interval)
            try:
                totals = run_batches(
                    client, todo, job, cfg.runner.batch_size, cfg.runner.retries, progress
                )
            finally:
                progress.close()
    compute_seconds = time.perf_counter() - t_compute
    wall = time.perf_counter() - t0

    ids = {r.image_id for r in dataset.records}
    summary = _summarise(store, ids, skipped, totals, wall, compute_seconds)
    store.write_run_json(
        {
            "hpcseg_version": versions["hpcseg"],
            "fingerprint": fingerprint,
            "config": resolved,
            "versions": versions,
            "host": provenance.host(),
            "container": image,
            "started": started.isoformat(),
            "finished": datetime.now(UTC).isoformat(),
            "summary": summary,
            "failures_this_run": [{"image_id": i, "error": e} for i, e in totals.failures[:1000]],
        }
    )
    _print_summary(summary, store)
    if cfg.output.report:
        from hpcseg.report import write_report

        paths = write_report(store.root)
        print(f"hpcseg: report: {len(paths)} pictures in {store.root / 'report'}", flush=True)
    return 1 if summary["images_failed"] else 0


def _container(cfg: Config, output_dir) -> tuple[list[str] | None, dict | None]:
    """The `apptainer exec ... IMAGE` prefix for workers (None: no container) and provenance."""
    if not isinstance(cfg.container, ApptainerConfig):
        return None, None
    if container.inside_container():  # runner mode, already re-executed inside the image
        return None, container.provenance_inside()
    container.check(cfg.container)
    binds = container.derived_binds(cfg, output_dir)
    return container.exec_prefix(cfg.container, binds), container.provenance(cfg.container)


def _summarise(
    store: Store, ids: set[str], skipped: int, totals: RunTotals, wall: float, compute: float
) -> dict:
    """Totals over the dataset's images as stored (this run and earlier ones)."""
    columns = ["image_id", "status", "n_objects", *SCORE_COUNT_COLUMNS]
    table = store.read_images(columns=columns)
    rows = table.to_pylist() if table is not None else []
    ok = [r for r in rows if r["image_id"] in ids and r["status"] == "ok"]
    processed = totals.n_ok + totals.n_failed
    return {
        "accuracy": evaluate.pooled(ok),
        "images_in_dataset": len(ids),
        "images_ok": len(ok),
        "images_failed": len(ids) - len(ok),
        "objects": sum(r["n_objects"] for r in ok),
        "processed_this_run": processed,
        "failed_this_run": totals.n_failed,
        "skipped_already_done": skipped,
        "wall_seconds": round(wall, 3),
        "compute_seconds": round(compute, 3),
        "images_per_second": round(processed / compute, 2) if compute > 0 and processed else 0.0,
    }


def _print_summary(s: dict, store: Store) -> None:
    print(
        f"hpcseg: {s['images_in_dataset']} images: {s['images_ok']} ok, {s['images_failed']} "
        f"failed ({s['processed_this_run']} processed now, {s['skipped_already_done']} already "
        f"done); {s['objects']} objects; wall {s['wall_seconds']:.1f} s "
        f"({s['compute_seconds']:.1f} s on the cluster, {s['images_per_second']:.1f} images/s)",
        flush=True,
    )
    acc = s["accuracy"]
    if acc:
        print(
            f"hpcseg: accuracy over {acc['images_scored']} images with ground truth: "
            f"F1@0.5 {acc['f1_50']:.3f}, F1@0.7 {acc['f1_70']:.3f}, F1@0.9 {acc['f1_90']:.3f}, "
            f"mean F1 {acc['f1_avg']:.3f}; {acc['merges']} merges, {acc['splits']} splits "
            f"({acc['n_pred']} objects found, {acc['n_true']} true)",
            flush=True,
        )
    print(f"hpcseg: results in {store.root}  (objects/, images/, run.json)", flush=True)
