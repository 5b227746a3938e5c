"""The store, the caches and a run's outputs never make the next run differ (real git, real
mlrun processes): two identical runs with --reuse run once, in a repository and outside one."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.conftest import run_mlrun
from tests.gitrepos import make_repo

MLPROJECT = """name: writes
entry_points:
  main:
    parameters:
      out: {type: path, default: out.txt, role: output}
    command: "python write.py {out}"
"""
SCRIPT = """import sys, pathlib
out = pathlib.Path(sys.argv[1]); out.parent.mkdir(parents=True, exist_ok=True)
out.write_text("model")
with open("../runs.log", "a") as log:
    log.write("ran\\n")
"""


def _project(project: Path, files: dict[str, str], in_git: bool) -> Path:
    """The same project as a committed git repository or as a plain folder."""
    if in_git:
        make_repo(project, files)
    else:
        project.mkdir()
        for name, text in files.items():
            (project / name).write_text(text)
    return project


def _run(cwd: Path, *extra: str) -> None:
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = run_mlrun(
        "run",
        ".",
        "--no-env",
        "--reuse",
        *extra,
        cwd=cwd,
        timeout=120,
        PATH=path,
        MLRUN_CACHE_DIR=str(cwd / ".cache"),
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("in_git", [True, False])
def test_a_second_identical_run_is_reused_though_the_store_and_outputs_are_inside(
    tmp_path: Path, in_git: bool
) -> None:
    files = {"MLproject": MLPROJECT, "write.py": SCRIPT}
    project = _project(tmp_path / "proj", files, in_git)
    clean = ("--require-clean",) if in_git else ()
    _run(project, *clean)  # ./mlruns, the cache and the output all land inside the project
    _run(project, *clean)
    assert (tmp_path / "runs.log").read_text().count("ran") == 1


UNDECLARED_OUTPUT = """name: writes
entry_points:
  main:
    parameters:
      out: {type: path, default: out.txt}
    command: "python write.py {out}"
  read:
    parameters:
      model: path
    command: "python -c 'import sys; print(open(sys.argv[1]).read())' {model}"
"""


@pytest.mark.parametrize("in_git", [True, False])
def test_a_parameter_recorded_as_an_output_stays_one_in_later_runs(
    tmp_path: Path, in_git: bool
) -> None:
    """`out` declares no role: the first run finds it absent (an output); the second finds
    the file it wrote, and is still the same run, clean, reused."""
    files = {"MLproject": UNDECLARED_OUTPUT, "write.py": SCRIPT}
    project = _project(tmp_path / "proj", files, in_git)
    clean = ("--require-clean",) if in_git else ()
    _run(project, *clean)
    _run(project, *clean)
    assert (tmp_path / "runs.log").read_text().count("ran") == 1


def test_what_an_entry_point_wrote_is_not_a_code_change_for_another_that_reads_it(
    tmp_path: Path,
) -> None:
    """infer reads the model train wrote: the tree stays clean, the model is its input."""
    project = make_repo(tmp_path / "proj", {"MLproject": UNDECLARED_OUTPUT, "write.py": SCRIPT})
    _run(project, "--require-clean")
    _run(project, "-e", "read", "-P", "model=out.txt", "--require-clean")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=(project / "mlruns").as_uri())
    runs = client.search_runs(["0"], "tags.`mlflow.project.entryPoint` = 'read'")
    assert len(runs) == 1
    assert runs[0].data.tags["mlflow.source.git.dirty"] == "false"
    assert "mlrun.input.model.digest" in runs[0].data.tags


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["server", "database"])
def test_recorded_outputs_are_read_back_from_a_tracking_server_or_a_database(
    tmp_path: Path, kind: str
) -> None:
    """The same rule when the store is MLflow's server or a database, not ./mlruns."""
    from tests.servers import MlflowServer

    project = make_repo(tmp_path / "proj", {"MLproject": UNDECLARED_OUTPUT, "write.py": SCRIPT})
    server = None
    if kind == "server":
        server = MlflowServer(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "data").start()
        uri = server.uri
    else:
        uri = f"sqlite:///{tmp_path / 'runs.db'}"
    try:
        _run(project, "--tracking-uri", uri, "--require-clean")
        _run(project, "--tracking-uri", uri, "--require-clean")
    finally:
        if server is not None:
            server.stop()
    assert (tmp_path / "runs.log").read_text().count("ran") == 1
