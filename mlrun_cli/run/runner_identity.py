"""Who is running a run, so that `mlrun runs gc` can tell a live runner from a dead one, and
end the process group of an entry point whose runner is gone.

A pid alone can be reused; with the process's start time (from /proc) it cannot be mistaken.
The entry point's group is recorded the same way (`mlrun.runner.pgid` and the start time of
its leader), and gc signals it only after checking that it is still that group.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from mlrun_cli.run.host import host_name
from mlrun_cli.tracking.tags import (
    PGID_START_TAG,
    PGID_TAG,
    RUNNER_HOST_TAG,
    RUNNER_PID_TAG,
    RUNNER_START_TAG,
)


def start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None where /proc is missing."""
    fields = _stat_fields(pid)
    return None if fields is None else fields[19]


def _stat_fields(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat after the command name: state, ppid, pgrp, session, ... starttime."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def runner_tags() -> dict[str, str]:
    pid = os.getpid()
    tags = {RUNNER_HOST_TAG: host_name(), RUNNER_PID_TAG: str(pid)}
    ticks = start_ticks(pid)
    if ticks is not None:
        tags[RUNNER_START_TAG] = ticks
    return tags


def runner_alive(tags: dict[str, str]) -> bool | None:
    """True/False for a runner of this host; None when the run was started elsewhere."""
    if tags.get(RUNNER_HOST_TAG) != host_name() or RUNNER_PID_TAG not in tags:
        return None
    pid = int(tags[RUNNER_PID_TAG])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    recorded = tags.get(RUNNER_START_TAG)
    return recorded is None or start_ticks(pid) == recorded


def group_tags(pgid: int) -> dict[str, str]:
    """What identifies the entry point's process group later: its id and its leader's start."""
    tags = {PGID_TAG: str(pgid)}
    ticks = start_ticks(pgid)
    if ticks is not None:
        tags[PGID_START_TAG] = ticks
    return tags


def end_recorded_group(tags: dict[str, str], run_id: str) -> bool:
    """SIGKILL the run's entry point group if it still runs here; whether it was signalled.

    It is the recorded group if its leader is alive with the recorded start time. Once the
    leader is gone that is not enough: the whole group may have ended and its id been handed
    out again to a group whose leader has exited too, whose members all started after the
    recorded leader, as the run's own would have. So a member must also carry the run's id in
    its environment (`MLFLOW_RUN_ID`, which the entry point inherits). Without a recorded
    start time nothing is signalled.
    """
    if tags.get(RUNNER_HOST_TAG) != host_name() or PGID_TAG not in tags:
        return False
    recorded = tags.get(PGID_START_TAG)
    pgid = int(tags[PGID_TAG])
    if recorded is None or not _is_recorded_group(pgid, int(recorded), run_id):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
        return True
    return False


def _is_recorded_group(pgid: int, leader_start: int, run_id: str) -> bool:
    """Live members only: a group of zombies (nobody reaped them) needs no signal."""
    members = group_members(pgid)
    if not members:
        return False
    leader = start_ticks(pgid)  # alive, or a zombie still holding its place
    if leader is not None:
        return int(leader) == leader_start
    return all(start >= leader_start for start in members.values()) and any(
        _carries_run(pid, run_id) for pid in members
    )


def _carries_run(pid: int, run_id: str) -> bool:
    """Whether the process's environment names the run (unreadable: it does not)."""
    try:
        environment = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"MLFLOW_RUN_ID={run_id}".encode() in environment.split(b"\0")


def group_members(pgid: int) -> dict[int, int]:
    """pid -> start ticks of the live processes of the group (zombies excluded)."""
    return {pid: start for pid, (group, start) in _live_processes().items() if group == pgid}


def live_group_ids() -> set[int]:
    """The process groups with a live process on this machine (one look at /proc for all)."""
    return {group for group, _ in _live_processes().values()}


def has_live_group(tags: dict[str, str], live: set[int]) -> bool:
    """Whether the run's recorded group id is among `live` (a cheap check before the exact
    one of `end_recorded_group`)."""
    pgid = tags.get(PGID_TAG, "")
    return tags.get(RUNNER_HOST_TAG) == host_name() and pgid.isdigit() and int(pgid) in live


def _live_processes() -> dict[int, tuple[int, int]]:
    """pid -> (process group, start ticks) of every live process (zombies excluded)."""
    processes = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            fields = _stat_fields(entry.name)
            if fields is not None and fields[0] != "Z":
                processes[int(entry.name)] = (int(fields[2]), int(fields[19]))
    return processes
