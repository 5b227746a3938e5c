"""mlrun as a real process: exit codes, Ctrl-C, SIGTERM, killed children, kept logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from mlrun_cli.tracking.entities import RunStatus
from mlrun_cli.tracking.file_store import FileStore
from tests.conftest import child_env, mlrun_command, run_mlrun, write_files

PROJECT = {
    "MLproject": """
entry_points:
  ok:
    command: "echo all good"
  fail:
    command: "echo bad >&2; exit 9"
  wait:
    command: "echo $$ > child.pid; echo ready; sleep 60"
  stubborn:
    command: "trap 'echo caught >> caught.txt' INT TERM; echo $$ > child.pid; echo ready; while true; do sleep 0.1; done"
""",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_files(tmp_path / "project", PROJECT)


def only_run(store: Path):
    [meta] = list(store.glob("0/*/meta.yaml"))
    return FileStore(store).read_run(meta.parent.name)


def wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def start(project: Path, entry: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        mlrun_command("run", str(project), "-e", entry),
        cwd=project.parent,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )


def wait_ready(project: Path) -> int:
    """The child's pid, once its stdout log says it is running."""
    pid_file = project / "child.pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text().strip())
    wait_for(
        lambda: any(
            "ready" in p.read_text()
            for p in project.parent.glob("mlruns/0/*/artifacts/logs/stdout.log")
        )
    )
    return int(pid_file.read_text())


