"""Shared pieces of the API's tests: a project whose entry points run in well under a second
with the current interpreter, and the store read back as a user would."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from mlrun_cli.core.settings import Settings
from mlrun_cli.tracking.store import RecordedRun, open_store
from tests.conftest import write_files

MLPROJECT = """
name: api
entry_points:
  main:
    parameters:
      x: {type: float, default: 1}
    command: "echo x is {x}"
  fail:
    command: "bash -c 'exit 3'"
  gate:
    parameters:
      name: string
    command: "touch started-{name}; while [ ! -f go ]; do sleep 0.02; done; echo done {name}"
"""


def api_project(root: Path, extra: dict[str, str] | None = None) -> Path:
    return write_files(root / "project", {"MLproject": MLPROJECT, **(extra or {})})


def recorded(tracking_uri: str, run_id: str) -> RecordedRun:
    return open_store(Settings.resolve(tracking_uri)).get_run(run_id)


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
