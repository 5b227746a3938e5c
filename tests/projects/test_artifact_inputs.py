"""Artifact URIs as `path` inputs: downloaded before the run, digested as a local input, the
URI recorded as the parameter (as MLflow logs it)."""

from __future__ import annotations

import hashlib
import http.server
import os
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from mlrun_cli import projects
from mlrun_cli.core.settings import Settings
from mlrun_cli.errors import ParameterError, UsageError
from mlrun_cli.tracking.store import open_store
from tests.conftest import write_files
from tests.projects.helpers import recorded
from tests.servers import MlflowServer

PRODUCE = """
import os, pathlib, sys
if os.environ["MLFLOW_TRACKING_URI"].startswith("sqlite:"):  # mlrun_log: files and servers
    import mlflow as mlrun_log
else:
    import mlrun_log
out = pathlib.Path("out")
(out / "parts").mkdir(parents=True, exist_ok=True)
(out / "data.csv").write_text(sys.argv[1])
(out / "parts" / "a.txt").write_text("part a " + sys.argv[1])
mlrun_log.log_artifact(str(out / "data.csv"), "data")
mlrun_log.log_artifacts(str(out / "parts"), "data/parts")
"""
CONSUME = """
import pathlib, sys
path = pathlib.Path(sys.argv[1])
files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
for f in files:
    print(f.name, f.read_text())
"""
MLPROJECT = """
entry_points:
  produce:
    parameters: {text: string}
    command: "python produce.py {text}"
  consume:
    parameters: {data: path}
    command: "python consume.py {data}"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    files = {"MLproject": MLPROJECT, "produce.py": PRODUCE, "consume.py": CONSUME}
    return write_files(tmp_path / "project", files)


def _run(project: Path, store: str, entry: str, **parameters: str) -> projects.SubmittedRun:
    return projects.run(str(project), entry, parameters=parameters, env_manager="local",
                        tracking_uri=store)  # fmt: skip


def _stdout(store: str, run_id: str) -> str:
    run = recorded(store, run_id)
    settings = Settings.resolve(store)
    text = open_store(settings).read_artifact(run.info, "logs/stdout.log")
    assert text is not None
    return text


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_runs_uri_from_the_file_store(project: Path, store: str, tmp_path: Path) -> None:
    produced = _run(project, store, "produce", text="hello")
    uri = f"runs:/{produced.run_id}/data/data.csv"
    consumed = _run(project, store, "consume", data=uri)
    assert "data.csv hello" in _stdout(store, consumed.run_id)
    run = recorded(store, consumed.run_id)
    assert run.params["data"] == uri
    assert run.tags["mlrun.input.data.digest"] == _sha("hello")
    [copy] = (Path(os.environ["MLRUN_CACHE_DIR"]) / "artifact-inputs").glob("*/data.csv")
    assert copy.read_text() == "hello"
    again = _run(project, store, "consume", data=uri)  # the same content: the same copy
    assert recorded(store, again.run_id).tags["mlrun.input.data.digest"] == _sha("hello")
    assert len(list(copy.parent.parent.glob("*/data.csv"))) == 1


def test_a_folder_goes_to_storage_dir(project: Path, store: str, tmp_path: Path) -> None:
    produced = _run(project, store, "produce", text="x")
    uri = f"runs:/{produced.run_id}/data"
    consumed = projects.run(str(project), "consume", parameters={"data": uri},
                            env_manager="local", tracking_uri=store,
                            storage_dir=str(tmp_path / "dl"))  # fmt: skip
    out = _stdout(store, consumed.run_id)
    assert "a.txt part a x" in out and "data.csv x" in out
    assert [p.name for p in (tmp_path / "dl").glob("*/*")] == ["data"]


def test_a_missing_artifact_is_refused_before_the_run(project: Path, store: str) -> None:
    produced = _run(project, store, "produce", text="x")
    with pytest.raises(ParameterError) as raised:
        _run(project, store, "consume", data=f"runs:/{produced.run_id}/nope.csv")
    assert raised.value.message == (
        f"parameter 'data' (path): runs:/{produced.run_id}/nope.csv: no such artifact"
    )
    settings = Settings.resolve(store)
    assert len(list(open_store(settings).stored_runs(["0"], "all"))) == 1


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_http_inputs_are_downloaded_and_digested(
    project: Path, store: str, http_root: tuple[str, Path]
) -> None:
    base, root = http_root
    (root / "train.csv").write_text("a,b\n1,2\n")
    consumed = _run(project, store, "consume", data=f"{base}/train.csv")
    assert "train.csv a,b" in _stdout(store, consumed.run_id)
    run = recorded(store, consumed.run_id)
    assert run.params["data"] == f"{base}/train.csv"
    assert run.tags["mlrun.input.data.digest"] == _sha("a,b\n1,2\n")
    with_password = base.replace("http://", "http://user:s3cret-pw@") + "/train.csv"
    private = _run(project, store, "consume", data=with_password)
    assert recorded(store, private.run_id).params["data"] == f"{base}/train.csv"
    assert not list(Path(store).rglob("*s3cret-pw*"))
    assert not [p for p in Path(store).rglob("*") if p.is_file() and b"s3cret-pw" in p.read_bytes()]
    with pytest.raises(ParameterError) as raised:
        _run(project, store, "consume", data=f"{base}/missing.csv")
    assert raised.value.message == (
        f"parameter 'data' (path): {base}/missing.csv: HTTP 404 File not found"
    )


def test_cloud_schemes_without_mlflow_are_refused_in_one_line(
    project: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("mlflow", "mlflow.artifacts"):  # as if never installed, even once imported
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ParameterError) as raised:
        _run(project, store, "consume", data="s3://bucket/train.csv")
    assert raised.value.lines() == [
        "parameter 'data' (path): s3://bucket/train.csv: 's3:' inputs are read through MLflow's "
        "artifact repositories; pip install 'mlrun-cli[mlflow]' (and the scheme's SDK)"
    ]
    assert not Path(store).exists()


@pytest.mark.slow
def test_runs_and_mlflow_artifacts_uris_from_a_real_server(
    project: Path, mlflow_server: MlflowServer
) -> None:
    produced = _run(project, mlflow_server.uri, "produce", text="served")
    uri = f"runs:/{produced.run_id}/data/data.csv"
    consumed = _run(project, mlflow_server.uri, "consume", data=uri)
    run = recorded(mlflow_server.uri, consumed.run_id)
    assert run.params["data"] == uri
    assert run.tags["mlrun.input.data.digest"] == _sha("served")
    artifact_uri = recorded(mlflow_server.uri, produced.run_id).info.artifact_uri
    assert artifact_uri.startswith("mlflow-artifacts:")
    proxied = _run(project, mlflow_server.uri, "consume", data=f"{artifact_uri}/data/parts")
    assert recorded(mlflow_server.uri, proxied.run_id).tags["mlrun.input.data.digest"]


@pytest.mark.slow
def test_runs_uri_from_a_database_store(project: Path, tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    produced = _run(project, store, "produce", text="in a database")
    consumed = _run(project, store, "consume", data=f"runs:/{produced.run_id}/data/data.csv")
    assert recorded(store, consumed.run_id).tags["mlrun.input.data.digest"] == _sha("in a database")


def _refused(project: Path, store: str, where: str, **options: object) -> None:
    produced = _run(project, store, "produce", text="x")
    uri = f"runs:/{produced.run_id}/data/data.csv"
    with pytest.raises(UsageError) as raised:
        projects.run(str(project), "consume", parameters={"data": uri}, tracking_uri=store,
                     **options)  # type: ignore[arg-type]  # fmt: skip
    assert raised.value.message == (
        f"parameter 'data': artifact URIs ({uri}) are downloaded to this host and do not reach "
        f"{where} yet; download it into the project and pass its path"
    )
    settings = Settings.resolve(store)
    assert len(list(open_store(settings).stored_runs(["0"], "all"))) == 1  # only `produce`


def test_a_download_a_cluster_node_may_not_see_is_refused_before_the_run(
    project: Path, store: str
) -> None:
    _refused(project, store, "--backend slurm", env_manager="local", backend="slurm",
             backend_config='{"partition": "debug"}')  # fmt: skip


@pytest.mark.slow
@pytest.mark.docker
def test_a_download_a_container_cannot_see_is_refused_before_the_run(
    project: Path, store: str, docker_host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    text = (project / "MLproject").read_text()
    (project / "MLproject").write_text("docker_env:\n  image: mlrun-test/busybox\n" + text)
    _refused(project, store, "a docker_env project")
