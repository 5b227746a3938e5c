"""A Ray user's day with a head that goes away: a detached run followed by `runs wait`, a
second run whose head is stopped while it runs (`runs gc` names the engine it cannot reach,
`runs wait` settles the run FAILED after the config's `unreachable_after`), with RAY_ADDRESS
pointing at another cluster all along: the config's address is the one used and recorded."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from tests.backends.engines import ray_head, stop_ray_head, wait_for
from tests.backends.jobs_common import sleeper, stored_run
from tests.conftest import run_mlrun

pytestmark = [pytest.mark.journey, pytest.mark.slow, pytest.mark.ray]

UNREACHABLE_AFTER = 5.0


def _elsewhere() -> str:
    """An address where no cluster answers (a port just closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_detached_runs_wait_and_a_lost_head_settled_failed(tmp_path: Path) -> None:
    sleeper(tmp_path)
    elsewhere = _elsewhere()

    def mlrun(*args: str) -> tuple[int, str, str]:
        done = run_mlrun(*args, cwd=tmp_path, timeout=300, RAY_ADDRESS=elsewhere)
        assert "Traceback" not in done.stderr, done.stderr
        return done.returncode, done.stdout, done.stderr

    with ray_head() as (address, head):
        config = json.dumps({"address": address, "unreachable_after": UNREACHABLE_AFTER})
        submit = ("run", "sleeper", "--no-env", "--backend", "ray", "--backend-config", config,
                  "--detach", "--json")  # fmt: skip
        code, out, err = mlrun(*submit, "-P", "seconds=1")
        assert code == 0, err
        first = str(json.loads(out)["run"]["run_id"])
        code, out, err = mlrun("runs", "wait", first)
        assert (code, out) == (0, f"{first} FINISHED (exit code 0)\n"), err
        assert stored_run(tmp_path, first).tags["mlrun.ray.address"] == address

        code, out, err = mlrun(*submit, "-P", "seconds=300")
        assert code == 0, err
        second = str(json.loads(out)["run"]["run_id"])
        wait_for(lambda: stored_run(tmp_path, second).info.status.name == "RUNNING", 120,
                 "the second run RUNNING")  # fmt: skip
        stop_ray_head(head)

    code, out, err = mlrun("runs", "gc")
    assert (code, out) == (0, "0 stuck runs found\n"), err
    assert f"run {second}" in err and address in err, err
    lost = time.monotonic()
    code, out, err = mlrun("runs", "wait", second)
    assert (code, out) == (1, f"{second} FAILED (exit code 1)\n"), err
    assert time.monotonic() - lost >= UNREACHABLE_AFTER - 1.0
    code, out, err = mlrun("runs", "describe", second)
    assert code == 0, err
    assert f"  mlrun.engine.reason: cannot reach the Ray cluster at {address} (" in out, out
    assert "  mlrun.engine.state: UNREACHABLE" in out, out

    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    lost_run = client.get_run(second)
    assert lost_run.info.status == "FAILED"
    reason = lost_run.data.tags["mlrun.engine.reason"]
    assert "\n" not in reason and address in reason and len(reason) < 300, reason
    assert lost_run.data.tags["mlrun.ray.address"] == address
    statuses = {run.info.run_id: run.info.status for run in client.search_runs(["0"])}
    assert statuses == {first: "FINISHED", second: "FAILED"}
    code, out, err = mlrun("runs", "list", "--status", "RUNNING")
    assert code == 0 and first[:8] not in out and second[:8] not in out, out + err
