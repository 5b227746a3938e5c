"""What an interpreter has installed, as requirement lines: the lock file of a local run.

Read from the names of the `*.dist-info` folders on the interpreter's `sys.path` (`name-version`
by the wheel spec); no metadata file is opened and no process started, so it costs a few
directory listings. For an interpreter other than mlrun's own, its `lib/python3.*/` folders
stand in for its `sys.path`; a launcher script (a pyenv shim) cannot be read that way, and
starting it would cost about 80 ms per run, so such a run records no lock file.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path


def requirement_lines(paths: Iterable[str]) -> list[str]:
    """`name==version` for every distribution on `paths`; the first one found of a name wins,
    as in Python's import order."""
    found: dict[str, str] = {}
    for entry in paths:
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        for name in sorted(names):
            if not name.endswith(".dist-info"):
                continue
            project, sep, version = name.removesuffix(".dist-info").partition("-")
            if sep:
                found.setdefault(re.sub(r"[-_.]+", "-", project).lower(), f"{project}=={version}")
    return sorted(found.values(), key=str.lower)


def interpreter_paths(python: str) -> list[str] | None:
    """Where `python` finds its packages: this process's `sys.path` when it is mlrun's own
    interpreter, else its prefix's site folders; None when they cannot be known."""
    # a venv's bin/python links to its base interpreter: the prefix, not the binary, says
    # which packages it sees
    prefix = Path(python).parent.parent
    if os.path.realpath(prefix) == os.path.realpath(sys.prefix):
        return [p for p in sys.path if p]
    if not _is_executable_binary(Path(os.path.realpath(python))):
        return None
    found = sorted(str(p) for p in prefix.glob("lib/python3*/*-packages") if p.is_dir())
    return found or None


def _is_executable_binary(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"\x7fELF" or path.suffix == ".exe"
    except OSError:
        return False
