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


def unknown_key_message(key: str, known: list[str]) -> str:
    """The line for a key no schema declares: the keys valid next to it, where to read more."""
    hint = f" (valid keys here: {', '.join(known)})" if known else ""
    section = key.split(".")[0] if "." in key else ""
    where = f"hpcseg keys {section}" if section else "hpcseg keys"
    return (
        f"unknown config key '{key}'{hint}; check the spelling, or run `{where}` for every "
        "key with its type and doc"
    )


def _parse_error(err: BaseException) -> str | None:
    """Hydra's override grammar refused a word: which, why, and how to quote a value."""
    if type(err).__name__ != "OverrideParseException":
        return None
    word = str(getattr(err, "override", ""))
    lines = [ln for ln in str(err).splitlines() if not ln.startswith(("Error parsing", "See "))]
    why = re.sub(r" expecting .*", "", lines[0] if lines else "").strip()
    if "=" not in word:
        return f"'{word}' is not an override: write key=value or group=option (`hpcseg --help`)"
    key = word.split("=", 1)[0]
    return (
        f"cannot read the override '{word}' ({why}): a value with characters such as "
        f"( ) [ ] {{ }} , = ~ # ' \" is quoted for Hydra inside quotes for the shell: "
        f"{key}='\"...\"'"
    )


def one_line(exc: BaseException) -> str:
    """The most specific message in the exception chain, as one actionable line."""
    for err in _chain(exc):
        text = str(err)
        m = re.search(r"Key '([^']+)' not in '([^']+)'", text)
        if m:
            return unknown_key_message(_full_key(text) or m.group(1), schema_fields(m.group(2)))
        parse = _parse_error(err)
        if parse:
            return parse
        m = re.search(r"Ambiguous value for argument '([^=']+)=([^']*)'", text)
        if m:
            key, value = m.groups()
            return (
                f"{key}={value} has several values: add -m to run one job per value, or write "
                f"a list {key}=[{value}] or a string {key}='\"{value}\"'"
            )
        m = re.search(r"[Mm]issing mandatory value:? *([\w.]*)", text)
        if m:
            key = _full_key(text) or m.group(1)
            return f"{key} is required: add {key}=<value> on the command line"
        plugin = r"Could not (?:find|load) '(hydra/(?:launcher|sweeper)/)?(submitit_\w+|optuna)'"
        m = re.search(plugin, text)
        if m:
            return (
                f"{m.group(2)} is a Hydra plugin hpcseg does not install by default: "
                "pip install 'hpcseg[sweep]' (hydra-submitit-launcher, hydra-optuna-sweeper)"
            )
        m = re.search(r"Could not find '([^']+)/([^/']+)'", text)
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
