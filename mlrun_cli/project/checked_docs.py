"""A YAML file parsed and schema-checked once per content; later runs read a JSON copy.

Parsing with PyYAML and checking with jsonschema cost more than the rest of a run's start, yet
an MLproject or python_env.yaml rarely changes between runs. A document that passed its schema
is kept as JSON (data and key lines) under the validation cache, named by a digest of its
text, the schema and mlrun's version; the next run with the same text reads that instead and
imports neither yaml nor jsonschema. A document is kept only when JSON gives back exactly what
YAML gave (string keys; strings, integers, finite floats, booleans, null, lists, mappings).
Deleting the cache costs one parse.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from mlrun_cli import __version__
from mlrun_cli.core.caches import validation_stamp_dir
from mlrun_cli.errors import Problem
from mlrun_cli.project.located_doc import LocatedDoc

FORMAT = 1


def load_checked(
    text: str, schema_name: str, label: str, empty: Any = None
) -> tuple[LocatedDoc, list[Problem]]:
    """The document in `text` and its schema problems; `empty` stands in for an empty file."""
    entry = _entry_path(text, schema_name)
    cached = _read_entry(entry)
    if cached is not None:
        return cached, []
    from mlrun_cli.project.located_yaml import load_located
    from mlrun_cli.project.schema import check_schema

    doc = load_located(text, label)
    if doc.data is None:
        doc = LocatedDoc(data=empty, lines=doc.lines)
    problems = check_schema(doc, schema_name, label)
    if not problems and _json_exact(doc.data) and _json_exact_lines(doc):
        _write_entry(entry, doc)
    return doc, problems


def _entry_path(text: str, schema_name: str) -> Path:
    from mlrun_cli.project.schema import load_schema

    schema = json.dumps(load_schema(schema_name), sort_keys=True)
    digest = hashlib.sha256(
        f"{FORMAT}\n{__version__}\n{schema_name}\n{schema}\n{text}".encode()
    ).hexdigest()
    return validation_stamp_dir() / f"{digest[:32]}.json"


def _read_entry(path: Path) -> LocatedDoc | None:
    try:
        with open(path, encoding="utf-8") as handle:
            stored = json.load(handle)
        lines = {tuple(key): int(line) for key, line in stored["lines"]}
        return LocatedDoc(data=stored["data"], lines=lines)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # absent or damaged: parse again


def _write_entry(path: Path, doc: LocatedDoc) -> None:
    document = {"data": doc.data, "lines": [[list(key), line] for key, line in doc.lines.items()]}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(OSError):  # a cache that cannot be written only costs time
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(document), encoding="utf-8")
        os.replace(temporary, path)


def _json_exact(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_json_exact(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_exact(v) for k, v in value.items())
    return False


def _json_exact_lines(doc: LocatedDoc) -> bool:
    """Key paths are made of string keys and list indexes only (no line-numbered odd keys)."""
    return all(all(isinstance(part, str) or type(part) is int for part in key) for key in doc.lines)
