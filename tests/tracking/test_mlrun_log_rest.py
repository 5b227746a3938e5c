"""mlrun_log over REST loses nothing: a real `mlflow server` (SQLite) behind a TCP proxy that
cuts and restores the connection at chosen moments; MLflow's own client reads the result.

The rule: every point reaches the server exactly once, or is kept in the outbox and delivered
once by `mlrun sync`; a refused item is dropped with one line and everything else arrives.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RUNTIME, child_env, mlrun_command, run_mlrun, write_files
from tests.servers import MlflowServer
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

POINTS = 60
STEP_SECONDS = 0.1  # 6 s a run: mlrun_log sends every second, so each outage spans sends
# A user's training loop: one point per step; each step is also a line in a progress file, the
# event the tests cut and restore the connection on.
LOOP = f"""
import sys, time
import mlrun_log as ml
progress, points = sys.argv[1], int(sys.argv[2])
for step in range(points):
    ml.log_metric("loss", 1.0 / (step + 1), step=step)
    with open(progress, "a") as lines:
        lines.write(f"{{step}}\\n")
    time.sleep({STEP_SECONDS})
ml.log_param("points", points)
ml.set_tag("done", "yes")
"""
LOOP_PROJECT = {
    "MLproject": """
entry_points:
  main:
    parameters:
      progress: string
    command: "python loop.py {progress} 60"
""",
    "loop.py": LOOP,
}
READ = """
import json, sys
from mlflow import MlflowClient
client = MlflowClient(sys.argv[1])
run = client.get_run(sys.argv[2])
history = {key: [[m.step, m.value] for m in client.get_metric_history(run.info.run_id, key)]
           for key in run.data.metrics}
print(json.dumps({"status": run.info.status, "params": run.data.params,
                  "tags": run.data.tags, "history": history}))
"""


def mlflow_sees(uri: str, run_id: str) -> dict[str, object]:
    """The run as MLflow's own client reads it, every metric's whole history included."""
    done = subprocess.run(
        [sys.executable, "-c", READ, uri, run_id],
        capture_output=True,
        text=True,
        env=child_env(),
        check=True,
        timeout=300,
    )
    seen: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return seen


def loss_steps(seen: dict[str, object]) -> list[int]:
    history: dict[str, list[list[float]]] = seen["history"]  # type: ignore[assignment]
    return sorted(int(step) for step, _ in history.get("loss", []))


def wait_for_lines(path: Path, count: int, process: subprocess.Popen[str]) -> None:
    """Until the entry point has logged `count` points (or has exited)."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if path.is_file() and len(path.read_text().splitlines()) >= count:
            return
        time.sleep(0.02)
    assert process.poll() is None or count == 0, f"the entry point ended before point {count}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    data = tmp_path_factory.mktemp("mlflow-server")
    running = MlflowServer(f"sqlite:///{data / 'mlflow.db'}", data).start()
    yield running
    running.stop()


@pytest.fixture
def proxy(server: MlflowServer) -> Iterator[TcpProxy]:
    with TcpProxy(server.port) as started:
        yield started


def runner_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """What every `mlrun` here gets: its own caches, this interpreter first on PATH."""
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLRUN_CACHE_DIR": str(tmp_path / "cache"),
        **extra,
    }


