"""The one way a run ends, whichever path ends it: the local pipeline, a job's submitter, the
follower or `runs wait|cancel|gc` settling a job from its engine, a Slurm array's children and
a sweep's parent.

    the run's record (provenance/run.json) given the final status -> the final status
        -> everything staged for the run published to the store

The record is written before the status, so that whoever sees the run ended in a file store
finds a record that says so; the status is written even when the record cannot be, so a run
is never left RUNNING. A remote store uploads what was staged (the logs, the record, an
engine's log) in `publish`, after the status, so that an update the server missed goes to the
outbox with them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from mlrun_cli.errors import StoreError
from mlrun_cli.tracking import artifacts
from mlrun_cli.tracking.entities import RunInfo, RunStatus
from mlrun_cli.tracking.file_store import now_ms
from mlrun_cli.tracking.store import Store

log = logging.getLogger(__name__)


def finish_run(
    store: Store,
    run: RunInfo,
    status: RunStatus,
    *,
    end_time: int | None = None,
    record: Callable[[RunInfo], Mapping[str, Any]] | None = None,
    exit_code: int | None = None,
) -> RunInfo:
    """End `run` with `status`: its record, then its status, then the publish.

    `record` makes the complete record of a run that ran here from the ended run (called
    here, so that a record that cannot be made still leaves the run ended); without it, the
    record the run already has (a submitter's, a node's) gets the final status, and a run
    without one (a sweep's parent, whose record is its summary) gets none. `exit_code` is
    the entry point's, when one is known."""
    end = now_ms() if end_time is None else end_time
    try:
        _write_record(store, replace(run, status=status, end_time=end), record, exit_code)
    finally:
        ended = store.finish_run(run, status, end)
        store.publish(ended)
    return ended


def _write_record(
    store: Store,
    run: RunInfo,
    record: Callable[[RunInfo], Mapping[str, Any]] | None,
    exit_code: int | None,
) -> None:
    document = record(run) if record is not None else _recorded(store, run)
    if document is None:
        return
    if exit_code is None:
        exit_code = document.get("run", {}).get("exit_code")
    document = {**document, "run": _ended_section(run, exit_code)}
    store.write_artifact(run, artifacts.RUN_RECORD, json.dumps(document, indent=2))


def _ended_section(run: RunInfo, exit_code: int | None) -> dict[str, Any]:
    """The record's `run` part: how the run went, as the store has it once it has ended."""
    return {
        "run_id": run.run_id,
        "experiment_id": run.experiment_id,
        "status": run.status.name,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "exit_code": exit_code,
    }


def _recorded(store: Store, run: RunInfo) -> Mapping[str, Any] | None:
    """The run's record as it is now, or None when it has none (or none that can be read:
    ending the run matters more than updating a damaged record, which `runs describe`
    reports)."""
    try:
        text = store.read_artifact(run, artifacts.RUN_RECORD)
    except StoreError as exc:
        log.warning("run %s: its record cannot be read to add its end (%s)", run.run_id, exc)
        return None
    if text is None:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        log.warning("run %s: %s is not JSON; it keeps no end", run.run_id, artifacts.RUN_RECORD)
        return None
    return document if isinstance(document, dict) else None
