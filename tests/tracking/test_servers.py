"""`mlrun` against real tracking servers and databases, read back with MLflow's own client.

Every engine is real: `mlflow server` (SQLite or PostgreSQL behind it, --serve-artifacts, the
basic-auth app), PostgreSQL from scripts/postgres.sh, SQLite files. Slow: a server takes tens of
seconds to answer /health on a busy machine.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlrun_cli.tracking.file_store import FileStore
from tests.backends.jobs_common import sleeper
from tests.conftest import EXAMPLE, child_env, mlrun_command, run_mlrun, write_files
from tests.servers import (
    ADMIN_PASSWORD,
    MlflowServer,
    create_database,
    free_port,
    recording_proxy,
    start_postgres,
    stop_postgres,
)

pytestmark = pytest.mark.slow
PENDING_AN_HOUR = json.dumps({"partition": "debug", "sbatch_args": ["--begin=now+1hour"]})

SCORES = {
    "MLproject": """
entry_points:
  main:
    parameters:
      acc: float
    command: "python score.py {acc}"
""",
    "score.py": """
import sys
import mlrun_log as ml
ml.log_metric("acc", float(sys.argv[1]))
ml.log_param("given", sys.argv[1])
print("scored", sys.argv[1])
""",
}
READ_RUN = """
import json, sys
from mlflow import MlflowClient
client = MlflowClient(sys.argv[1])
run = client.get_run(sys.argv[2])
logs = [a.path for a in client.list_artifacts(run.info.run_id, "logs")]
print(json.dumps({"status": run.info.status, "params": run.data.params,
                  "metrics": run.data.metrics, "tags": run.data.tags, "logs": logs}))
"""


def mlflow_reads(uri: str, run_id: str, **env: str) -> dict[str, object]:
    """The run as MLflow's own client sees it (a separate process: mlflow imports slowly)."""
    done = subprocess.run(
        [mlrun_command()[0], "-c", READ_RUN, uri, run_id],
        capture_output=True,
        text=True,
        env=child_env(**env),
        check=True,
        timeout=300,
    )
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.fixture(scope="session")
def sqlite_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    data = tmp_path_factory.mktemp("mlflow-server")
    server = MlflowServer(f"sqlite:///{data / 'mlflow.db'}", data).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    uri, directory = start_postgres()
    yield uri
    stop_postgres(directory)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The variables every mlrun process here gets: its own caches, quick retries, and this
    interpreter first on PATH (the entry points run with --no-env and import the full mlflow)."""
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MLRUN_CACHE_DIR": str(tmp_path / "cache"),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # an int, as MLflow reads it
    }


def run_train(tmp_path: Path, uri: str, env: dict[str, str]) -> str:
    done = run_mlrun(
        "run", str(EXAMPLE), "-e", "train", "--no-env", "--json",
        "-P", f"output_file={tmp_path / 'model.joblib'}",
        "--tracking-uri", uri,
        cwd=tmp_path, timeout=600, **env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["run"]["run_id"])


def assert_recorded_train(uri: str, run_id: str) -> None:
    seen = mlflow_reads(uri, run_id)
    assert seen["status"] == "FINISHED"
    assert seen["params"]["alpha"] == "0.0001"  # type: ignore[index]
    assert "best_cv_score" in seen["metrics"]  # type: ignore[operator]  # logged with mlflow
    assert seen["tags"]["mlrun.exit_code"] == "0"  # type: ignore[index]
    assert "logs/stdout.log" in seen["logs"]  # type: ignore[operator]


def test_train_on_a_server_with_sqlite(tmp_path, sqlite_server, isolated) -> None:
    run_id = run_train(tmp_path, sqlite_server.uri, isolated)
    assert_recorded_train(sqlite_server.uri, run_id)


def test_train_on_a_server_with_postgres(tmp_path, postgres_uri, isolated) -> None:
    database = create_database(postgres_uri, "behind_server")
    server = MlflowServer(database, tmp_path / "server").start()
    try:
        run_id = run_train(tmp_path, server.uri, isolated)
        assert_recorded_train(server.uri, run_id)
    finally:
        server.stop()


def test_train_on_a_sqlite_uri(tmp_path, isolated) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = run_train(tmp_path, uri, isolated)
    assert_recorded_train(uri, run_id)


def test_train_on_a_postgresql_uri(tmp_path, postgres_uri, isolated) -> None:
    uri = create_database(postgres_uri, "direct")
    run_id = run_train(tmp_path, uri, isolated)
    assert_recorded_train(uri, run_id)


MLFLOW_SEARCH = """
import json, sys, mlflow
mlflow.set_tracking_uri(sys.argv[1])
runs = mlflow.search_runs(experiment_names=[sys.argv[2]], filter_string=sys.argv[3],
                          output_format="list")
