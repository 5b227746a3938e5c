"""Submitted runs end to end against the fake engine (tests/backends/fake_engine.py): real
`mlrun` processes submit, follow, wait, cancel and gc; every job is a real process group
running the node-side mlrun. What follow/control/settle/reconcile do is tested here without
Slurm or Ray; the real-engine tests (test_slurm.py, test_ray.py) stay.

The entry point waits for a gate file before it exits, so a test decides when a job ends.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlrun_cli.run.runner_identity import end_recorded_group
from mlrun_cli.tracking.file_store import FileStore
from mlrun_cli.tracking.store import RecordedRun
from tests.backends import fake_engine
from tests.backends.engines import wait_for
from tests.conftest import child_env, write_files

LAUNCHER = str(Path(fake_engine.__file__).resolve())
GATED = {
    "MLproject": (
        "name: gated\n"
        "entry_points:\n"
        "  main:\n"
        "    parameters: {gate: {type: string}, code: {type: int, default: 0}}\n"
        "    command: \"echo started; while [ ! -e '{gate}' ]; do sleep 0.05; done; "
        'echo done >&2; exit {code}"\n'
    )
}


@dataclass
class Engine:
    """The fake engine's home, the user's working folder, and the followers started."""

    home: Path
    cwd: Path
    followers: list[subprocess.Popen[str]]

    @property
    def gate(self) -> Path:
        """The file the entry point waits for before it ends."""
        return self.cwd / "gate"

    @property
    def store(self) -> FileStore:
        return FileStore(self.cwd / "mlruns")

    def config(self, **values: object) -> str:
        return json.dumps({"home": str(self.home), **values})

    def run_args(self, *extra: str, **config: object) -> tuple[str, ...]:
        """`mlrun run` of the gated project on the fake engine."""
        return ("run", "gated", "--no-env", "--backend", "fake", "-P", f"gate={self.gate}",
                "--backend-config", self.config(**config), *extra)  # fmt: skip

    def mlrun(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`mlrun ARGS` as a user runs it, with the fake engine in its registry."""
        return subprocess.run(
            [sys.executable, LAUNCHER, "mlrun", *args],
            cwd=self.cwd,
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )

    def follow(self, *args: str) -> subprocess.Popen[str]:
        """An attached `mlrun run` in the background: the follower."""
        follower = subprocess.Popen(
            [sys.executable, LAUNCHER, "mlrun", *args],
            cwd=self.cwd,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        self.followers.append(follower)
        return follower

    def waiting(self, run_id: str) -> subprocess.Popen[str]:
        """`mlrun runs wait RUN`, proved to be waiting: it has not ended within seconds while
        the run's entry point waits for its gate (an end then would be a wait that did not)."""
        waiter = self.follow("runs", "wait", run_id)
        with pytest.raises(subprocess.TimeoutExpired):
            waiter.wait(timeout=3)
        return waiter

    def submit(self, *args: str, **config: object) -> str:
        """A detached run of the gated project; its run id."""
        done = self.mlrun(*self.run_args("--detach", "--json", *args, **config))
        assert done.returncode == 0, done.stderr
        return str(json.loads(done.stdout)["run"]["run_id"])

    def run(self, run_id: str) -> RecordedRun:
        return self.store.get_run(run_id)

    def status(self, run_id: str) -> str:
        return self.run(run_id).info.status.name

    def job_state(self, run_id: str) -> str:
        job_id = self.run(run_id).tags["mlrun.fake.job_id"]
        state = fake_engine.read_state(self.home / "jobs" / job_id)
        assert state is not None
        return str(state["state"])

    def await_running(self, run_id: str) -> None:
        """The node has claimed the run and its entry point printed its first line."""
        wait_for(lambda: self.status(run_id) == "RUNNING", 60, "the node to start the run")
        stdout = self.store.artifact_dir(self.run(run_id).info) / "logs" / "stdout.log"
        wait_for(lambda: stdout.is_file() and "started" in stdout.read_text(), 60, "started")

    def only_run(self) -> str:
        """The id of the one run in the store, once the submitter has created it."""
        runs = wait_for(
            lambda: (self.cwd / "mlruns" / "0").is_dir() and self.store.stored_runs(["0"]),
            60,
            "the run to be created",
        )
        assert len(runs) == 1
        return runs[0].info.run_id


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    write_files(tmp_path / "gated", GATED)
    made = Engine(tmp_path / "engine", tmp_path, [])
    try:
        yield made
    finally:
        for follower in made.followers:
            with contextlib.suppress(ProcessLookupError):
                follower.kill()
            follower.communicate(timeout=30)
        for state in fake_engine.job_states(made.home) if (made.home / "jobs").is_dir() else ():
            fake_engine.signal_job(state, signal.SIGKILL)
        if (tmp_path / "mlruns" / "0").is_dir():
            for run in made.store.stored_runs(["0"], "all"):
                end_recorded_group(dict(run.tags), run.info.run_id)  # what a killed node left


def test_an_attached_run_is_followed_to_finished_with_its_output(engine: Engine) -> None:
    engine.gate.touch()
    done = engine.mlrun(*engine.run_args())
    assert done.returncode == 0, done.stderr
    assert "started" in done.stdout and "done" in done.stderr  # streamed from the run's logs
    run_id = engine.only_run()
    run = engine.run(run_id)
    assert run.info.status.name == "FINISHED"
    assert (run.tags["mlrun.backend"], run.tags["mlrun.fake.job_id"]) == ("fake", "1")
    assert run.params["gate"] == str(engine.gate)
    assert engine.job_state(run_id) == "COMPLETED"


def test_a_failing_entry_point_fails_the_run_with_its_exit_code(engine: Engine) -> None:
    engine.gate.touch()
    done = engine.mlrun(*engine.run_args("-P", "code=3"))
    assert done.returncode == 3, done.stderr
    assert "on the node" in done.stderr and "exit code 3" in done.stderr
    run = engine.run(engine.only_run())
    assert run.info.status.name == "FAILED"
    assert run.tags["mlrun.exit_code"] == "3"


def test_runs_wait_gives_a_detached_run_the_exit_code_an_attached_one_gets(
    engine: Engine,
) -> None:
    run_id = engine.submit("-P", "code=4")
    engine.await_running(run_id)
    waiter = engine.waiting(run_id)
    engine.gate.touch()
    stdout, stderr = waiter.communicate(timeout=60)
    assert waiter.returncode == 4, stderr
    assert stdout.strip() == f"{run_id} FAILED (exit code 4)"


def test_cancel_of_a_running_job_records_it_killed_not_finished(engine: Engine) -> None:
    run_id = engine.submit()
    engine.await_running(run_id)
    cancelled = engine.mlrun("runs", "cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"Run {run_id} KILLED"
    assert engine.status(run_id) == "KILLED"
    assert engine.job_state(run_id) == "CANCELLED"
    waited = engine.mlrun("runs", "wait", run_id)  # the entry point's own end: SIGTERM
    assert (waited.returncode, waited.stdout.strip()) == (143, f"{run_id} KILLED (exit code 143)")


def test_cancel_of_a_pending_job_records_the_engines_word(engine: Engine) -> None:
    run_id = engine.submit(hold=True)
    assert engine.status(run_id) == "SCHEDULED"
    cancelled = engine.mlrun("runs", "cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stderr
    run = engine.run(run_id)
    assert run.info.status.name == "KILLED"
    assert run.tags["mlrun.engine.state"] == "CANCELLED"
    assert run.tags["mlrun.engine.reason"] == "CANCELLED by the user"


def test_ctrl_c_of_the_follower_cancels_the_job(engine: Engine) -> None:
    follower = engine.follow(*engine.run_args())
    run_id = engine.only_run()
    engine.await_running(run_id)
    follower.send_signal(signal.SIGINT)
    _, stderr = follower.communicate(timeout=60)
    assert follower.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert engine.status(run_id) == "KILLED"
    assert engine.job_state(run_id) == "CANCELLED"


def test_a_run_whose_follower_died_is_followed_to_its_end_by_runs_wait(engine: Engine) -> None:
    follower = engine.follow(*engine.run_args())
    run_id = engine.only_run()
    engine.await_running(run_id)
    follower.kill()
    follower.communicate(timeout=30)
    assert engine.status(run_id) == "RUNNING"  # the job lives on without its follower
    waiter = engine.waiting(run_id)
    engine.gate.touch()
    stdout, stderr = waiter.communicate(timeout=60)
    assert waiter.returncode == 0, stderr
    assert stdout.strip() == f"{run_id} FINISHED (exit code 0)"
    assert engine.status(run_id) == "FINISHED"


def test_gc_settles_a_run_whose_follower_and_node_died(engine: Engine) -> None:
    follower = engine.follow(*engine.run_args())
    run_id = engine.only_run()
    engine.await_running(run_id)
    follower.kill()
    follower.communicate(timeout=30)
    fake_engine.lose_node(engine.home, engine.run(run_id).tags["mlrun.fake.job_id"])
    assert engine.status(run_id) == "RUNNING"  # nobody recorded the end
    gc = engine.mlrun("runs", "gc")
    assert gc.returncode == 0, gc.stderr
    assert f"Run {run_id}" in gc.stdout and "marked FAILED: NODE_FAIL" in gc.stdout
    run = engine.run(run_id)
    assert run.info.status.name == "FAILED"
    assert run.tags["mlrun.engine.state"] == "NODE_FAIL"
    engine_log = engine.store.read_artifact(run.info, "logs/engine.log")
    assert engine_log is not None and f"mlrun: run {run_id}" in engine_log
    again = engine.mlrun("runs", "gc")
    assert again.stdout.strip() == "0 stuck runs found"


def test_an_engine_that_stays_unreachable_fails_the_run_after_its_stated_time(
    engine: Engine,
) -> None:
    run_id = engine.submit(unreachable_after=2)
    engine.await_running(run_id)
    fake_engine.stop_engine(engine.home)
    gc = engine.mlrun("runs", "gc")
    assert gc.returncode == 0, gc.stderr
    assert f"run {run_id}" in gc.stderr
    assert "left RUNNING: cannot reach its fake engine" in gc.stderr
    assert engine.status(run_id) == "RUNNING"  # not yet: the engine may come back
    waited = engine.mlrun("runs", "wait", run_id)
    assert waited.returncode == 1, waited.stderr
    assert waited.stdout.strip() == f"{run_id} FAILED (exit code 1)"
    run = engine.run(run_id)
    assert run.info.status.name == "FAILED"
    assert run.tags["mlrun.engine.state"] == "UNREACHABLE"
    assert "does not answer; unreachable for" in run.tags["mlrun.engine.reason"]


def test_a_job_that_ends_without_recording_the_run_fails_it(engine: Engine) -> None:
    """A wrong `mlrun_command` runs something that exits 0 and never touches the run."""
    done = engine.mlrun(*engine.run_args(mlrun_command="true"))
    assert done.returncode == 1, done.stderr
    assert "the job ended without recording the run" in done.stderr
    run = engine.run(engine.only_run())
    assert run.info.status.name == "FAILED"
    assert run.tags["mlrun.engine.reason"] == "COMPLETED: the job ended without recording the run"


def test_a_job_started_after_its_run_was_cancelled_leaves_the_run_killed(engine: Engine) -> None:
    """The node refuses to continue a run that already ended (run/node.py): an engine that
    starts a job as its cancel arrives cannot turn a KILLED run into a FINISHED one."""
    run_id = engine.submit(hold=True)
    assert engine.mlrun("runs", "cancel", run_id).returncode == 0
    engine.gate.touch()  # were the node to run the entry point, it would finish at once
    job_id = engine.run(run_id).tags["mlrun.fake.job_id"]
    fake_engine.release(engine.home, job_id)
    wait_for(lambda: engine.job_state(run_id) != "RUNNING", 60, "the released job's end")
    assert engine.job_state(run_id) == "FAILED"
    output = fake_engine.output_tail(engine.home / "jobs" / job_id)
    assert f"--run-id {run_id}: the run is already KILLED" in output
    run = engine.run(run_id)
    assert run.info.status.name == "KILLED"
    assert run.tags["mlrun.engine.state"] == "CANCELLED"
    assert engine.mlrun("runs", "gc").stdout.strip() == "0 stuck runs found"


def test_cancel_of_a_run_whose_engine_is_gone_fails_it_after_its_stated_time(
    engine: Engine,
) -> None:
    run_id = engine.submit(unreachable_after=2)
    engine.await_running(run_id)
    fake_engine.stop_engine(engine.home)
    cancelled = engine.mlrun("runs", "cancel", run_id)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"Run {run_id} FAILED"
    assert f"run {run_id} FAILED: the fake engine at" in cancelled.stderr
    run = engine.run(run_id)
    assert run.info.status.name == "FAILED"
    assert run.tags["mlrun.engine.state"] == "UNREACHABLE"


def test_runs_logs_follow_streams_a_submitted_run_until_it_ends(engine: Engine) -> None:
    run_id = engine.submit()
    engine.await_running(run_id)
    follower = engine.follow("runs", "logs", "-f", run_id)
    with pytest.raises(subprocess.TimeoutExpired):
        follower.wait(timeout=3)  # still following: the run has not ended
    engine.gate.touch()
    stdout, stderr = follower.communicate(timeout=60)
    assert follower.returncode == 0, stderr
    assert (stdout, stderr) == ("started\n", "done\n")
    assert engine.status(run_id) == "FINISHED"


def test_a_submission_the_engine_does_not_take_fails_the_run_it_created(engine: Engine) -> None:
    engine.home.mkdir()
    fake_engine.stop_engine(engine.home)
    done = engine.mlrun(*engine.run_args())
    assert done.returncode == 1, done.stderr  # a LaunchError
    assert f"the fake engine at {engine.home} does not answer" in done.stderr
    assert "Traceback" not in done.stderr
    run = engine.run(engine.only_run())
    assert run.info.status.name == "FAILED"  # never left SCHEDULED
    assert "mlrun.fake.job_id" not in run.tags


def test_a_job_past_its_time_limit_is_recorded_failed_not_killed(engine: Engine) -> None:
    """The node sees only SIGTERM and records KILLED; the engine knows it was the time limit
    (follow.correct_killed): the run the user finds is FAILED, with the engine's reason."""
    done = engine.mlrun(*engine.run_args(time_limit=1))
    assert done.returncode == 143, done.stderr  # the entry point's own end: SIGTERM
    run = engine.run(engine.only_run())
    assert run.info.status.name == "FAILED"
    assert run.tags["mlrun.engine.state"] == "TIMEOUT"
    assert run.tags["mlrun.engine.reason"] == "TIMEOUT: the job ran past its time limit"
    assert "TIMEOUT: the job ran past its time limit" in done.stderr


def test_gc_corrects_a_detached_run_its_node_recorded_killed_on_a_time_limit(
    engine: Engine,
) -> None:
    run_id = engine.submit(time_limit=1)
    wait_for(lambda: engine.job_state(run_id) == "TIMEOUT", 60, "the job's time limit")
    assert engine.status(run_id) == "KILLED"  # what the node saw
    gc = engine.mlrun("runs", "gc")
    assert gc.returncode == 0, gc.stderr
    assert f"Run {run_id}" in gc.stdout and "marked FAILED: TIMEOUT" in gc.stdout
    assert engine.status(run_id) == "FAILED"
