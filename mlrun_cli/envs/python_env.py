"""python_env.yaml (and conda.yaml translated into one): what a Python env must contain.

Requirement lines are kept as pip reads them; `-r`/`-c` files are made absolute against the
project directory, and their content is part of what identifies the environment.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlrun_cli.errors import Problem, SpecError
from mlrun_cli.project.checked_docs import load_checked
from mlrun_cli.project.located_doc import LocatedDoc
from mlrun_cli.project.schema import format_path
from mlrun_cli.project.spec import display_path
from mlrun_cli.project.spec_text import read_spec_text

log = logging.getLogger(__name__)

_VERSION = re.compile(r"^\s*(\d+(\.\d+){0,2})?\s*$")  # as the schema's pattern
_FILE_OPTION = re.compile(r"^(-r|--requirement|-c|--constraint)(\s+|=)(.+)$")


@dataclass(frozen=True)
class PythonEnvSpec:
    python: str  # a version prefix: "3.11"
    build_dependencies: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    source: Path | None = None  # the file it came from
    dropped: tuple[str, ...] = ()  # conda packages a translation could not carry over

    def requirement_lines(self, base: Path) -> list[str]:
        """The dependencies as lines of a requirements file, `-r` paths made absolute."""
        return [_absolute_file_option(line, base) for line in self.dependencies]

    def fingerprint(self, base: Path) -> str:
        """Changes when anything pip would install could change, included files too."""
        digest = hashlib.sha256()
        for line in (self.python, *self.build_dependencies, "--", *self.dependencies):
            digest.update(line.encode() + b"\n")
        for path in referenced_files(self.dependencies, base):
            digest.update(path.read_bytes() if path.is_file() else b"<missing>")
        return digest.hexdigest()


def load_python_env(path: Path, display_base: Path) -> PythonEnvSpec:
    """Accepts what MLflow's `_PythonEnv.from_yaml` accepts and its builds can use (null
    fields, empty requirement lines, with a warning); refuses the rest with its line."""
    label = display_path(path, display_base)
    text = read_spec_text(path, label)
    doc, problems = load_checked(text, "python_env", label)
    data: Any = doc.data
    if isinstance(data, dict):
        problems = [p for p in problems if p.path != "python"] + _python_problems(doc, text, label)
        for key in ("build_dependencies", "dependencies"):
            for index in _empty_lines(data.get(key)):
                where = (key, index)
                log.warning(
                    "%s:%s: %s: an empty requirement, skipped (MLflow skips it too)",
                    label,
                    doc.line_of(where),
                    format_path(where),
                )
        for missing in _missing_files(_lines(data.get("dependencies")), path.parent):
            problems.append(Problem(label, doc.line_of(("dependencies",)), "dependencies", missing))
    if data is None:
        message = "an empty file, which MLflow refuses too; write at least `dependencies: []`"
        problems = [Problem(label, 1, "", message)]
    if problems:
        raise SpecError(problems)
    return PythonEnvSpec(
        python=str(data.get("python") or "").strip() or _current_python(),
        build_dependencies=_lines(data.get("build_dependencies")),
        dependencies=_lines(data.get("dependencies")),
        source=path,
    )


def _python_problems(doc: LocatedDoc, text: str, label: str) -> list[Problem]:
    """`python` is a quoted version, or nothing: YAML reads `3.10` as the number 3.1."""
    python = doc.data.get("python")
    if python is None or (isinstance(python, str) and _VERSION.match(python)):
        return []
    if isinstance(python, (int, float)) and not isinstance(python, bool):
        message = f'write the version in quotes: python: "{text_value(text, "python")}"'
    else:
        shown = repr(python) if isinstance(python, str) else f"a {type(python).__name__}"
        message = f'expected a version such as "3.11" or "3.10.13", got {shown}'
    return [Problem(label, doc.line_of(("python",)), "python", message)]


def _lines(value: Any) -> tuple[str, ...]:
    """A requirement list as given, without its empty lines; null is no requirements."""
    items = value if isinstance(value, list) else []
    return tuple(str(item) for item in items if str(item).strip())


def _empty_lines(value: Any) -> Iterator[int]:
    items = value if isinstance(value, list) else []
    return (i for i, item in enumerate(items) if isinstance(item, str) and not item.strip())


def _current_python() -> str:
    """MLflow's `_PythonEnv` reads a missing `python` as the running interpreter's version."""
    return platform.python_version()


def text_value(text: str, key: str) -> str:
    """The value as written in the file (YAML turns `3.10` into the float 3.1)."""
    match = re.search(rf"^{key}:\s*([^\s#]+)", text, flags=re.M)
    return match.group(1) if match else "..."


def referenced_files(lines: Sequence[str], base: Path) -> Iterator[Path]:
    for line in lines:
        match = _FILE_OPTION.match(line.strip())
        if match:
            yield (base / match.group(3).strip()).resolve()


def _missing_files(lines: Sequence[Any], base: Path) -> Iterator[str]:
    for path in referenced_files([str(line) for line in lines], base):
        if not path.is_file():
            yield f"referenced file not found: {path}"


def _absolute_file_option(line: str, base: Path) -> str:
    match = _FILE_OPTION.match(line.strip())
    if not match:
        return line
    return f"{match.group(1)} {(base / match.group(3).strip()).resolve()}"