print(json.dumps([r.info.run_id for r in runs]))
"""


def test_filters_are_the_servers_own(tmp_path, sqlite_server, isolated) -> None:
    project = write_files(tmp_path / "scores", SCORES)
    experiment = f"scores-{tmp_path.name}"
    for acc in ("0.9", "0.2", "0.7", "0.6"):
        done = run_mlrun(
            "run", str(project), "-P", f"acc={acc}", "--experiment-name", experiment,
            "--tracking-uri", sqlite_server.uri, cwd=tmp_path, **isolated,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    listed = run_mlrun(
        "runs", "list", "--experiment-name", experiment, "--filter", "metrics.acc > 0.5",
        "--json", "--tracking-uri", sqlite_server.uri, cwd=tmp_path, **isolated,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    ours = [r["run_id"] for r in json.loads(listed.stdout)["runs"]]
    theirs = subprocess.run(
        [mlrun_command()[0], "-c", MLFLOW_SEARCH, sqlite_server.uri, experiment,
         "metrics.acc > 0.5"],
        capture_output=True, text=True, env=child_env(), check=True, timeout=300,
    )  # fmt: skip
    assert ours == json.loads(theirs.stdout)
    assert len(ours) == 3


PASSWORD_PROJECT = {
    "MLproject": 'entry_points:\n  main:\n    command: "touch ran; echo hello"\n',
}


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    data = tmp_path_factory.mktemp("mlflow-auth")
    server = MlflowServer(f"sqlite:///{data / 'mlflow.db'}", data, app_name="basic-auth")
    yield server.start()
    server.stop()


def test_basic_auth_records_with_the_right_password(tmp_path, auth_server, isolated) -> None:
    project = write_files(tmp_path / "project", PASSWORD_PROJECT)
    credentials = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}
    done = run_mlrun(
        "run", str(project), "--json", "--tracking-uri", auth_server.uri, cwd=tmp_path,
        **isolated, **credentials,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run"]["run_id"]
    seen = mlflow_reads(auth_server.uri, run_id, **credentials)
    assert seen["status"] == "FINISHED"
    described = run_mlrun(
        "runs", "describe", run_id, "--json", "--tracking-uri", auth_server.uri, cwd=tmp_path,
        **isolated, **credentials,
    )  # fmt: skip
    assert described.returncode == 0, described.stderr
    assert "provenance/run.json" in described.stdout
    everything = done.stdout + done.stderr + described.stdout + json.dumps(seen)
    assert ADMIN_PASSWORD not in everything


def test_basic_auth_wrong_password_is_exit_4_and_nothing_runs(
    tmp_path, auth_server, isolated
) -> None:
    project = write_files(tmp_path / "project", PASSWORD_PROJECT)
    wrong = "not-the-password-" + tmp_path.name
    done = run_mlrun(
        "run", str(project), "--tracking-uri", auth_server.uri, cwd=tmp_path, **isolated,
        MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=wrong,
    )  # fmt: skip
    assert done.returncode == 4
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"mlrun: error: tracking server {auth_server.uri}: ")
    assert "refused (HTTP 401" in done.stderr
    assert wrong not in done.stdout + done.stderr
    assert not (project / "ran").exists()


WAITING_PROJECT = {
    "MLproject": """
entry_points:
  main:
    command: "echo started > started; for i in $(seq 600); do [ -f go ] && break; sleep 0.1; done; echo finished"
