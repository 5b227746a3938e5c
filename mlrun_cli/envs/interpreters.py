"""Finding an installed Python that satisfies `python: "3.11"`, without downloading one.

Candidates, cheapest first: the interpreter running mlrun, pyenv's versions folder (the folder
name is the version), then `python3.X` executables on PATH (asked for their version only when
nothing cheaper matched). pyenv's shims are skipped: they only serve the global version.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from mlrun_cli.core.processes import run_captured
from mlrun_cli.errors import EnvUnavailableError, LaunchError

log = logging.getLogger(__name__)

_VERSION = re.compile(r"^\d+(\.\d+){0,2}$")
_FULL_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_EXE = re.compile(r"^python3\.\d+$")


@dataclass(frozen=True)
class Interpreter:
    path: Path
    version: str  # full: "3.11.7"

    @property
    def parts(self) -> tuple[int, ...]:
        return tuple(int(p) for p in self.version.split("."))


def satisfies(version: str, wanted: str) -> bool:
    """`3.11.7` satisfies `3`, `3.11` and `3.11.7`; a requirement is a version prefix."""
    return version.split(".")[: len(wanted.split("."))] == wanted.split(".")


def find_interpreter(wanted: str, environ: Mapping[str, str]) -> Interpreter:
    """The newest installed interpreter matching `wanted`; a one-line error if none does."""
    wanted = wanted.strip()
    if not _VERSION.match(wanted):
        raise EnvUnavailableError(f"python: {wanted!r} is not a version like '3.11' or '3.10.13'")
    cheap = list(_current()) + list(_pyenv_versions(environ))
    matches = [i for i in cheap if satisfies(i.version, wanted)]
    if not matches:
        probed = list(_on_path(environ, skip={i.path for i in cheap}))
        cheap += probed
        matches = [i for i in probed if satisfies(i.version, wanted)]
    if not matches:
        installed = ", ".join(sorted({i.version for i in cheap}, key=_sort_key)) or "none found"
        raise EnvUnavailableError(
            f"no installed Python matches python: {wanted!r} (installed: {installed}); "
            "install it (for example with pyenv) or ask for an installed version"
        )
    return max(matches, key=lambda i: (i.parts, i.path == Path(sys.executable)))


def current_interpreter() -> Interpreter:
    return next(_current())


def _sort_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def _current() -> Iterator[Interpreter]:
    yield Interpreter(Path(sys.executable), platform.python_version())


def _pyenv_versions(environ: Mapping[str, str]) -> Iterator[Interpreter]:
    try:
        root = Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
        folders = sorted(root.iterdir()) if root.is_dir() else []
    except (OSError, RuntimeError) as exc:  # no home, or a pyenv root we may not read
        log.warning("pyenv's interpreters are not searched: %s", exc)
        return
    for folder in folders:
        match = _FULL_VERSION.match(folder.name)
        executable = folder / "bin" / f"python{match.group(1)}.{match.group(2)}" if match else None
        if executable is not None and executable.is_file() and os.access(executable, os.X_OK):
            yield Interpreter(executable, folder.name)


def _on_path(environ: Mapping[str, str], skip: set[Path]) -> Iterator[Interpreter]:
    seen: set[Path] = set()
    for directory in environ.get("PATH", "").split(os.pathsep):
        if (
            not directory
            or directory.rstrip("/").endswith("/shims")
            or not os.path.isdir(directory)
        ):
            continue
        for name in sorted(os.listdir(directory)):
            path = Path(directory) / name
            if not _EXE.match(name) or path in skip or path.resolve() in seen:
                continue
            seen.add(path.resolve())
            version = _ask_version(path)
            if version is not None:
                yield Interpreter(path, version)


def _ask_version(path: Path) -> str | None:
    code = "import platform; print(platform.python_version())"
    try:
        outcome = run_captured((str(path), "-c", code), timeout=20)
    except LaunchError:
        return None
    version = outcome.stdout.strip()
    return version if outcome.returncode == 0 and _FULL_VERSION.match(version) else None
