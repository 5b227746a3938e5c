"""meta.yaml in MLflow's style: written and read without PyYAML when the content allows.

MLflow writes meta.yaml with PyYAML's `safe_dump` (block style, sorted keys); the result is
flat `key: scalar` lines, which are read and written here without PyYAML when possible: a
search over thousands of runs is mostly reading them, and importing PyYAML costs a run more
than writing its files does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class MetaFormatError(ValueError):
    """A meta.yaml that is not YAML; the message says where."""


def dump_yaml(data: Mapping[str, Any]) -> str:
    """MLflow's meta.yaml style: block style, sorted keys, unicode kept."""
    flat = dump_flat_meta(data)
    if flat is not None:
        return flat
    import yaml

    return yaml.safe_dump(dict(data), default_flow_style=False, allow_unicode=True, sort_keys=True)


# What PyYAML writes unquoted, for the strings this writer handles itself: no spaces (so no
# line folding), ASCII, a first character that is no indicator, and no ": " inside.
_SIMPLE = re.compile(r"[A-Za-z0-9_./:\-]*")
_PLAIN_START = re.compile(r"[A-Za-z_/]")
_HEX_ID = re.compile(r"[0-9a-f]*[a-f][0-9a-f]*")  # digit-led ids PyYAML still leaves plain
_INT_OR_OCTAL = re.compile(r"0|[1-9][0-9]*|0[0-7]+")  # digits YAML 1.1 reads as a number
_YAML_BINARY = re.compile(r"0b[01_]+")  # the one hex id with a letter that PyYAML reads as a number
_RESOLVED_WORDS = frozenset(
    [
        "yes",
        "Yes",
        "YES",
        "no",
        "No",
        "NO",
        "true",
        "True",
        "TRUE",
        "false",
        "False",
        "FALSE",
        "on",
        "On",
        "ON",
        "off",
        "Off",
        "OFF",
        "null",
        "Null",
        "NULL",
    ]
)


def dump_flat_meta(data: Mapping[str, Any]) -> str | None:
    """`safe_dump`'s exact text for a flat mapping of simple scalars, else None."""
    lines = []
    for key in sorted(data):
        value = data[key]
        if not isinstance(key, str) or not _PLAIN_START.match(key) or not _SIMPLE.fullmatch(key):
            return None
        text = _scalar(value)
        if text is None:
            return None
        lines.append(f"{key}: {text}\n")
    return "".join(lines)


def _scalar(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list) and not value:
        return "[]"
    if not isinstance(value, str) or not _SIMPLE.fullmatch(value):
        return None
    if not value or value.endswith(":"):
        return f"'{value}'"
    if _PLAIN_START.match(value):
        return f"'{value}'" if value in _RESOLVED_WORDS else value
    if value.isdigit():
        return f"'{value}'" if _INT_OR_OCTAL.fullmatch(value) else value  # '0' stays a string
    if len(value) == 32 and _HEX_ID.fullmatch(value):  # a run id: hex letters make it a string
        return f"'{value}'" if _YAML_BINARY.fullmatch(value) else value  # unless 0b and bits
    return None


def parse_meta(text: str) -> Any:
    """A meta.yaml's content: the fast reader, else PyYAML (libyaml's when available)."""
    data = parse_flat_meta(text)
    if data is not None:
        return data
    import yaml

    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise MetaFormatError(f"YAML: {exc.problem}, line {line}") from None
    except yaml.YAMLError as exc:
        raise MetaFormatError(str(exc)) from None


_INT = re.compile(r"-?(?:0|[1-9][0-9]*)")  # YAML 1.1 reads 0-led digits otherwise
_PLAIN = re.compile(r"[A-Za-z_/][\w./:\-]*")
_RUN_ID = re.compile(r"[0-9a-f]{32}")  # digit-led, yet a string for YAML (not a number)
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"})


def parse_flat_meta(text: str) -> dict[str, Any] | None:
    """MLflow's meta.yaml is flat `key: scalar` lines; read those without PyYAML (searching
    thousands of runs is mostly this). Anything else returns None, and PyYAML reads it."""
    data: dict[str, Any] = {}
    for line in text.splitlines():
        key, separator, raw = line.partition(": ")
        if not separator or (key not in _KNOWN_KEYS and not _KEY.fullmatch(key)):
            return None
        value = _flat_value(raw)
        if value is _NOT_FLAT:
            return None
        data[key] = value
    return data


_KEY = re.compile(r"[a-z_]+")
_KNOWN_KEYS = frozenset(
    {
        "artifact_uri", "deleted_time", "end_time", "entry_point_name", "experiment_id",
        "lifecycle_stage", "run_id", "run_name", "run_uuid", "source_name", "source_type",
        "source_version", "start_time", "status", "tags", "user_id",
    }
)  # fmt: skip
_NOT_FLAT = object()


def _flat_value(raw: str) -> Any:
    if raw == "null":
        return None
    if raw == "[]":
        return []
    if raw.isascii() and raw.lstrip("-").isdigit():
        if _INT.fullmatch(raw):
            return int(raw)
        if raw.isdigit() and not _INT_OR_OCTAL.fullmatch(raw):
            return raw  # 0-led with an 8 or 9: no YAML number, so PyYAML wrote it plain
    elif raw[:1] == "'" and len(raw) >= 2 and raw[-1] == "'":
        inner = raw[1:-1]
        return inner.replace("''", "'") if "'" not in inner.replace("''", "") else _NOT_FLAT
    if (_PLAIN.fullmatch(raw) and raw.lower() not in _YAML_WORDS) or _RUN_ID.fullmatch(raw):
        return raw
    return _NOT_FLAT


def salvage_fields(path: Path) -> dict[str, Any]:
    """The `key: scalar` lines of a damaged meta.yaml that still read as such, one by one."""
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return {}
    fields: dict[str, Any] = {}
    for line in text.splitlines():
        parsed = parse_flat_meta(line)
        if parsed:
            fields.update(parsed)
    return fields
