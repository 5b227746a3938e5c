"""`mlrun_cli.projects.run`: MLflow's call, mlrun's pipeline, typed errors, nothing printed."""

from __future__ import annotations

import inspect
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from mlrun_cli import projects
from mlrun_cli.core.settings import Settings
from mlrun_cli.errors import EntryPointError, MlrunError, RunFailedError, UsageError
from mlrun_cli.tracking.store import open_store
from tests.conftest import REPO, child_env
from tests.projects.helpers import api_project, recorded, wait_for


def test_signature_is_mlflows() -> None:
    """Same names in the same order, same defaults where both have them: one import changes."""
    mlflow_projects = pytest.importorskip("mlflow.projects")
    theirs = inspect.signature(mlflow_projects.run).parameters
    ours = inspect.signature(projects.run).parameters
    assert list(ours)[: len(theirs)] == list(theirs)
    for name, parameter in theirs.items():
        assert ours[name].default == parameter.default, name
    assert {"reuse", "tracking_uri", "echo"} <= set(ours)


def test_synchronous_run_records_params(tmp_path: Path, store: str) -> None:
    project = api_project(tmp_path)
    submitted = projects.run(
        str(project), parameters={"x": 2.5}, env_manager="local", tracking_uri=store,
        run_name="first", experiment_name="api",
    )  # fmt: skip
    assert submitted.get_status() == "FINISHED"
    assert submitted.wait() is True
    run = recorded(store, submitted.run_id)
    assert run.params["x"] == "2.5"
    assert run.tags["mlflow.runName"] == "first"
    [stdout_log] = Path(store).glob(f"*/{submitted.run_id}/artifacts/**/stdout*")
    assert "x is 2.5" in stdout_log.read_text()


SILENT_HOST = """
import sys
from mlrun_cli import projects
projects.run(sys.argv[1], parameters={"x": 4}, env_manager="local", tracking_uri=sys.argv[2],
             experiment_name="new")
projects.run(sys.argv[1], "fail", synchronous=False, env_manager="local",
             tracking_uri=sys.argv[2]).wait()
"""


def test_a_host_that_configures_no_logging_sees_no_output(tmp_path: Path, store: str) -> None:
    """Not mlrun's messages (even warnings), not the entry point's output: only with echo."""
    project = api_project(tmp_path)
    host = subprocess.run(
        [sys.executable, "-c", SILENT_HOST, str(project), store], cwd=tmp_path,
        env=child_env(PYTHONPATH=str(REPO)), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert (host.returncode, host.stdout, host.stderr) == (0, "", "")


def test_echo_shows_the_entry_points_output(
    tmp_path: Path, store: str, capfd: pytest.CaptureFixture[str]
) -> None:
    project = api_project(tmp_path)
    projects.run(str(project), parameters={"x": 7}, env_manager="local", tracking_uri=store,
                 echo=True)  # fmt: skip
    assert "x is 7" in capfd.readouterr().out


def test_a_failed_synchronous_run_raises_with_its_id(tmp_path: Path, store: str) -> None:
    project = api_project(tmp_path)
    with pytest.raises(RunFailedError) as raised:
        projects.run(str(project), "fail", env_manager="local", tracking_uri=store)
    assert raised.value.status == "FAILED"
    assert recorded(store, raised.value.run_id).info.status.name == "FAILED"
    assert not isinstance(raised.value, SystemExit)


def test_asynchronous_runs_at_once_from_worker_threads(tmp_path: Path, store: str) -> None:
    """Three runs started from three threads all run together (each waits for `go`)."""
    project = api_project(tmp_path)

    def start(name: str) -> projects.SubmittedRun:
        return projects.run(str(project), "gate", parameters={"name": name},
                            env_manager="local", tracking_uri=store, synchronous=False)  # fmt: skip

    with ThreadPoolExecutor(3) as pool:
        submitted = list(pool.map(start, ["a", "b", "c"]))
    wait_for(lambda: all((project / f"started-{n}").exists() for n in "abc"))
    assert [s.get_status() for s in submitted] == ["RUNNING"] * 3
    (project / "go").touch()
    assert [s.wait() for s in submitted] == [True] * 3
    assert [s.get_status() for s in submitted] == ["FINISHED"] * 3
    assert len({s.run_id for s in submitted}) == 3


def test_cancel_kills_a_local_run(tmp_path: Path, store: str) -> None:
    project = api_project(tmp_path)
    submitted = projects.run(str(project), "gate", parameters={"name": "x"},
                             env_manager="local", tracking_uri=store, synchronous=False)  # fmt: skip
    wait_for((project / "started-x").exists)
    submitted.cancel()
    assert submitted.get_status() == "KILLED"
    assert submitted.wait() is False
    run = recorded(store, submitted.run_id)
    assert run.tags["mlrun.exit_code"] != "0"


def test_cancel_after_the_end_changes_nothing(tmp_path: Path, store: str) -> None:
    project = api_project(tmp_path)
    submitted = projects.run(str(project), env_manager="local", tracking_uri=store,
                             synchronous=False)  # fmt: skip
    assert submitted.wait() is True
    submitted.cancel()
    assert submitted.get_status() == "FINISHED"


def test_reuse_returns_the_identical_earlier_run(tmp_path: Path, store: str) -> None:
    project = api_project(tmp_path)
    first = projects.run(str(project), env_manager="local", tracking_uri=store, reuse=True)
    again = projects.run(str(project), env_manager="local", tracking_uri=store, reuse=True)
    changed = projects.run(str(project), parameters={"x": 2}, env_manager="local",
                           tracking_uri=store, reuse=True)  # fmt: skip
    assert again.run_id == first.run_id
    assert changed.run_id != first.run_id
    settings = Settings.resolve(store)
    assert len(list(open_store(settings).stored_runs(["0"], "all"))) == 2


def _cli_error(cli, *args: str) -> str:  # type: ignore[no-untyped-def]
    result = cli(*args)
    assert result.exit_code == 2
    line = result.stderr.strip().splitlines()[0]
    assert line.startswith("mlrun: error: ")
    return line.removeprefix("mlrun: error: ")


@pytest.mark.parametrize(
    ("call", "cli_args", "error"),
    [
        ({"entry_point": "nope"}, ("-e", "nope"), EntryPointError),
        ({"parameters": {"x": "abc"}}, ("-P", "x=abc"), MlrunError),
        ({"parameters": {"x=1": "2"}}, ("-P", "x=1=2"), MlrunError),
        (
            {"experiment_name": "a", "experiment_id": "1"},
            ("--experiment-name", "a", "--experiment-id", "1"),
            UsageError,
        ),
        ({"backend": "nope"}, ("--backend", "nope"), UsageError),
    ],
)
def test_bad_input_raises_the_clis_error_and_creates_nothing(
    tmp_path: Path,
    cli,
    call: dict[str, object],
    cli_args: tuple[str, ...],
    error: type,  # type: ignore[no-untyped-def]
) -> None:
    project = api_project(tmp_path)
    expected = _cli_error(cli, "run", str(project), "--no-env", *cli_args)
    with pytest.raises(error) as raised:
        projects.run(str(project), env_manager="local", **call)  # type: ignore[arg-type]
    assert raised.value.lines()[0] == expected
    assert not (tmp_path / "mlruns").exists()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"parameters": ["x=1"]}, "parameters must be a dict of name -> value, not list"),
        ({"parameters": "x=1"}, "parameters must be a dict of name -> value, not str"),
        ({"parameters": {1: "a"}}, "parameters: the name 1 is not a str"),
        (
            {"backend": "nope"},
            "--backend nope: not a backend of this mlrun (local, docker, slurm, ray)",
        ),
        ({"backend_config": 3}, "backend_config must be a dict or a file's path, not int"),
        ({"docker_args": "x"}, "docker_args must be a dict of option -> value, not str"),
        (
            {"docker_auth": {"username": "u"}},
            "docker_auth is not supported by mlrun; log in with `docker login` before the run",
        ),
        ({"reuse": "always"}, "reuse='always': use True (or 'skip'), 'record' or False"),
        ({"entry_point": None}, "entry_point must be a str, not NoneType"),
        ({"experiment_id": 3}, "experiment_id must be a str, not int"),
        ({"run_name": ["a"]}, "run_name must be a str, not list"),
    ],
)
def test_wrong_types_raise_a_usage_error_and_create_nothing(
    tmp_path: Path, store: str, call: dict[str, object], message: str
) -> None:
    project = api_project(tmp_path)
    with pytest.raises(UsageError) as raised:
        projects.run(str(project), env_manager="local", tracking_uri=store, **call)  # type: ignore[arg-type]
    assert raised.value.message == message
    assert not Path(store).exists()