""",
}


def wait_for(path: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def test_server_gone_mid_run_then_sync_delivers_once(tmp_path, isolated) -> None:
    server = MlflowServer(f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}", tmp_path / "server")
    server.start()
    project = write_files(tmp_path / "project", WAITING_PROJECT)
    try:
        child = subprocess.Popen(
            mlrun_command("run", str(project), "--json", "--tracking-uri", server.uri),
            cwd=tmp_path, env=child_env(**isolated), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_for(project / "started")
        server.stop()
        (project / "go").touch()
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        assert "mlrun sync" in err
        run_id = json.loads(out)["run"]["run_id"]
        assert (tmp_path / "cache" / "outbox" / run_id / "entry.json").is_file()

        server.start()
        synced = run_mlrun("sync", cwd=tmp_path, **isolated)
        assert (synced.returncode, synced.stdout) == (0, f"run {run_id}: sent to {server.uri}\n")
        seen = mlflow_reads(server.uri, run_id)
        assert seen["status"] == "FINISHED"
        assert seen["tags"]["mlrun.exit_code"] == "0"  # type: ignore[index]
        assert seen["logs"] == ["logs/stderr.log", "logs/stdout.log"]
        again = run_mlrun("sync", cwd=tmp_path, **isolated)
        assert (again.returncode, again.stdout) == (0, "nothing to send: the outbox is empty\n")
    finally:
        server.stop()


def quick_retries(isolated: dict[str, str]) -> dict[str, str]:
    """MLflow's own retry settings (7 retries, backoff 2): what a user gets by default."""
    return {k: v for k, v in isolated.items() if not k.startswith("MLFLOW_HTTP_REQUEST_")}


