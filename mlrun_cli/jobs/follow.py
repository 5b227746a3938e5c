"""Following a run to its end from anywhere: its logs as they are written, its status in the
store, and, for a submitted run, the engine's word when the node could not write one.

The node-side mlrun records the final status itself; a job that dies first (cancelled while
pending, time limit, node lost) is reconciled here from the engine's state, with the engine's
reason as a tag. A node that recorded KILLED because the engine stopped it on a time limit or
out of memory is corrected to FAILED: the engine knows why, the node only saw a signal.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from mlrun_cli.backends.jobs import JobBackend, JobState
from mlrun_cli.backends.streams import StopRequest, echo_chunk, handling_signals
from mlrun_cli.jobs.reconcile import engine_state, keep_engine_log, known_state
from mlrun_cli.run.finish import finish_run
from mlrun_cli.tracking import artifacts
from mlrun_cli.tracking.entities import FINAL_STATUSES, RunStatus
from mlrun_cli.tracking.store import RecordedRun, Store
from mlrun_cli.tracking.tags import EXIT_CODE_TAG, REASON_TAG, STATE_TAG

POLL_SECONDS = 0.1
ENGINE_EVERY_SECONDS = 1.0
INTERRUPTED_EXIT_CODE = 130
JOB_END_SECONDS = 60.0  # from the node's final status to the job's end (Slurm's KillWait)


class LogTail:
    """Copies what was appended to a log since the last look onto a stream."""

    def __init__(self, path: Path, echo: IO[bytes] | None) -> None:
        self.path = path
        self.echo = echo
        self.offset = 0

    def pump(self) -> None:
        if self.echo is None:
            return
        try:
            with open(self.path, "rb") as log:
                log.seek(self.offset)
                data = log.read()
        except OSError:
            return
        self.offset += len(data)
        self.echo = echo_chunk(self.echo, data)


def log_tails(
    store: Store, run: RecordedRun, stdout: IO[bytes] | None, stderr: IO[bytes] | None
) -> list[LogTail]:
    folder = store.artifact_dir(run.info)
    return [
        LogTail(folder / artifacts.STDOUT_LOG, stdout),
        LogTail(folder / artifacts.STDERR_LOG, stderr),
    ]


def follow_run(
    store: Store,
    run_id: str,
    backend: JobBackend | None,
    job_id: str | None,
    stdout: IO[bytes] | None = None,
    stderr: IO[bytes] | None = None,
    gone: float | None = None,
    stop: StopRequest | None = None,
) -> RecordedRun:
    """Until the run is over: stream its logs, and settle it from the engine if the job ended
    unrecorded. Ctrl-C cancels the job (the run ends KILLED); `gone` is a deadline (monotonic)
    after which a run without an engine is left as it is. `stop` tells the caller whether a
    signal arrived."""
    run = store.get_run(run_id)
    tails = log_tails(store, run, stdout, stderr)
    stop = stop or StopRequest()
    next_engine = 0.0
    with handling_signals(stop):
        while run.info.status not in FINAL_STATUSES:
            if stop.take(0) and backend is not None and job_id is not None:
                backend.cancel(job_id)
            if backend is not None and job_id is not None and time.monotonic() >= next_engine:
                next_engine = time.monotonic() + ENGINE_EVERY_SECONDS
                run = settle(store, run, backend, job_id)
            elif gone is not None and time.monotonic() >= gone:
                break
            for tail in tails:
                tail.pump()
            if run.info.status in FINAL_STATUSES:
                break
            stop.wait(POLL_SECONDS)
            run = store.get_run(run_id)
    if backend is not None and STATE_TAG not in run.tags:
        await_record(store, run)
    for tail in tails:
        tail.pump()
    if run.info.status == RunStatus.KILLED and backend is not None and job_id is not None:
        run = correct_killed(store, run, backend, job_id)
    return run


def await_record(store: Store, run: RecordedRun, timeout: float = 10.0) -> None:
    """A server gets the node's run record just after the final status (in the node's
    publish; a file store has it before): wait for it, briefly."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = store.read_artifact(run.info, artifacts.RUN_RECORD)
        try:
            status = json.loads(text or "{}").get("run", {}).get("status")
        except ValueError:
            status = None
        if status == run.info.status.name:
            return
        time.sleep(POLL_SECONDS / 2)