def test_a_passing_run(project: Path) -> None:
    done = run_mlrun("run", "project", "-e", "ok", cwd=project.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "all good\n"
    info, _, _tags = only_run(project.parent / "mlruns")
    assert info.status == RunStatus.FINISHED
    assert info.end_time is not None and info.end_time >= info.start_time


def test_a_failing_run_exits_with_the_childs_code(project: Path) -> None:
    done = run_mlrun("run", "project", "-e", "fail", cwd=project.parent)
    assert done.returncode == 9
    assert "bad\n" in done.stderr
    info, _, tags = only_run(project.parent / "mlruns")
    assert (info.status, tags["mlrun.exit_code"]) == (RunStatus.FAILED, "9")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_kills_the_child_and_marks_the_run_killed(project: Path, signum) -> None:
    runner = start(project, "wait")
    child = wait_ready(project)
    runner.send_signal(signum)
    _, stderr = runner.communicate(timeout=30)
    assert runner.returncode == 130, stderr
    wait_for(lambda: not alive(child))
    info, _, _tags = only_run(project.parent / "mlruns")
    assert info.status == RunStatus.KILLED
    logs = project.parent / "mlruns" / "0" / info.run_id / "artifacts" / "logs"
    assert (logs / "stdout.log").read_text() == "ready\n"
    assert "KILLED" in stderr


def test_a_second_ctrl_c_kills_a_child_that_ignores_the_first(project: Path) -> None:
    runner = start(project, "stubborn")
    child = wait_ready(project)
    runner.send_signal(signal.SIGINT)
    wait_for(lambda: (project / "caught.txt").exists())  # the child got it, and goes on
    assert runner.poll() is None  # still waiting for the child to stop by itself
    runner.send_signal(signal.SIGINT)
    runner.communicate(timeout=30)
    assert runner.returncode == 130
    wait_for(lambda: not alive(child))
    assert only_run(project.parent / "mlruns")[0].status == RunStatus.KILLED


def test_a_child_killed_from_outside_is_killed_not_failed(project: Path) -> None:
    runner = start(project, "wait")
    child = wait_ready(project)
    os.kill(child, signal.SIGKILL)
    runner.communicate(timeout=30)
    assert runner.returncode == 128 + signal.SIGKILL
    info, _, tags = only_run(project.parent / "mlruns")
    assert (info.status, tags["mlrun.exit_code"]) == (RunStatus.KILLED, "137")
    logs = project.parent / "mlruns" / "0" / info.run_id / "artifacts" / "logs"
    assert (logs / "stdout.log").read_text() == "ready\n"


def test_the_json_document_of_a_real_run(project: Path) -> None:
    done = run_mlrun("run", "project", "-e", "ok", "--json", cwd=project.parent)
    document = json.loads(done.stdout)
    assert document["format"] == 1
    assert document["run"]["status"] == "FINISHED"
    assert "all good" in done.stderr


def test_python_m_mlrun_cli_is_the_same_command(project: Path) -> None:
    done = subprocess.run(mlrun_command("--version"), capture_output=True, text=True, check=True)
    from mlrun_cli import __version__

    assert done.stdout == f"mlrun {__version__}\n"


@pytest.mark.parametrize(
    ("args", "forbidden"),
    [
        (["--version"], {"click", "yaml", "jsonschema", "requests", "urllib3", "http", "mlflow"}),
        (["--help"], {"yaml", "jsonschema", "requests", "urllib3", "http", "mlflow"}),
    ],
)
def test_start_up_does_not_import_the_heavy_parts(args, forbidden) -> None:
    code = (
        "import sys\nfrom mlrun_cli.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(m.split('.')[0] for m in sys.modules)), file=sys.stderr)"
    )
    done = subprocess.run(
        [*mlrun_command()[:1], "-c", code], capture_output=True, text=True, check=True
    )
    loaded = set(done.stderr.split())
    assert "mlrun_cli" in loaded
    assert not loaded & forbidden


def modules_of_a_run(project: Path) -> set[str]:
    """The modules a real `mlrun run` of `project` imported beyond the interpreter's own."""
    code = (
        "import sys\nbefore = set(sys.modules)\nfrom mlrun_cli.cli import main\n"
        f"try:\n    main(['run', {str(project)!r}, '-e', 'ok', '-q'])\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(set(sys.modules) - before)), file=sys.stderr)"
    )
    done = subprocess.run(
        [*mlrun_command()[:1], "-c", code],
        cwd=project.parent,
        env=child_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stderr.split())


def test_a_run_of_an_unchanged_project_imports_no_yaml_nor_jsonschema(project: Path) -> None:
    """The first run parses and checks the MLproject; the next ones read the cached copy."""
    first = {m.split(".")[0] for m in modules_of_a_run(project)}
    assert {"yaml", "jsonschema"} <= first
    loaded = {m.split(".")[0] for m in modules_of_a_run(project)}
    assert "mlrun_cli" in loaded
    assert not loaded & {"yaml", "jsonschema", "referencing"}


# A warm local run (validated project, local env), measured when the budget was set: 67 of
# mlrun's modules and 183 modules in all beyond what the interpreter had at start (a clean
# venv; fewer where site-packages' .pth files import more first). The budget is that plus 10%.
MLRUN_MODULE_BUDGET = 73
ADDED_MODULE_BUDGET = 201
OTHER_STAGES = {
    "mlrun_cli.backends.jobs",  # a job engine's run
    "mlrun_cli.jobs.submit",
    "mlrun_cli.sweeps",
    "mlrun_cli.tracking.search",  # a store's filter language
    "mlrun_cli.tracking.http_client",  # a server's store and downloads
    "mlrun_cli.tracking.rest_store",
    "mlrun_cli.tracking.database_store",
    "mlrun_cli.tracking.outbox",
    "mlrun_cli.tracking.artifact_repos",
    "mlrun_cli.envs.uv",  # other env managers
    "mlrun_cli.envs.docker",
    "mlrun_cli.envs.conda",
    "mlrun_cli.project.volumes",  # docker_env projects
    "requests",
}


def test_a_warm_local_run_imports_only_what_it_uses(project: Path) -> None:
    """Every module a run imports is paid on every run: the path of a plain local run stays
    within its budget and imports nothing of the job engines, sweeps, servers or other envs."""
    modules_of_a_run(project)  # the first run validates the project
    added = modules_of_a_run(project)
    own = {m for m in added if m.split(".")[0] == "mlrun_cli"}
    assert "mlrun_cli.run.pipeline" in own
    assert len(own) <= MLRUN_MODULE_BUDGET, sorted(own)
    assert len(added) <= ADDED_MODULE_BUDGET, sorted(added - own)
    assert not {m for m in added if m in OTHER_STAGES or m.rpartition(".")[0] in OTHER_STAGES}
