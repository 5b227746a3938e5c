"""Real cluster engines for the job-backend tests: a one-node Slurm cluster and a Ray head.

Both are started by the tests and stopped by pid/process group afterwards. Where an engine
cannot be had, its tests skip, except under CI=true, where a missing engine fails.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import REPO

SLURM_SCRIPT = REPO / "scripts" / "slurm.sh"


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def slurm_conf() -> Iterator[str]:
    """SLURM_CONF of a one-node cluster of this session's own: its state folder (a fresh one,
    or MLRUN_SLURM_STATE to reuse a cluster kept between sessions) and its own free ports, so
    that parallel test sessions and a developer's cluster do not meet. Stopped afterwards if
    this session started it."""
    if os.geteuid() != 0 and shutil.which("sbatch") is None:
        unavailable("no Slurm here and not root to start one")
    given = os.environ.get("MLRUN_SLURM_STATE")
    state = given or tempfile.mkdtemp(prefix="mlrun-slurm-", dir="/tmp")  # short socket paths
    env = {**os.environ, "MLRUN_SLURM_STATE": state}
    before = subprocess.run(
        ["bash", str(SLURM_SCRIPT), "start"], capture_output=True, text=True, env=env
    )
    if before.returncode != 0:
        unavailable(f"scripts/slurm.sh start failed: {before.stderr.strip()[-300:]}")
    conf = before.stdout.strip().rpartition("SLURM_CONF=")[2]
    started_here = "starting munged" in before.stderr
    yield conf
    if started_here:
        subprocess.run(["bash", str(SLURM_SCRIPT), "stop"], capture_output=True, env=env)
    if not given:
        shutil.rmtree(state, ignore_errors=True)


def slurm_job_state(job_id: str, conf: str) -> str:
    return slurm_job_field(job_id, conf, "JobState")


def slurm_job_field(job_id: str, conf: str, name: str) -> str:
    """One `NAME=value` of `scontrol show job`, or UNKNOWN."""
    shown = subprocess.run(
        ["scontrol", "show", "job", "-o", job_id],
        capture_output=True,
        text=True,
        env={**os.environ, "SLURM_CONF": conf},
    )
    for item in shown.stdout.split():
        if item.startswith(f"{name}="):
            return item.partition("=")[2]
    return "UNKNOWN"


def reach_time_limit_now(job_id: str, conf: str) -> None:
    """Make Slurm end a running job by its time limit within about 30 s instead of 60 to 90.

    Limits are whole minutes, and slurmctld checks them every 30 s (PERIODIC_TIMEOUT in its
    controller.c; no setting changes it), so a job with the least limit, one minute, runs for
    60 to 90 s. After checking that the job got the one-minute limit it was submitted with,
    this lowers the limit to zero: Slurm's next check ends the job as the end of its minute
    would (SIGTERM, KillWait, then state TIMEOUT with reason TimeLimit)."""
    assert slurm_job_field(job_id, conf, "TimeLimit") == "00:01:00"
    lowered = subprocess.run(
        ["scontrol", "update", f"JobId={job_id}", "TimeLimit=0"],
        capture_output=True,
        text=True,
        env={**os.environ, "SLURM_CONF": conf},
    )
    # Refused only when the job's own minute is already up (a node slow to start the run).
    assert lowered.returncode == 0 or slurm_job_state(job_id, conf) != "RUNNING", lowered.stderr


def wait_for(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    """Poll with a deadline; the value the predicate returned when it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def ray_address() -> Iterator[str]:
    """The job API address of a Ray head started for this session."""
    with ray_head() as (address, _head):
        yield address


@contextmanager
def ray_head() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Ray head of its own: its job API address and its `ray start` process, the leader of
    its process group (ended afterwards, or earlier by `stop_ray_head`; never `ray stop`,
    which would end every Ray process on the machine)."""
    if importlib.util.find_spec("ray") is None:
        unavailable("ray is not installed in this environment (pip install 'ray[default]')")
    temp = tempfile.mkdtemp(prefix="mlrun-ray-", dir="/tmp")  # short: Ray's socket paths
    dashboard = _free_port()
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    # On SIGTERM a head first drains its node for up to 30 s (for Serve traffic): stopping
    # it, in a test's teardown or as a lost head, would wait that out or end in SIGKILL,
    # which leaves its workers (process groups of their own) behind.
    env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
    for name in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        env.pop(name, None)
    # `python -m`: a venv with system site packages has Ray but not its `ray` script.
    head = subprocess.Popen(
        [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block",
         "--num-cpus", "2",
         "--node-ip-address", "127.0.0.1", "--port", str(_free_port()),
         "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
         "--include-dashboard", "true", "--temp-dir", temp, "--disable-usage-stats",
         # Free ports for the rest too: Ray's defaults collide with any other head here.
         "--dashboard-agent-listen-port", str(_free_port()),
         "--dashboard-agent-grpc-port", str(_free_port()),
         "--runtime-env-agent-port", str(_free_port()),
         "--metrics-export-port", str(_free_port()),
         "--ray-client-server-port", str(_free_port())],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    address = f"http://127.0.0.1:{dashboard}"
    try:
        from ray.job_submission import JobSubmissionClient

        def reachable() -> bool:
            if head.poll() is not None:
                raise AssertionError(f"ray start exited with {head.returncode}")
            try:
                JobSubmissionClient(address).list_jobs()
            except Exception:
                return False
            return True

        wait_for(reachable, 120, "the Ray head's job API")
        yield address, head
    finally:
        _end_group(head)
        shutil.rmtree(temp, ignore_errors=True)


def stop_ray_head(head: subprocess.Popen[bytes]) -> None:
    """End a head's whole process group now, as a lost head node would (by its pgid)."""
    _end_group(head)


def _end_group(process: subprocess.Popen[bytes]) -> None:
    for signum, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
