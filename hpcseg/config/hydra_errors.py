"""Turn Hydra/OmegaConf composition errors into one line that names the key and the fix."""

from __future__ import annotations

import re

from hpcseg.config.schemas import schema_fields


def _chain(exc: BaseException) -> list[BaseException]:
    out = []
    while exc is not None and exc not in out:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _full_key(text: str) -> str | None:
    m = re.search(r"full_key:\s*(\S+)", text)
    return m.group(1) if m else None


def one_line(exc: BaseException) -> str:
    """The most specific message in the exception chain, as one actionable line."""
    for err in _chain(exc):
        text = str(err)
        m = re.search(r"Key '([^']+)' not in '([^']+)'", text)
        if m:
            key = _full_key(text) or m.group(1)
            known = schema_fields(m.group(2))
            hint = f" (valid keys here: {', '.join(known)})" if known else ""
            return (
                f"unknown config key '{key}'{hint}; check the spelling, "
                "or run `hpcseg --cfg job` to list every key"
            )
        m = re.search(r"[Mm]issing mandatory value:? *([\w.]*)", text)
        if m:
            key = _full_key(text) or m.group(1)
            return f"{key} is required: add {key}=<value> on the command line"
        m = re.search(r"Could not find '([^/']+)/([^']+)'", text)
        if m:
            opts = re.findall(r"^\t(\S+)$", text, flags=re.M)
            avail = f"; available: {', '.join(opts)}" if opts else ""
            return f"{m.group(1)}={m.group(2)}: no such {m.group(1)} option{avail}"
        if type(err).__name__ == "ValidationError":
            key = _full_key(text)
            first = text.splitlines()[0]
            return f"{key}: {first}" if key else first
    first = str(exc).strip().splitlines()
    msg = "; ".join(line.strip() for line in first if line.strip())
    return msg or type(exc).__name__