def start_loop_run(tmp_path: Path, uri: str, env: dict[str, str]) -> subprocess.Popen[str]:
    project = write_files(tmp_path / "project", LOOP_PROJECT)
    argv = mlrun_command(
        "run", str(project), "--no-env", "--json", "--tracking-uri", uri,
        "-P", f"progress={tmp_path / 'progress'}",
    )  # fmt: skip
    return subprocess.Popen(
        argv, cwd=tmp_path, env=child_env(**env), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def create_run(uri: str) -> str:
    """A RUNNING run in the Default experiment, as the runner creates it."""
    body = json.dumps({"experiment_id": "0", "start_time": int(time.time() * 1000)}).encode()
    request = urllib.request.Request(
        f"{uri}/api/2.0/mlflow/runs/create", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return str(json.loads(answer.read())["run"]["info"]["run_id"])


def assert_every_point_once(seen: dict[str, object]) -> None:
    assert loss_steps(seen) == list(range(POINTS))
    assert seen["params"] == {"progress": seen["params"]["progress"], "points": "60"}  # type: ignore[index]
    assert seen["tags"]["done"] == "yes"  # type: ignore[index]


# Cut and restore moments, in points logged: early, late, long, and restored only once the
# loop is over (the entry point is already in its exit flush).
OUTAGES = [(5, 25), (10, 50), (20, 40), (30, 57), (2, 58), (40, 60)]


@pytest.mark.parametrize(("cut_at", "restore_at"), OUTAGES)
def test_an_outage_mid_run_loses_and_repeats_nothing(
    tmp_path: Path, server: MlflowServer, proxy: TcpProxy, cut_at: int, restore_at: int
) -> None:
    child = start_loop_run(tmp_path, proxy.uri, runner_env(tmp_path))
    try:
        wait_for_lines(tmp_path / "progress", cut_at, child)
        proxy.cut()
        wait_for_lines(tmp_path / "progress", restore_at, child)
        proxy.restore()
        out, err = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    assert proxy.reset_count > 0  # the entry point did meet the outage
    assert "not sent" not in err and "mlrun sync" not in err
    run_id = json.loads(out)["run"]["run_id"]
    seen = mlflow_sees(server.uri, run_id)
    assert seen["status"] == "FINISHED"
    assert_every_point_once(seen)


def test_an_outage_past_the_end_keeps_the_points_for_sync(
    tmp_path: Path, server: MlflowServer, proxy: TcpProxy
) -> None:
    env = runner_env(
        tmp_path, MLFLOW_HTTP_REQUEST_MAX_RETRIES="2", MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR="1"
    )
    child = start_loop_run(tmp_path, proxy.uri, env)
    wait_for_lines(tmp_path / "progress", 20, child)
    proxy.cut()
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    assert "for `mlrun sync`" in err  # the entry point's one line: what it handed over
    assert "run `mlrun sync` to send them" in err  # the runner's: where it is kept
    run_id = json.loads(out)["run"]["run_id"]
    assert (tmp_path / "cache" / "outbox" / run_id / "entry.json").is_file()
    assert len(loss_steps(mlflow_sees(server.uri, run_id))) < POINTS

    proxy.restore()
    synced = run_mlrun("sync", cwd=tmp_path, **env)
    assert (synced.returncode, synced.stdout) == (0, f"run {run_id}: sent to {proxy.uri}\n")
    again = run_mlrun("sync", cwd=tmp_path, **env)
    assert (again.returncode, again.stdout) == (0, "nothing to send: the outbox is empty\n")
    seen = mlflow_sees(server.uri, run_id)
    assert seen["status"] == "FINISHED"
    assert_every_point_once(seen)


def test_the_exit_does_not_wait_through_the_back_off(
    tmp_path: Path, server: MlflowServer, proxy: TcpProxy
) -> None:
    """MLflow's default retries (7, back-off factor 2: minutes); the exit takes at most
    MLRUN_LOG_EXIT_TIMEOUT, and what the server lacks is exactly what was handed over."""
    run_id = create_run(server.uri)
    unsent = tmp_path / "unsent.jsonl"
    env = child_env(
        PYTHONPATH=str(RUNTIME), MLFLOW_TRACKING_URI=proxy.uri, MLFLOW_RUN_ID=run_id,
        MLRUN_LOG_UNSENT=str(unsent), MLRUN_LOG_EXIT_TIMEOUT="5",
    )  # fmt: skip
    progress = tmp_path / "progress"
    child = subprocess.Popen(
        [sys.executable, "-c", LOOP, str(progress), str(POINTS)],
        env=env, text=True, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_lines(progress, 10, child)
        proxy.cut()
        wait_for_lines(progress, POINTS, child)
        last_point = time.monotonic()
        _, err = child.communicate(timeout=120)
        exit_took = time.monotonic() - last_point
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    assert exit_took < 5 + STEP_SECONDS + 5, f"the exit took {exit_took:.1f} s"
    handed = [json.loads(line)["payload"] for line in unsent.read_text().splitlines()]
    handed_steps = [m["step"] for batch in handed for m in batch["metrics"]]
    proxy.restore()
    sent_steps = loss_steps(mlflow_sees(server.uri, run_id))
    assert sorted(sent_steps + handed_steps) == list(range(POINTS))
    assert {p["key"] for batch in handed for p in batch["params"]} == {"points"}
    assert err.count("\n") <= 2 + err.count("will retry")  # one line for what is handed over


REFUSED_PROJECT = {
    "MLproject": """
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
    command: "python train.py"
""",
    "train.py": """
import mlrun_log as ml
ml.log_metric("before", 1.0)
ml.log_param("alpha", "0.7")  # the runner logged 0.5: the server refuses it
for step in range(5):
    ml.log_metric("after", step, step=step)
ml.log_params({"later": "1", "other": "2"})
ml.set_tag("after", "yes")
""",
}


def test_a_refused_param_is_dropped_with_one_line_and_the_rest_arrives(
    tmp_path: Path, server: MlflowServer
) -> None:
    project = write_files(tmp_path / "project", REFUSED_PROJECT)
    done = run_mlrun(
        "run", str(project), "--no-env", "--json", "--tracking-uri", server.uri,
        cwd=tmp_path, timeout=300, **runner_env(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    about_alpha = [line for line in done.stderr.splitlines() if "alpha" in line]
    assert len(about_alpha) == 1, done.stderr
    assert "HTTP 400" in about_alpha[0] and "dropped the param 'alpha'" in about_alpha[0]
    assert "will retry" not in done.stderr
    seen = mlflow_sees(server.uri, json.loads(done.stdout)["run"]["run_id"])
    assert seen["status"] == "FINISHED"
    assert seen["params"] == {"alpha": "0.5", "later": "1", "other": "2"}
    assert seen["tags"]["after"] == "yes"  # type: ignore[index]
    history: dict[str, list[list[float]]] = seen["history"]  # type: ignore[assignment]
    assert history["before"] == [[0, 1.0]]
    assert sorted(history["after"]) == [[step, float(step)] for step in range(5)]


SPECIAL_VALUES = """
import math, sys
import mlrun_log as ml
for step, value in enumerate([math.nan, math.inf, -math.inf, 2.5]):
    ml.log_metric("v", value, step=step)
ml.log_metric("next", 1.0)
try:
    ml.log_param("key\\n", 1)
except ValueError as exc:
    print("refused:", exc)
"""


def test_nan_and_infinities_round_trip_and_a_newline_key_is_refused(
    tmp_path: Path, server: MlflowServer
) -> None:
    run_id = create_run(server.uri)
    done = subprocess.run(
        [sys.executable, "-c", SPECIAL_VALUES],
        env=child_env(PYTHONPATH=str(RUNTIME), MLFLOW_TRACKING_URI=server.uri, MLFLOW_RUN_ID=run_id),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("refused: invalid key 'key\\n'")
    seen = mlflow_sees(server.uri, run_id)
    history: dict[str, list[list[float]]] = seen["history"]  # type: ignore[assignment]
    values = [value for _, value in sorted(history["v"])]
    # The SQL store keeps infinities as the largest floats (MLflow's sanitize_metric_value).
    biggest = sys.float_info.max
    assert math.isnan(values[0]) and values[1:] == [biggest, -biggest, 2.5]
    assert history["next"] == [[0, 1.0]]
    assert seen["params"] == {}


def test_the_runners_own_metrics_send_nan_and_infinities_as_strings(
    tmp_path: Path, server: MlflowServer
) -> None:
    """The runner's REST writes (metrics copied onto a reused run) follow the same rule."""
    from mlrun_cli.tracking.http_client import ClientSettings, HttpClient
    from mlrun_cli.tracking.rest_store import HttpTransport, RestStore

    client = HttpClient(server.uri, ClientSettings.from_environ({}))
    store = RestStore(HttpTransport(client), server.uri, tmp_path / "staging", tmp_path / "outbox")
    run = store.create_run(store.get_experiment("0"), "special", "tester", {})
    store.log_metrics(run, {"nan": math.nan, "inf": math.inf, "after": 1.0}, 1000)
    history: dict[str, list[list[float]]] = mlflow_sees(server.uri, run.run_id)["history"]  # type: ignore[assignment]
    assert math.isnan(history["nan"][0][1])
    assert history["inf"] == [[0, sys.float_info.max]]
    assert history["after"] == [[0, 1.0]]
