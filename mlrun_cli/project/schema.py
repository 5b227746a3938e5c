"""Checks a located YAML document against one of the JSON Schemas in `schemas/`.

jsonschema's own messages are written for schema authors; these are rewritten for the person
who wrote the file: each names the key path and the line, and says what would be accepted.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlrun_cli import __version__
from mlrun_cli.core.caches import validation_stamp_dir
from mlrun_cli.errors import Problem
from mlrun_cli.project.located_doc import LocatedDoc, Path_

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

log = logging.getLogger(__name__)
_JSON_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
    "null": "nothing (null)",
}


# Installed, the schemas are the package mlrun_cli.schemas beside this one; in a plain
# checkout (no install) they are where users look for them, at the top.
_INSTALLED_SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
_CHECKOUT_SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema `schemas/<name>.schema.json`: shipped inside the installed package as
    `mlrun_cli.schemas`, or read from the checkout when mlrun runs from one uninstalled."""
    filename = f"{name}.schema.json"
    for folder in (_INSTALLED_SCHEMAS, _CHECKOUT_SCHEMAS):  # without importlib.resources
        if (folder / filename).is_file():
            return dict(json.loads((folder / filename).read_text("utf-8")))
    from importlib import resources  # an install that is not a folder (a zip)

    text = resources.files("mlrun_cli.schemas").joinpath(filename).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def check_schema(doc: LocatedDoc, schema_name: str, file_label: str) -> list[Problem]:
    """Every schema violation in `doc`, one Problem each.

    A document already found valid (same content, same schema, same mlrun) is not checked
    again: the stamp saves importing jsonschema on every run of an unchanged project.
    """
    stamp = _stamp(doc, schema_name)
    if stamp is not None and _stamped(stamp):
        return []
    from jsonschema import Draft202012Validator

    reporter = _Reporter(doc, file_label, load_schema(schema_name))
    validator = Draft202012Validator(reporter.schema)
    problems = [p for error in validator.iter_errors(doc.data) for p in reporter.problems(error)]
    if not problems and stamp is not None:
        try:
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.touch()
        except OSError as exc:  # a cache that cannot be written only costs time
            _stamps_unusable(stamp.parent, exc.strerror or str(exc))
    return problems


def _stamped(stamp: Path) -> bool:
    """An unreadable validation cache is a cache miss: it costs a full check, never the run."""
    try:
        return stamp.exists()
    except OSError as exc:
        _stamps_unusable(stamp.parent, exc.strerror or str(exc))
        return False


@cache
def _stamps_unusable(folder: Path, reason: str) -> None:
    """Said once per folder and process: every later check simply runs in full."""
    log.warning("validation cache %s is not usable (%s); checks run in full", folder, reason)


def _stamp(doc: LocatedDoc, schema_name: str) -> Path | None:
    try:
        content = json.dumps(doc.data, sort_keys=True, default=repr)
    except (TypeError, ValueError):
        return None
    schema = json.dumps(load_schema(schema_name), sort_keys=True)
    digest = hashlib.sha256(f"{__version__}\n{schema}\n{content}".encode()).hexdigest()
    return validation_stamp_dir() / digest[:32]


def format_path(path: Iterable[Any]) -> str:
    """`('entry_points', 'train', 'command')` -> `entry_points.train.command`; items as `[i]`."""
    text = ""
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            shown = part if not isinstance(part, str) or part.isprintable() else repr(part)
            text += f".{shown}" if text else str(shown)
    return text


@dataclass(frozen=True)
class _Reporter:
    """Turns jsonschema errors into Problems located in one document."""

    doc: LocatedDoc
    label: str
    schema: dict[str, Any]

    def problems(self, error: ValidationError) -> Iterator[Problem]:
        path: Path_ = tuple(error.absolute_path)
        instance: Any = error.instance
        if error.validator in ("anyOf", "oneOf"):
            yield from self._branch_problems(error)
        elif error.validator == "additionalProperties":
            properties = _schema_of(error).get("properties", {})
            allowed = ", ".join(properties)
            for key in instance:
                if key not in properties:
                    key_path = (*path, key)
                    message = f"unknown key (allowed here: {allowed})"
                    yield Problem(
                        self.label, self.doc.line_of(key_path), format_path(key_path), message
                    )
        elif error.validator == "required":
            for key in _value_of(error):
                if key not in instance:
                    message = f"missing required key '{key}'"
                    yield Problem(self.label, self.doc.line_of(path), format_path(path), message)
        else:
            yield Problem(self.label, self.doc.line_of(path), format_path(path), _message(error))

    def _branch_problems(self, error: ValidationError) -> Iterator[Problem]:
        """Report the alternative whose JSON type fits the value, or say which types would."""
        by_branch: dict[object, list[ValidationError]] = {}
        for sub in error.context or ():
            by_branch.setdefault(sub.relative_schema_path[0], []).append(sub)
        fitting = [
            errors
            for errors in by_branch.values()
            if not any(e.validator == "type" and not e.relative_path for e in errors)
        ]
        if len(fitting) == 1:
            for sub in fitting[0]:
                yield from self.problems(sub)
            return
        path: Path_ = tuple(error.absolute_path)
        kinds = [self._branch_kind(branch) for branch in _value_of(error)]
        message = f"expected {' or '.join(kinds)}, got {_describe(error.instance)}"
        yield Problem(self.label, self.doc.line_of(path), format_path(path), message)

    def _branch_kind(self, branch: dict[str, Any]) -> str:
        if "$ref" in branch:
            return "a type name (" + ", ".join(self._resolve_enum(branch["$ref"])) + ")"
        if branch.get("type") == "array" and branch.get("maxItems") == 2:
            return "a [NAME, value] pair"
        if branch.get("type") == "object":
            return "a mapping with " + ", ".join(branch.get("properties", {}))
        return _JSON_TYPE_NAMES.get(str(branch.get("type")), "another value")

    def _resolve_enum(self, ref: str) -> list[str]:
        name = ref.rsplit("/", 1)[-1]
        definition = self.schema.get("$defs", {}).get(name, {})
        names: list[str] = definition.get("enum", definition.get("examples", []))
        return names


def _schema_of(error: ValidationError) -> dict[str, Any]:
    return error.schema if isinstance(error.schema, dict) else {}


def _value_of(error: ValidationError) -> Any:
    """The schema keyword's value (jsonschema types it as possibly unset)."""
    return error.validator_value


def _message(error: ValidationError) -> str:
    wanted = _value_of(error)
    instance: Any = error.instance
    if error.validator == "enum":
        return f"{instance!r} is not one of " + ", ".join(map(str, wanted))
    if error.validator == "type":
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        names = [n for n in names if n != "null"] or names  # null is allowed, never asked for
        expected = " or ".join(_JSON_TYPE_NAMES.get(n, n) for n in names)
        return f"expected {expected}, got {_describe(instance)}"
    if error.validator == "minLength":
        return "must not be empty"
    if error.validator in ("minItems", "maxItems"):
        return f"expected a list of {wanted} items, got {len(instance)}"
    return str(error.message)


_SHOWN_CHARS = 60  # a whole file read as one string must not become the message


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= _SHOWN_CHARS else f"{value[:_SHOWN_CHARS]}..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__} ({value})"