def test_an_unknown_env_manager_is_refused_before_anything_is_written(
    tmp_path: Path, store: str
) -> None:
    project = api_project(tmp_path)
    with pytest.raises(MlrunError):
        projects.run(str(project), env_manager="pipenv", tracking_uri=store)
    assert not Path(store).exists()


def test_version_runs_that_commit_of_a_git_project(tmp_path: Path, store: str) -> None:
    from tests.gitrepos import commit_all, git

    project = api_project(tmp_path)
    git(project, "init", "-q", "-b", "main")
    git(project, "config", "user.email", "user@example.com")
    git(project, "config", "user.name", "User")
    commit_all(project, "first")
    first = git(project, "rev-parse", "HEAD").strip()
    (project / "MLproject").write_text(
        (project / "MLproject").read_text().replace("echo x is", "echo x now is")
    )
    commit_all(project, "second")
    old = projects.run(str(project), version=first, env_manager="local", tracking_uri=store)
    run = recorded(store, old.run_id)
    assert run.tags["mlflow.source.git.commit"] == first
    [stdout_log] = Path(store).glob(f"*/{old.run_id}/artifacts/**/stdout*")
    assert stdout_log.read_text() == "x is 1\n"


def test_experiment_id_records_into_that_experiment(tmp_path: Path, store: str) -> None:
    project = api_project(tmp_path)
    named = projects.run(str(project), env_manager="local", tracking_uri=store,
                         experiment_name="chosen")  # fmt: skip
    experiment_id = recorded(store, named.run_id).info.experiment_id
    by_id = projects.run(str(project), env_manager="local", tracking_uri=store,
                         experiment_id=experiment_id)  # fmt: skip
    assert recorded(store, by_id.run_id).info.experiment_id == experiment_id != "0"


def test_run_id_continues_a_run_the_host_created(
    tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As MLflow's internal use of run_id: the entry point runs inside an existing run."""
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    project = api_project(tmp_path)
    client = mlflow.tracking.MlflowClient(tracking_uri=Path(store).as_uri())
    created = client.create_run("0").info.run_id
    continued = projects.run(str(project), parameters={"x": 5}, env_manager="local",
                             tracking_uri=store, run_id=created)  # fmt: skip
    assert continued.run_id == created
    assert client.get_run(created).info.status == "FINISHED"
    assert client.get_run(created).data.params["x"] == "5"
    with pytest.raises(MlrunError, match="already FINISHED"):
        projects.run(str(project), env_manager="local", tracking_uri=store, run_id=created)
