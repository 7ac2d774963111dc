"""An input file's identity: what says, on resume, that an image is the one processed before."""

from __future__ import annotations

import hashlib
import os

HASH_BLOCK = 1 << 20


def file_identity(path: str, mode: str = "stat") -> dict:
    """``input_bytes``, ``input_mtime_ns`` and, with ``mode='sha256'``, ``input_sha256``
    (None where the file cannot be read: the reader reports that as the image's error)."""
    try:
        st = os.stat(path)
    except OSError:
        return {"input_bytes": None, "input_mtime_ns": None, "input_sha256": None}
    digest = None
    if mode == "sha256":
        h = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(HASH_BLOCK), b""):
                    h.update(block)
            digest = h.hexdigest()
        except OSError:
            digest = None
    return {"input_bytes": st.st_size, "input_mtime_ns": st.st_mtime_ns, "input_sha256": digest}


def changed(stored: dict, path: str, mode: str = "stat") -> str | None:
    """Why the file at ``path`` is not the input ``stored`` (its path and identity) describes,
    or None when it is the same."""
    if stored.get("path") and os.path.abspath(stored["path"]) != os.path.abspath(path):
        return f"path {stored['path']} -> {path}"
    now = file_identity(path, mode)
    if now["input_bytes"] is None:
        return "the file is gone" if stored.get("input_bytes") is not None else None
    if stored.get("input_bytes") is not None and stored["input_bytes"] != now["input_bytes"]:
        return "size changed"
    if mode == "sha256" and stored.get("input_sha256"):  # the content decides, not the mtime
        return None if stored["input_sha256"] == now["input_sha256"] else "content changed"
    if (
        stored.get("input_mtime_ns") is not None
        and stored["input_mtime_ns"] != now["input_mtime_ns"]
    ):
        return "modification time changed"
    return None