def test_a_refused_loopback_server_fails_at_once_with_exit_4(tmp_path, isolated) -> None:
    project = write_files(tmp_path / "project", PASSWORD_PROJECT)
    uri = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    done = run_mlrun(
        "run", str(project), "--tracking-uri", uri, cwd=tmp_path, timeout=120,
        **quick_retries(isolated),
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (
        4,
        f"mlrun: error: tracking server {uri} is unreachable (Connection refused)\n",
    )
    assert time.monotonic() - started < 60  # MLflow's retries would take about 4 minutes
    assert not (project / "ran").exists()


def non_loopback_address() -> str:
    """This machine's address on its network (nothing is sent: a UDP socket only routes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            pytest.skip("this machine has no network address besides loopback")
        address = str(probe.getsockname()[0])
    if ipaddress.ip_address(address).is_loopback:
        pytest.skip("this machine has no network address besides loopback")
    return address


def test_a_refusing_remote_server_is_retried_out_loud(tmp_path, isolated) -> None:
    project = write_files(tmp_path / "project", PASSWORD_PROJECT)
    address = non_loopback_address()
    with socket.socket() as probe:
        probe.bind((address, 0))
        uri = f"http://{address}:{probe.getsockname()[1]}"
    done = run_mlrun(
        "run", str(project), "--tracking-uri", uri, cwd=tmp_path,
        **{**isolated, "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0"},
    )  # fmt: skip
    assert done.returncode == 4
    assert done.stderr.splitlines() == [
        f"mlrun: warning: tracking server {uri}: Connection refused; retrying (1 of 2)",
        f"mlrun: warning: tracking server {uri}: Connection refused; retrying (2 of 2)",
        f"mlrun: error: tracking server {uri} is unreachable (Connection refused)",
    ]


@pytest.mark.parametrize("kind", ["server", "database"])
def test_a_new_experiment_is_announced_on_a_server_and_a_database(
    tmp_path, sqlite_server, isolated, kind
) -> None:
    uri = sqlite_server.uri if kind == "server" else f"sqlite:///{tmp_path / 'mlflow.db'}"
    project = write_files(tmp_path / "project", PASSWORD_PROJECT)
    name = f"new-{tmp_path.name}"
    argv = ("run", str(project), "--experiment-name", name, "--tracking-uri", uri)
    runs = [run_mlrun(*argv, cwd=tmp_path, timeout=300, **isolated) for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    created = re.findall(rf"^mlrun: created experiment '{name}' \(id \w+\)$", runs[0].stderr, re.M)
    assert len(created) == 1, runs[0].stderr
    assert "created experiment" not in runs[1].stderr


DOWNLOAD = """
import sys, mlflow
mlflow.set_tracking_uri(sys.argv[1])
print(open(mlflow.artifacts.download_artifacts(artifact_uri=sys.argv[2])).read(), end="")
"""


def mlflow_downloads(uri: str, artifact_uri: str) -> str:
    done = subprocess.run(
        [mlrun_command()[0], "-c", DOWNLOAD, uri, artifact_uri],
        capture_output=True, text=True, env=child_env(), check=True, timeout=300,
    )  # fmt: skip
    return done.stdout


def test_run_json_names_the_logs_where_the_server_keeps_them(
    tmp_path, sqlite_server, isolated
) -> None:
    project = write_files(tmp_path / "project", PASSWORD_PROJECT)
    done = run_mlrun(
        "run", str(project), "--json", "--tracking-uri", sqlite_server.uri, cwd=tmp_path,
        **isolated,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)["run"]
    assert run["logs"]["stdout"] == f"{run['artifact_uri']}/logs/stdout.log"
    assert mlflow_downloads(sqlite_server.uri, run["logs"]["stdout"]) == "hello\n"
    assert mlflow_downloads(sqlite_server.uri, run["logs"]["stderr"]) == ""


LONG_PARAM = {
    "MLproject": """
entry_points:
  main:
    parameters:
      text: string
    command: "python -c 'import sys; print(len(sys.argv[1]))' {text}"
""",
}


@pytest.mark.parametrize("kind", ["file", "server"])
def test_a_long_param_is_cut_to_mlflows_limit_everywhere_with_a_warning(
    tmp_path, sqlite_server, isolated, kind
) -> None:
    uri = sqlite_server.uri if kind == "server" else (tmp_path / "mlruns").as_uri()
    project = write_files(tmp_path / "project", LONG_PARAM)
    text = "".join(f"{i:05d}," for i in range(100_000 // 6 + 1))[:100_000]
    done = run_mlrun(
        "run", str(project), "-P", f"text={text}", "--json", "--tracking-uri", uri,
        cwd=tmp_path, **isolated,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    warning = (
        "mlrun: warning: param 'text': its value has 100000 characters; only the first 6000 "
        "are recorded (MLflow's limit)"
    )
    assert warning in done.stderr.splitlines()
    run_id = json.loads(done.stdout)["run"]["run_id"]
    seen = mlflow_reads(uri, run_id, MLFLOW_ALLOW_FILE_STORE="true")
    assert seen["params"]["text"] == text[:6000]  # type: ignore[index]
    assert seen["status"] == "FINISHED"


ENV_SCORES = {
    **SCORES,
    "python_env.yaml": f"python: '{sys.version_info[0]}.{sys.version_info[1]}'\n",
}
READ_TREE = """
import json, sys
from mlflow import MlflowClient
client = MlflowClient(sys.argv[1])
def files(run_id, path=None):
    for entry in client.list_artifacts(run_id, path):
        yield from files(run_id, entry.path) if entry.is_dir else [entry.path]
print(json.dumps({run_id: sorted(files(run_id)) for run_id in sys.argv[2:]}))
"""


def mlflow_lists(uri: str, *run_ids: str) -> dict[str, list[str]]:
    done = subprocess.run(
        [mlrun_command()[0], "-c", READ_TREE, uri, *run_ids],
        capture_output=True, text=True, env=child_env(), check=True, timeout=300,
    )  # fmt: skip
    listed: dict[str, list[str]] = json.loads(done.stdout.splitlines()[-1])
    return listed


def test_a_sweep_parent_publishes_its_build_log(tmp_path, sqlite_server, isolated) -> None:
    project = write_files(tmp_path / "scores", ENV_SCORES)
    done = run_mlrun(
        "sweep", str(project), "-P", "acc=0.1,0.2", "--env-manager", "uv", "--json",
        "--tracking-uri", sqlite_server.uri, cwd=tmp_path, timeout=600, **isolated,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    sweep = json.loads(done.stdout)["sweep"]
    parent = sweep["parent_run_id"]
    listed = mlflow_lists(sqlite_server.uri, parent)
    assert listed[parent] == ["environment/build.log", "sweep/summary.json"]
    assert not (tmp_path / "cache" / "staging").exists() or not any(
        (tmp_path / "cache" / "staging").rglob("*.log")
    )


def test_reuse_and_sweep_rows_ask_the_server_for_the_matching_runs_only(
    tmp_path, sqlite_server, isolated
) -> None:
    project = write_files(tmp_path / "scores", SCORES)
    experiment = f"reuse-{tmp_path.name}"
    common = ("--experiment-name", experiment, "--tracking-uri")
    for acc in ("0.1", "0.2", "0.3"):
        done = run_mlrun(
            "run", str(project), "-P", f"acc={acc}", *common, sqlite_server.uri, cwd=tmp_path,
            **isolated,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    with recording_proxy(sqlite_server.uri) as (uri, seen):
        swept = run_mlrun(
            "sweep", str(project), "-P", "acc=0.2,0.4", "--reuse", "--json", *common, uri,
            cwd=tmp_path, **isolated,
        )  # fmt: skip
    assert swept.returncode == 0, swept.stderr
    rows = {row["params"]["acc"]: row for row in json.loads(swept.stdout)["sweep"]["children"]}
    assert rows["0.2"]["reused_from"] is not None
    assert rows["0.4"]["status"] == "FINISHED" and rows["0.4"]["reused_from"] is None
    searches = [r.payload() for r in seen if r.path.endswith("/runs/search")]
    filters = [str(search.get("filter", "")) for search in searches]
    assert filters and all(filters), filters  # no search that downloads the whole experiment
    assert sum("mlrun.run_key" in f for f in filters) == 2
    assert sum("mlflow.parentRunId" in f for f in filters) == 1


def server_runs(uri: str, filter_string: str) -> list[dict[str, object]]:
    """The Default experiment's runs that match, straight from the server's REST API."""
    body = json.dumps({"experiment_ids": ["0"], "filter": filter_string}).encode()
    request = urllib.request.Request(
        f"{uri}/api/2.0/mlflow/runs/search", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        runs: list[dict[str, object]] = json.load(answer).get("runs", [])
    return runs


@pytest.mark.slurm
def test_a_submitted_job_publishes_what_its_submitter_wrote(
    tmp_path, sqlite_server, isolated, slurm_conf
) -> None:
    sleeper(tmp_path)
    submitted = run_mlrun(
        "run", "sleeper", "--no-env", "--backend", "slurm", "--detach", "--json",
        "--backend-config", PENDING_AN_HOUR, "--tracking-uri", sqlite_server.uri,
        cwd=tmp_path, SLURM_CONF=slurm_conf, **isolated,
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    run = json.loads(submitted.stdout)["run"]
    try:
        listed = mlflow_lists(sqlite_server.uri, run["run_id"])
        assert "provenance/run.json" in listed[run["run_id"]]  # the job has not started
    finally:
        env = {**os.environ, "SLURM_CONF": slurm_conf}
        subprocess.run(["scancel", run["job_id"]], env=env, check=True)


@pytest.mark.slurm
def test_a_slurm_arrays_children_publish_what_the_sweep_wrote(
    tmp_path, sqlite_server, isolated, slurm_conf
) -> None:
    sleeper(tmp_path)
    marker = f"seconds-{tmp_path.name}"
    sweep = subprocess.Popen(
        mlrun_command(
            "sweep", "sleeper", "--no-env", "-P", "seconds=1,2", "--backend", "slurm",
            "--backend-config", PENDING_AN_HOUR, "--run-name", marker,
            "--tracking-uri", sqlite_server.uri,
        ),
        cwd=tmp_path, env=child_env(SLURM_CONF=slurm_conf, **isolated),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        children: list[dict[str, object]] = []
        while len(children) < 2:
            assert time.monotonic() < deadline, "the array's children were not submitted"
            assert sweep.poll() is None, sweep.communicate()
            children = server_runs(
                sqlite_server.uri,
                f"attributes.run_name LIKE '{marker}-%' and tags.`mlrun.slurm.job_id` LIKE '%_%'",
            )
            time.sleep(0.2)
        ids = [str(child["info"]["run_id"]) for child in children]  # type: ignore[index]
        listed = mlflow_lists(sqlite_server.uri, *ids)
        for run_id in ids:
            assert "provenance/run.json" in listed[run_id]  # no task has started
    finally:
        sweep.send_signal(signal.SIGINT)  # cancels the array
        _, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 130, err


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    param_length=st.integers(0, 7000) | st.sampled_from([5999, 6000, 6001, 100_000]),
    tag_length=st.integers(0, 9000) | st.sampled_from([7999, 8000, 8001, 100_000]),
)
def test_every_value_length_is_kept_as_mlflow_keeps_it(
    tmp_path, caplog, param_length, tag_length
) -> None:
    """The file store (the REST store shares the same cut) at and around MLflow's limits."""
    store = FileStore(tmp_path / f"mlruns-{param_length}-{tag_length}")
    store.ensure()
    run = store.create_run(store.get_experiment("0"), "limits", "user", {})
    caplog.clear()
    store.log_params(run, {"p": "p" * param_length})
    store.set_tags(run, {"t": "t" * tag_length})
    recorded = store.get_run(run.run_id)
    assert len(recorded.params["p"]) == min(param_length, 6000)
    assert len(recorded.tags["t"]) == min(tag_length, 8000)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == (param_length > 6000) + (tag_length > 8000)
