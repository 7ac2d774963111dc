"""What a dataset resolves to: image records, and the helpers every dataset kind shares."""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field

from hpcseg.errors import UserError
from hpcseg.results.tables import RESERVED_COLUMNS

TIFF_SUFFIXES = (".ome.tiff", ".ome.tif", ".tiff", ".tif")


@dataclass(frozen=True)
class ImageRecord:
    """One image to segment; ``image_id`` is its file name without the extension."""

    image_id: str
    path: str
    mask_path: str | None = None
    metadata: tuple[tuple[str, str | None], ...] = ()


@dataclass
class Dataset:
    records: list[ImageRecord]
    metadata_columns: list[str] = field(default_factory=list)


def image_id_of(path: str) -> str:
    """The file name without its (TIFF) extension."""
    name = os.path.basename(path)
    for suffix in TIFF_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return os.path.splitext(name)[0]


def refuse_shared_id(seen: dict[str, str], image_id: str, path: str, ids_are: str) -> None:
    """Record ``path`` under ``image_id`` in ``seen``; refuse a second path with that id."""
    if image_id in seen:
        raise UserError(
            f"two images share the id '{image_id}': {seen[image_id]} and {path}; image ids "
            f"are {ids_are} and must be unique (narrow dataset.path)"
        )
    seen[image_id] = path


def glob_files(pattern: str) -> list[str]:
    """The files (not folders) ``pattern`` matches, sorted; ``**`` recurses."""
    return sorted(
        p for p in glob.glob(os.path.expanduser(pattern), recursive=True) if os.path.isfile(p)
    )


def matches_nothing(key: str, pattern: str) -> UserError:
    """The error for a glob setting that matches no file."""
    return UserError(
        f"{key}='{pattern}' matches no file; check the glob (quote it so the shell does not "
        "expand it) and that the folder is mounted"
    )


def require_match(key: str, pattern: str | None) -> None:
    """Refuse a glob that matches nothing, cheaply (stops at the first match)."""
    if pattern and next(glob.iglob(os.path.expanduser(pattern), recursive=True), None) is None:
        raise matches_nothing(key, pattern)


def metadata_pattern(regex: str | None, key: str) -> tuple[re.Pattern | None, list[str]]:
    """The compiled file-name regex and its named groups (the metadata columns)."""
    if not regex:
        return None, []
    try:
        pattern = re.compile(regex)
    except re.error as exc:
        raise UserError(f"{key} is not a valid regex: {exc}") from None
    columns = list(pattern.groupindex)
    if not columns:
        raise UserError(f"{key} has no named groups; use e.g. '(?P<well>[A-P][0-9]{{2}})'")
    clash = RESERVED_COLUMNS.intersection(columns)
    if clash:
        raise UserError(f"{key} group names {sorted(clash)} clash with columns")
    return pattern, columns
