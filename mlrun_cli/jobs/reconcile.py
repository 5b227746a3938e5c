"""Runs whose engine cannot be reached: how long to wait for it, and settling them after.

A submitted run is RUNNING in the store until its node or its engine says otherwise. When the
engine itself is gone (a Ray head stopped, a cluster torn down), neither ever will: the run
would stay RUNNING forever. So the first time mlrun cannot reach a run's engine it records
when (`mlrun.engine.unreachable_since`); once the engine has stayed unreachable for the run's
stated time (`mlrun.engine.unreachable_after`, the Ray config's `unreachable_after`, default
300 s), `runs wait`, `runs cancel` and `runs gc` settle the run FAILED with the reason. An
engine that answers again clears the mark. The time is kept in the store, not in a process,
so successive `runs gc` calls measure it too.
"""

from __future__ import annotations

import logging
import time

from mlrun_cli.backends.jobs import EngineUnreachable, JobBackend, JobState
from mlrun_cli.run.finish import finish_run
from mlrun_cli.tracking.entities import FINAL_STATUSES, RunStatus
from mlrun_cli.tracking.file_store import now_ms
from mlrun_cli.tracking.store import RecordedRun, Store
from mlrun_cli.tracking.tags import (
    BACKEND_TAG,
    REASON_TAG,
    STATE_TAG,
    UNREACHABLE_AFTER_TAG,
    UNREACHABLE_SINCE_TAG,
)

log = logging.getLogger(__name__)

UNREACHABLE_STATE = "UNREACHABLE"
DEFAULT_UNREACHABLE_AFTER = 300.0
ENGINE_LOG = "logs/engine.log"  # what the engine said of a job that ended unrecorded


def engine_state(
    store: Store, run: RecordedRun, backend: JobBackend, job_id: str
) -> JobState | None:
    """`backend.state(job_id)`, where an engine that cannot be reached is a state of its own:
    not final while it has been unreachable for less than the run's stated time, then a final
    FAILED whose reason says what could not be reached and for how long."""
    try:
        state = backend.state(job_id)
    except EngineUnreachable as exc:
        return _unreachable_state(store, run, str(exc))
    if run.tags.get(UNREACHABLE_SINCE_TAG):
        store.set_tags(run.info, {UNREACHABLE_SINCE_TAG: ""})
    return state


def _unreachable_state(store: Store, run: RecordedRun, why: str) -> JobState:
    now = now_ms()
    recorded = run.tags.get(UNREACHABLE_SINCE_TAG, "")
    since = int(recorded) if recorded.isdigit() else now
    if not recorded.isdigit():
        store.set_tags(run.info, {UNREACHABLE_SINCE_TAG: str(since)})
    after = unreachable_after(run)
    waited = (now - since) / 1000
    final = waited >= after
    reason = f"{why}; unreachable for {waited:.0f}s (the limit is {after:g}s)"
    return JobState(UNREACHABLE_STATE, final, RunStatus.FAILED, reason)


def known_state(backend: JobBackend, job_id: str) -> JobState | None:
    """The engine's state where an unreachable engine is as good as no answer (an exit code
    or a correction that can wait for the next look)."""
    try:
        return backend.state(job_id)
    except EngineUnreachable:
        return None


def report_unreachable(store: Store, run: RecordedRun) -> None:
    """`runs gc` names each run it left as it is because its engine did not answer, the
    engine's address, and when the run will be settled."""
    run = store.get_run(run.info.run_id)
    since = run.tags.get(UNREACHABLE_SINCE_TAG, "")
    backend = run.tags.get(BACKEND_TAG)
    if not since.isdigit() or backend is None:
        return
    address = run.tags.get(f"mlrun.{backend}.address")
    waited = (now_ms() - int(since)) / 1000
    left = max(unreachable_after(run) - waited, 0.0)
    log.warning("run %s (%s) left %s: cannot reach its %s engine%s for %.0fs; it is settled "
                "FAILED in %.0fs", run.info.run_id, run.info.run_name, run.info.status.name,
                backend, f" at {address}" if address else "", waited, left)  # fmt: skip


def unreachable_after(run: RecordedRun) -> float:
    """The run's stated time: how long its engine may be unreachable before it is FAILED."""
    try:
        return float(run.tags.get(UNREACHABLE_AFTER_TAG, DEFAULT_UNREACHABLE_AFTER))
    except ValueError:
        return DEFAULT_UNREACHABLE_AFTER


def keep_engine_log(store: Store, run: RecordedRun, state: JobState) -> None:
    """The engine's log of a job that ended unrecorded, as an artifact beside the node's logs
    (the reason tag holds one line)."""
    if state.log:
        store.write_artifact(run.info, ENGINE_LOG, state.log + "\n")


def wait_reachable_or_settled(
    store: Store, run: RecordedRun, backend: JobBackend, job_id: str, poll: float = 1.0
) -> RecordedRun:
    """For `runs cancel` when the engine cannot be reached: ask again until it answers (the
    caller then cancels) or its stated time has passed (the run is settled FAILED)."""
    while True:
        run = store.get_run(run.info.run_id)
        if run.info.status in FINAL_STATUSES:
            return run
        state = engine_state(store, run, backend, job_id)
        if state is None or state.state != UNREACHABLE_STATE:
            return run
        if state.final:
            return _settle_failed(store, run, state)
        time.sleep(poll)


def _settle_failed(store: Store, run: RecordedRun, state: JobState) -> RecordedRun:
    store.set_tags(run.info, {STATE_TAG: state.state, REASON_TAG: state.reason})
    finish_run(store, run.info, RunStatus.FAILED)
    log.warning("run %s FAILED: %s", run.info.run_id, state.reason)
    return store.get_run(run.info.run_id)