def settle(store: Store, run: RecordedRun, backend: JobBackend, job_id: str) -> RecordedRun:
    """The run as it should be now: unchanged while the job lives or after the node wrote its
    status; else the engine's outcome."""
    state = engine_state(store, run, backend, job_id)
    if state is not None and not state.final:
        return run
    run = store.get_run(run.info.run_id)  # the node may have written while we asked
    if run.info.status in FINAL_STATUSES:
        return run
    if state is None:
        state = JobState("UNKNOWN", True, RunStatus.FAILED,
                         f"job {job_id} is no longer known to {backend.name}")  # fmt: skip
    status = state.status if state.status != RunStatus.FINISHED else RunStatus.FAILED
    reason = state.reason
    if state.status == RunStatus.FINISHED:
        reason = f"{state.reason or state.state}: the job ended without recording the run"
    return _record(store, run, status or RunStatus.FAILED, state, reason)


def correct_killed(
    store: Store,
    run: RecordedRun,
    backend: JobBackend,
    job_id: str,
    timeout: float = JOB_END_SECONDS,
) -> RecordedRun:
    """A node that saw only a signal wrote KILLED; a time limit or a lost node is a failure.
    The engine's word is final only once the job is over, moments after the node wrote its
    status: wait up to `timeout` for it, so that a followed run records what `runs wait`
    or `runs gc` would record later."""
    if STATE_TAG in run.tags:
        return run
    state = final_state(backend, job_id, timeout)
    if state is None:
        return run
    status = RunStatus.FAILED if state.status == RunStatus.FAILED else RunStatus.KILLED
    return _record(store, run, status, state, state.reason)


def final_state(backend: JobBackend, job_id: str, timeout: float) -> JobState | None:
    """The engine's state of the job once it is over, or None if it is not over in time."""
    deadline = time.monotonic() + timeout
    while True:
        state = known_state(backend, job_id)
        if state is not None and state.final:
            return state
        if state is None or time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS * 2)


def _record(
    store: Store, run: RecordedRun, status: RunStatus, state: JobState, reason: str
) -> RecordedRun:
    tags = {STATE_TAG: state.state, REASON_TAG: reason}
    keep_engine_log(store, run, state)
    if state.exit_code is not None and EXIT_CODE_TAG not in run.tags:
        tags[EXIT_CODE_TAG] = str(state.exit_code)
    store.set_tags(run.info, tags)
    recorded = run.tags.get("mlrun.exit_code", "")
    exit_code = state.exit_code if not recorded.lstrip("-").isdigit() else int(recorded)
    finish_run(store, run.info, status, end_time=run.info.end_time, exit_code=exit_code)
    return store.get_run(run.info.run_id)


def final_exit_code(run: RecordedRun, backend: JobBackend, job_id: str) -> int:
    """A node that failed before its entry point ran (an env build, exit 3) records no exit
    code; its job's own exit code says it, once the engine has seen the job end."""
    code = exit_code_of(run.info.status, run.tags)
    if run.info.status != RunStatus.FAILED or EXIT_CODE_TAG in run.tags:
        return code
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        state = known_state(backend, job_id)
        if state is None:
            break
        if state.final:
            return state.exit_code or code
        time.sleep(POLL_SECONDS * 2)
    return code


def exit_code_of(status: RunStatus, tags: Mapping[str, str]) -> int:
    """What `mlrun run` and `mlrun runs wait` exit with: the entry point's own code."""
    if status == RunStatus.FINISHED:
        return 0
    recorded = tags.get(EXIT_CODE_TAG, "")
    code = int(recorded) if recorded.lstrip("-").isdigit() else 0
    if status == RunStatus.KILLED:
        return code if code > 128 else INTERRUPTED_EXIT_CODE
    return code if code > 0 else 1
