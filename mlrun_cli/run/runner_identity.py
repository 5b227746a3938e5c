"""Who is running a run, so that `mlrun runs gc` can tell a live runner from a dead one.

A pid alone can be reused; with the process's start time (from /proc) it cannot be mistaken.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlrun_cli.run.host import host_name


def start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def runner_tags() -> dict[str, str]:
    pid = os.getpid()
    tags = {"mlrun.runner.host": host_name(), "mlrun.runner.pid": str(pid)}
    ticks = start_ticks(pid)
    if ticks is not None:
        tags["mlrun.runner.start"] = ticks
    return tags


def runner_alive(tags: dict[str, str]) -> bool | None:
    """True/False for a runner of this host; None when the run was started elsewhere."""
    if tags.get("mlrun.runner.host") != host_name() or "mlrun.runner.pid" not in tags:
        return None
    pid = int(tags["mlrun.runner.pid"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    recorded = tags.get("mlrun.runner.start")
    return recorded is None or start_ticks(pid) == recorded
