"""The files of MLflow's store: meta.yaml in MLflow's style, and atomic replacement.

MLflow writes meta.yaml with PyYAML's `safe_dump` (block style, sorted keys); the result is
flat `key: scalar` lines, which are read here without PyYAML when possible, because a search
over thousands of runs is mostly reading them.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

# libyaml's loader when PyYAML has it: searching thousands of runs reads thousands of metas.
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def dump_yaml(data: Mapping[str, Any]) -> str:
    """MLflow's meta.yaml style: block style, sorted keys, unicode kept."""
    return yaml.safe_dump(dict(data), default_flow_style=False, allow_unicode=True, sort_keys=True)


def write_atomic(path: Path, text: str, durable: bool = False) -> None:
    """Replace `path` so that a reader sees the old or the new content, never a mix.

    The temporary name is unique per call (not only per process): threads and processes that
    replace the same file at once each rename a complete file of their own, the last one wins.
    `durable` also syncs the data before the rename, so that even a machine crash leaves the
    old or the new file, not an empty one (meta.yaml, which every reader needs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(path)
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def copy_atomic(source: Path, path: Path) -> None:
    """Copy `source` to `path` through a temporary file, as `write_atomic` does for text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary_name(path)
    try:
        shutil.copyfile(source, temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _temporary_name(path: Path) -> Path:
    """A dot-file beside `path` (readers skip dot-files), unique across threads and processes."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")


def parse_meta(text: str) -> Any:
    """A meta.yaml's content: the fast reader, else PyYAML (libyaml's when available)."""
    data = parse_flat_meta(text)
    return yaml.load(text, Loader=_YAML_LOADER) if data is None else data


_META_LINE = re.compile(r"([a-z_]+): (.*)")
_INT = re.compile(r"-?\d+")
_PLAIN = re.compile(r"[A-Za-z_/][\w./:\-]*")
_RUN_ID = re.compile(r"[0-9a-f]{32}")  # digit-led, yet a string for YAML (not a number)
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"})


def parse_flat_meta(text: str) -> dict[str, Any] | None:
    """MLflow's meta.yaml is flat `key: scalar` lines; read those without PyYAML (searching
    thousands of runs is mostly this). Anything else returns None, and PyYAML reads it."""
    data: dict[str, Any] = {}
    for line in text.splitlines():
        match = _META_LINE.fullmatch(line)
        if match is None:
            return None
        key, raw = match.groups()
        if raw == "null":
            data[key] = None
        elif raw == "[]":
            data[key] = []
        elif _INT.fullmatch(raw):
            data[key] = int(raw)
        elif len(raw) >= 2 and raw[0] == raw[-1] == "'" and "'" not in raw[1:-1].replace("''", ""):
            data[key] = raw[1:-1].replace("''", "'")
        elif (_PLAIN.fullmatch(raw) and raw.lower() not in _YAML_WORDS) or _RUN_ID.fullmatch(raw):
            data[key] = raw
        else:
            return None
    return data


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
