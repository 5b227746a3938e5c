"""A job engine for tests, with no Slurm or Ray: every job is a real process group here.

`FakeEngine` satisfies the `JobBackend` protocol (mlrun_cli/backends/jobs.py). Its state lives
in a folder, the engine's "home" (`--backend-config '{"home": ...}'`, recorded on the run so
`runs wait/cancel/gc` find it again):

    <home>/jobs/<id>/spec.json    the job as submitted (argv, env, workdir, output log)
    <home>/jobs/<id>/state.json   PENDING, RUNNING (with the job's pid), or a final state
    <home>/unreachable            present: the engine does not answer (EngineUnreachable)

A submitted job starts at once, unless the config says `"hold": true` (it stays PENDING, as
a Slurm job waiting for nodes). Its process is this file run as a script (`job <dir>`),
leader of a new session: it runs the job's command in its own group and records how it
ended. Cancel sends SIGTERM to the whole group (as scancel does); a group killed outright
(`lose_node`) records nothing, and the engine reports NODE_FAIL once it sees the pid gone.
With `"time_limit": SECONDS` the engine ends a job that runs longer with SIGTERM to its group
and reports TIMEOUT, a failure, as Slurm does.

mlrun itself selects a backend by name from `JOB_BACKENDS`; this file, run as
`fake_engine.py mlrun ARGS...`, adds "fake" to that registry (and its config schema) in its
own process and then runs the mlrun CLI: no production code knows of the fake.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlrun_cli.backends.jobs import EngineUnreachable, JobSpec, JobState
from mlrun_cli.errors import LaunchError
from mlrun_cli.run.runner_identity import start_ticks
from mlrun_cli.tracking.entities import RunStatus
from mlrun_cli.tracking.tags import UNREACHABLE_AFTER_TAG

NAME = "fake"
HOME_TAG = "mlrun.fake.home"
FINAL_STATES = ("COMPLETED", "FAILED", "CANCELLED", "NODE_FAIL", "TIMEOUT")
SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "required": ["home"],
    "properties": {
        "home": {"type": "string", "minLength": 1},
        "hold": {"type": "boolean"},
        "time_limit": {"type": "number", "exclusiveMinimum": 0},
        "unreachable_after": {"type": "number", "exclusiveMinimum": 0},
        "environment": {"type": "array", "items": {"type": "string", "minLength": 1}},
        "staging_dir": {"type": "string", "minLength": 1},
        "mlrun_command": {"type": "string", "minLength": 1},
    },
}


class FakeEngine:
    """The `JobBackend` of the fake engine (mlrun imports it by the registry's name)."""

    name = NAME

    def __init__(self, config: Mapping[str, Any], environ: Mapping[str, str]) -> None:
        self.config = config
        self.home = Path(str(config["home"]))

    @classmethod
    def from_tags(cls, tags: Mapping[str, str], environ: Mapping[str, str]) -> FakeEngine:
        config: dict[str, Any] = {"home": tags[HOME_TAG]}
        return cls(config, environ)

    def run_tags(self) -> dict[str, str]:
        tags = {HOME_TAG: str(self.home)}
        if "unreachable_after" in self.config:
            tags[UNREACHABLE_AFTER_TAG] = str(self.config["unreachable_after"])
        return tags

    def _answering(self) -> None:
        if (self.home / "unreachable").exists():
            raise EngineUnreachable(f"the fake engine at {self.home} does not answer")

    def submit(self, spec: JobSpec) -> str:
        self._answering()
        jobs = self.home / "jobs"
        jobs.mkdir(parents=True, exist_ok=True)
        job_id = str(len(list(jobs.iterdir())) + 1)
        folder = jobs / job_id
        folder.mkdir()  # a concurrent submission of the same id fails here, not silently
        document = {
            "time_limit": self.config.get("time_limit"),
            "argv": list(spec.argv),
            "env": dict(spec.env),
            "workdir": str(spec.workdir),
            "output_log": str(spec.output_log),
        }
        (folder / "spec.json").write_text(json.dumps(document))
        if self.config.get("hold"):
            write_state(folder, {"state": "PENDING"})
        else:
            start_job(folder)
        return job_id

    def state(self, job_id: str) -> JobState | None:
        self._answering()
        folder = self.home / "jobs" / job_id
        recorded = read_state(folder)
        if recorded is None:
            return None
        state, code = recorded["state"], recorded.get("exit_code")
        if state == "RUNNING" and not leader_alive(recorded):
            state = "NODE_FAIL"  # its processes are gone and nothing recorded their end
        statuses = {
            "PENDING": RunStatus.SCHEDULED,
            "RUNNING": RunStatus.RUNNING,
            "COMPLETED": RunStatus.FINISHED,
            "FAILED": RunStatus.FAILED,
            "CANCELLED": RunStatus.KILLED,
            "NODE_FAIL": RunStatus.FAILED,
            "TIMEOUT": RunStatus.FAILED,
        }
        reasons = {
            "FAILED": f"FAILED (exit code {code})",
            "CANCELLED": "CANCELLED by the user",
            "NODE_FAIL": f"NODE_FAIL: job {job_id}'s processes vanished",
            "TIMEOUT": "TIMEOUT: the job ran past its time limit",
        }
        final = state in FINAL_STATES
        log = output_tail(folder) if state in ("FAILED", "NODE_FAIL") else ""
        return JobState(state, final, statuses[state], reasons.get(state, state), code, log)

    def cancel(self, job_id: str) -> None:
        self._answering()
        folder = self.home / "jobs" / job_id
        recorded = read_state(folder)
        if recorded is None or recorded["state"] in FINAL_STATES:
            return
        if recorded["state"] == "PENDING":
            write_state(folder, {"state": "CANCELLED"})
            return
        signal_job(recorded, signal.SIGTERM)  # ended meanwhile: its record says how


def write_state(folder: Path, state: Mapping[str, Any]) -> None:
    """Atomically: a reader never sees half a state."""
    partial = folder / "state.json.part"
    partial.write_text(json.dumps(dict(state)))
    os.replace(partial, folder / "state.json")


def read_state(folder: Path) -> dict[str, Any] | None:
    try:
        state: dict[str, Any] = json.loads((folder / "state.json").read_text())
    except FileNotFoundError:
        return None
    return state


def start_job(folder: Path, timeout: float = 30.0) -> int:
    """The job's process, leader of its own session; submitted once it has recorded itself
    RUNNING (with its pid), so that a cancel right after submit reaches it."""
    spec = json.loads((folder / "spec.json").read_text())
    output = Path(spec["output_log"])
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(output, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "job", str(folder)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while (read_state(folder) or {}).get("pid") != process.pid:
        if process.poll() is not None or time.monotonic() > deadline:
            raise LaunchError(f"fake engine: job {folder.name} did not start ({output})")
        time.sleep(0.01)
    return process.pid


def alive(pid: int) -> bool:
    """A live process, not a zombie nobody reaped (the submitter may be its parent)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def output_tail(folder: Path, lines: int = 20) -> str:
    spec = json.loads((folder / "spec.json").read_text())
    try:
        text = Path(spec["output_log"]).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def job_states(home: Path) -> list[dict[str, Any]]:
    """The recorded states of the jobs that were started."""
    states = (read_state(folder) for folder in (home / "jobs").glob("*"))
    return [state for state in states if state and "pid" in state]


def leader_alive(state: Mapping[str, Any]) -> bool:
    """The job's own process is alive: its pid, with the start time the job recorded (a pid
    in state.json outlives the job and may be another process's by now)."""
    pid = int(state["pid"])
    return alive(pid) and start_ticks(pid) == state.get("start")


def signal_job(state: Mapping[str, Any], signum: int) -> None:
    """Signal the job's process group while its leader holds the id (alive, or a zombie not
    yet reaped): once the leader is gone the id may be another user's group."""
    pid = int(state["pid"])
    if start_ticks(pid) != state.get("start"):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def lose_node(home: Path, job_id: str) -> None:
    """The node dies: SIGKILL to the job's whole group; nothing records the job's end."""
    state = read_state(home / "jobs" / job_id)
    assert state is not None and leader_alive(state), state
    signal_job(state, signal.SIGKILL)


def release(home: Path, job_id: str) -> None:
    """The engine starts the job whatever its state said (a cancel that came too late)."""
    start_job(home / "jobs" / job_id)


def stop_engine(home: Path) -> None:
    """The engine goes away with its jobs (a Ray head stopped): it no longer answers."""
    (home / "unreachable").touch()
    for state in job_states(home):
        signal_job(state, signal.SIGKILL)


def _run_job(folder: Path) -> int:
    """The job itself: its command in this process group; how it ended, in state.json."""
    spec = json.loads((folder / "spec.json").read_text())
    cancelled: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: cancelled.append(signum))
    me = {"pid": os.getpid(), "start": start_ticks(os.getpid())}
    write_state(folder, {"state": "RUNNING", **me})
    node_environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    child = subprocess.Popen(
        spec["argv"], cwd=spec["workdir"], env={**node_environment, **spec["env"]}
    )
    if cancelled:  # the group's SIGTERM came before the command existed
        child.terminate()
    timed_out = False
    try:
        code = child.wait(timeout=spec["time_limit"])
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(0, signal.SIGTERM)  # the whole job, as Slurm ends it
        code = child.wait()
    if timed_out or cancelled:
        state = "TIMEOUT" if timed_out else "CANCELLED"
    else:
        state = "COMPLETED" if code == 0 else "FAILED"
    write_state(folder, {"state": state, "exit_code": code, **me})
    return 0


def _run_mlrun(argv: list[str]) -> None:
    """The mlrun CLI with the fake engine in its backend registry and its schema."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # `tests` importable
    from mlrun_cli import backends
    from mlrun_cli.project import schema

    backends.JOB_BACKENDS[NAME] = ("tests.backends.fake_engine", "FakeEngine")
    shipped = schema.load_schema

    def load_schema(name: str) -> dict[str, Any]:
        return dict(SCHEMA) if name == NAME else shipped(name)

    schema.load_schema = load_schema  # type: ignore[assignment]  # the fake's own schema
    from mlrun_cli.cli import main

    main(argv)


if __name__ == "__main__":
    if sys.argv[1] == "job":
        sys.exit(_run_job(Path(sys.argv[2])))
    _run_mlrun(sys.argv[2:])
