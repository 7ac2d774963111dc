"""What a run has to do in its folder: images to do, done, changed, to retry, to relabel.

Decided on the driver before anything starts, from the dataset's records and the store's view
of the folder; also what ``--dry-run`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hpcseg.config.schemas import Config
from hpcseg.data.identity import changed
from hpcseg.data.records import ImageRecord
from hpcseg.errors import UserError
from hpcseg.results.store import Prepared, Store

LISTED = 20  # ids shown per category by --dry-run and in refusals


@dataclass
class WorkPlan:
    todo: list[ImageRecord] = field(default_factory=list)  # everything to process now
    done: list[str] = field(default_factory=list)  # stored and still valid: skipped
    changed: list[tuple[str, str]] = field(default_factory=list)  # (id, why) input changed
    retry: list[str] = field(default_factory=list)  # failed before, retried (retry_failed)
    relabel: list[str] = field(default_factory=list)  # ok, but save_labels and no label image
    failed_kept: list[str] = field(default_factory=list)  # failed before, not retried
    prepared: Prepared = field(default_factory=Prepared)

    @property
    def forget(self) -> set[str]:
        """Stored images whose rows are replaced by this run."""
        return {i for i, _ in self.changed} | set(self.retry) | set(self.relabel)


def plan_work(
    cfg: Config, store: Store, records: list[ImageRecord], fingerprint: str, dry_run: bool = False
) -> WorkPlan:
    """Prepare the folder (verify, clean, refuse a foreign configuration) and sort the records."""
    out = cfg.output
    prepared = store.prepare(fingerprint, out.resume, out.overwrite, dry_run=dry_run)
    plan = WorkPlan(prepared=prepared)
    with_labels = store.labels_of(prepared.stored) if out.save_labels else set()
    for record in records:
        stored = prepared.stored.get(record.image_id)
        if stored is None:
            plan.todo.append(record)
            continue
        why = changed(vars(stored), record.path, str(out.identity))
        if why:
            plan.changed.append((record.image_id, why))
        elif stored.status != "ok" and out.retry_failed:
            plan.retry.append(record.image_id)
        elif stored.status == "ok" and out.save_labels and record.image_id not in with_labels:
            plan.relabel.append(record.image_id)
        else:
            (plan.done if stored.status == "ok" else plan.failed_kept).append(record.image_id)
            continue
        plan.todo.append(record)
    if plan.changed and not out.redo_changed and not dry_run:
        image_id, why = plan.changed[0]
        raise UserError(
            f"output.dir={store.root} holds results of {len(plan.changed)} image(s) whose input "
            f"changed since (e.g. '{image_id}': {why}); use a new output.dir, or "
            "output.redo_changed=true to redo them"
        )
    return plan


def describe(plan: WorkPlan, cfg: Config) -> list[str]:
    """The lines ``--dry-run`` prints."""

    def ids(items: list[str]) -> str:
        more = f" ... (+{len(items) - LISTED})" if len(items) > LISTED else ""
        return ", ".join(items[:LISTED]) + more

    new = [r.image_id for r in plan.todo if r.image_id not in plan.forget]
    lines = [
        f"hpcseg: dry run in {cfg.output.dir}: {len(plan.todo)} image(s) would run, "
        f"{len(plan.done)} already done"
    ]
    if new:
        lines.append(f"  to do ({len(new)}): {ids(new)}")
    if plan.changed:
        action = "redone" if cfg.output.redo_changed else "refused (output.redo_changed=true)"
        lines.append(
            f"  changed inputs, {action} ({len(plan.changed)}): "
            + ids([f"{i} [{why}]" for i, why in plan.changed])
        )
    if plan.retry:
        lines.append(f"  failed before, retried ({len(plan.retry)}): {ids(plan.retry)}")
    if plan.failed_kept:
        lines.append(
            f"  failed before, kept ({len(plan.failed_kept)}; output.retry_failed=true retries "
            f"them): {ids(plan.failed_kept)}"
        )
    if plan.relabel:
        lines.append(f"  done but without a label image, redone ({len(plan.relabel)})")
    for what in plan.prepared.quarantined:
        lines.append(f"  damaged, would be quarantined and redone: {what}")
    if plan.prepared.removed:
        lines.append(f"  uncommitted leftovers that would be removed: {len(plan.prepared.removed)}")
    return lines
