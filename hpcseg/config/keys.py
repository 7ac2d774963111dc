"""The config keys as the schemas declare them: their types, the keys a composed config may
hold, and ``hpcseg keys [PREFIX]`` (every key's type, default, range and doc).

Reads :mod:`hpcseg.config.schemas` only (no Hydra): a key is ``section.field`` for the plain
sections (``pipeline``, ``runner``, ``output``) and ``group.field`` for the config groups
(``dataset``, ``cluster``, ``container``), whose fields depend on the kind selected.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Iterator
from typing import Any

from hpcseg.config.schemas import MISSING, SCHEMAS, Config


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_schema(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def leaf_types(key: str) -> list[Any]:
    """The declared type of ``key`` in every schema that has it (a group key: in each kind
    that has the field); [] if no schema has it or it names a section rather than a value."""
    parts = key.split(".")
    current: list[type] = [Config]
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        found: list[Any] = []
        for cls in current:
            tp = _hints(cls).get(part)
            if tp is None:
                continue
            if tp is Any and part in SCHEMAS and cls is Config:
                found += list(SCHEMAS[part].values())
            else:
                found.append(tp)
        if last:
            return [t for t in found if not _is_schema(t)]
        current = [t for t in found if _is_schema(t)]
        if not current:
            return []
    return []


def _non_none(tp: Any) -> list[Any]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(tp) if a is not type(None)]
    return [tp]


def is_string_key(key: str) -> bool:
    """Whether every schema that has ``key`` declares it a string (``str`` or ``str | None``),
    so a value that Hydra's grammar reads as a bool or a number is meant as its text."""
    found = leaf_types(key)
    return bool(found) and all(_non_none(t) == [str] for t in found)


def allows_none(tp: Any) -> bool:
    """Whether the field type ``tp`` is ``X | None``."""
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in (
        typing.get_args(tp)
    )


def unknown_key(data: dict, schema: type = Config, prefix: str = "") -> tuple[str, list] | None:
    """The first key of the plain composed ``data`` that ``schema`` does not declare, with the
    keys valid next to it; None when every key is known. Group nodes are checked against the
    kind their ``name`` selects; dict-valued fields (``container.env``) hold any key."""
    hints = _hints(schema)
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in hints:
            return full, list(hints)
        tp = hints[key]
        if tp is Any and schema is Config and key in SCHEMAS:
            kind = value.get("name") if isinstance(value, dict) else None
            tp = SCHEMAS[key].get(kind) if isinstance(kind, str) else None
        if _is_schema(tp) and isinstance(value, dict):
            found = unknown_key(value, tp, f"{full}.")
            if found:
                return found
    return None


# ------------------------------------------------------------------------------ hpcseg keys
def _type_name(tp: Any) -> str:
    parts = []
    for t in _non_none(tp):
        if isinstance(t, type) and issubclass(t, enum.Enum):
            parts.append(" | ".join(m.value for m in t))
        elif isinstance(t, type) and typing.get_origin(t) is None:
            parts.append(t.__name__)
        else:
            parts.append(str(t).replace("typing.", ""))
    text = " | ".join(parts)
    return f"{text} | null" if allows_none(tp) else text


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    if value == MISSING:
        return "required"
    if value is None:
        return "null"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _range(f: dataclasses.Field) -> str:
    ge, le = f.metadata.get("ge"), f.metadata.get("le")
    if ge is not None and le is not None:
        return f", in [{_number(ge)}, {_number(le)}]"
    if ge is not None:
        return f", >= {_number(ge)}"
    if le is not None:
        return f", <= {_number(le)}"
    return ""


def _entries(cls: type, prefix: str, kind: bool) -> Iterator[tuple[str, list[str]]]:
    """(key, its two lines) of every field of ``cls`` under ``prefix``, sub-sections expanded;
    ``kind``: ``cls`` is a group's kind, whose ``name`` is the option itself (not listed)."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        key = f"{prefix}{f.name}"
        if _is_schema(tp):
            yield from _entries(tp, f"{key}.", kind)
            continue
        if kind and f.name == "name":  # a group kind's name is its option: the header says it
            continue
        head = f"{key}: {_type_name(tp)} = {_default(f)}{_range(f)}"
        yield key, [head, f"    {f.metadata.get('doc', '')}"]


def _sections() -> Iterator[tuple[str, str, list[tuple[str, list[str]]]]]:
    """(selector, header, entries) for every group kind (selector ``group=kind``) and plain
    section (selector: its name), in the config's order."""
    for f in dataclasses.fields(Config):
        if f.name in SCHEMAS:
            for kind, cls in sorted(SCHEMAS[f.name].items()):
                select = f"{f.name}={kind}"
                doc = (cls.__doc__ or "").strip().splitlines()[0]
                if doc.startswith(f"{cls.__name__}("):  # the signature dataclass() writes
                    doc = ""
                header = f"{select}: {doc}" if doc else select
                yield select, header, list(_entries(cls, f"{f.name}.", True))
        else:
            cls = _hints(Config)[f.name]
            yield f.name, f"{f.name}:", list(_entries(cls, f"{f.name}.", False))


def describe(prefix: str = "") -> list[str]:
    """``hpcseg keys PREFIX``: lines describing every key that starts with ``prefix`` (or, for
    ``group=kind``, every key of that kind); [] when there is none."""
    lines: list[str] = []
    for select, header, entries in _sections():
        if "=" in prefix:
            shown = [line for _, text in entries for line in text] if select == prefix else []
        else:
            shown = [line for key, text in entries if key.startswith(prefix) for line in text]
        if shown:
            lines += ([""] if lines else []) + [f"# {header}", *shown]
    return lines


def sections() -> list[str]:
    """The top-level config sections (the first part of every key)."""
    return [f.name for f in dataclasses.fields(Config)]
