"""A cache folder that exists but cannot be read or searched costs time, never the run.

Each of mlrun's cache folders (validation stamps, built environments, input digests, source
clones) is made unusable (mode 000, owned by the user who runs mlrun, so that only its mode
stops it) and `validate` and `run` still succeed as an unprivileged user, saying at most a
warning. Root ignores modes, so these run through setpriv as `nobody` (see tests/e2e).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.e2e import test_hostile_process as hostile
from tests.e2e.test_hostile_process import NOBODY, mlrun, project

# The unprivileged interpreter and the world-writable folder, shared with tests/e2e.
unprivileged_python = hostile.unprivileged_python
world = hostile.world

pytestmark = pytest.mark.slow

MLPROJECT = (
    "entry_points:\n"
    "  main:\n"
    "    parameters:\n"
    "      data: path\n"
    "    command: echo trained on {data}\n"
)


def _big_old_input(directory: Path) -> Path:
    """Large and old enough for its digest to go through the digest cache."""
    path = directory / "data.bin"
    path.write_bytes(os.urandom(2 << 20))
    path.chmod(0o666)
    past = time.time() - 3600
    os.utime(path, (past, past))
    return path


@pytest.mark.parametrize("folder", ["validated", "envs", "digests", "sources"])
def test_an_unreadable_cache_folder_costs_time_never_the_run(
    unprivileged_python, world: Path, folder: str
) -> None:
    directory = project(world, {"MLproject": MLPROJECT})
    _big_old_input(directory)
    locked = world / "cache" / folder
    locked.mkdir(mode=0o000)
    if os.geteuid() == 0:
        os.chown(locked, NOBODY, NOBODY)
    for args in (
        ("validate", "project"),
        ("run", "project", "--no-env", "-P", "data=project/data.bin"),
        ("run", "project", "--no-env", "-P", "data=project/data.bin"),  # warm: caches consulted
    ):
        done = mlrun(world, *args, unprivileged=unprivileged_python)
        stderr = done.stderr.decode(errors="replace")
        assert done.returncode == 0, stderr
        assert "Traceback" not in stderr and "PermissionError" not in stderr, stderr
    assert b"trained on" in done.stdout
