"""Every registered backend honours the protocol; the local one runs a real process group."""

from __future__ import annotations

import io
import signal
import sys
import threading
import time
from importlib import import_module
from pathlib import Path

import pytest

from mlrun_cli.backends import BACKENDS, select_backend
from mlrun_cli.backends.base import RUNTIME_DIR, LaunchRequest
from mlrun_cli.backends.streams import StopRequest
from mlrun_cli.envs.base import PreparedEnv
from mlrun_cli.errors import LaunchError, UsageError
from mlrun_cli.run.runner_identity import group_members


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_each_registered_backend_is_named_as_registered_and_can_launch(name: str) -> None:
    module, class_name = BACKENDS[name]
    backend_class = getattr(import_module(module), class_name)
    assert backend_class.name == name
    assert callable(backend_class.launch)


def test_an_unknown_backend_is_a_usage_error_naming_the_known_ones() -> None:
    with pytest.raises(UsageError, match=r"--backend nowhere: .*\(local, docker"):
        select_backend("nowhere")


def request(tmp_path: Path, command: str, **fields: object) -> LaunchRequest:
    prepared = PreparedEnv(manager="local", python=sys.executable, python_version=None)
    values: dict[str, object] = {
        "command": command,
        "project_dir": tmp_path,
        "environ": {"PATH": "/usr/bin:/bin", "PYTHONPATH": "/elsewhere"},
        "run_env": {"MLFLOW_RUN_ID": "abc"},
        "prepared": prepared,
        "shared_paths": (),
        "stdout_log": tmp_path / "logs" / "stdout.log",
        "stderr_log": tmp_path / "logs" / "stderr.log",
        **fields,
    }
    return LaunchRequest(**values)  # type: ignore[arg-type]


def test_the_local_backend_runs_the_command_in_the_project_with_the_run_env(tmp_path) -> None:
    echo = io.BytesIO()
    command = 'pwd; echo "$MLFLOW_RUN_ID $PYTHONPATH"; echo oops >&2; exit 4'
    outcome = select_backend("local").launch(request(tmp_path, command, echo_stdout=echo))
    assert outcome.returncode == 4 and outcome.killed_by is None
    expected = f"{tmp_path}\nabc {RUNTIME_DIR}:/elsewhere\n"
    assert (tmp_path / "logs" / "stdout.log").read_text() == expected
    assert echo.getvalue().decode() == expected
    assert (tmp_path / "logs" / "stderr.log").read_text() == "oops\n"
    assert outcome.ended >= outcome.started


def test_the_local_backend_masks_secrets_and_reports_a_killing_signal(tmp_path) -> None:
    outcome = select_backend("local").launch(
        request(tmp_path, "echo the key is hunter2; kill -TERM $$", redact=("hunter2",))
    )
    assert (tmp_path / "logs" / "stdout.log").read_text() == "the key is ***\n"
    assert (outcome.returncode, outcome.killed_by, outcome.interrupted_by) == (143, 15, None)


def test_a_missing_working_directory_is_a_launch_error_naming_it(tmp_path) -> None:
    with pytest.raises(LaunchError, match=f"cannot enter the project directory {tmp_path}/gone: "):
        select_backend("local").launch(request(tmp_path / "gone", "true"))


def test_an_interpreter_that_cannot_be_executed_is_named_not_bash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    interpreter = tmp_path / "python"
    interpreter.write_text("")
    interpreter.chmod(0o644)  # not executable, even for root
    monkeypatch.setattr(sys, "executable", str(interpreter))
    with pytest.raises(LaunchError) as raised:
        select_backend("local").launch(request(tmp_path, "true"))
    assert str(raised.value) == (
        f"cannot start the entry point's supervisor with {interpreter}: Permission denied"
    )


def _signal_when_started(stop: StopRequest, started: Path, signum: int) -> threading.Thread:
    """Deliver `signum` to the stop request (as its signal handler would) once the entry point
    has written `started`."""

    def deliver() -> None:
        deadline = time.monotonic() + 30
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.handle(signum, None)

    thread = threading.Thread(target=deliver, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize(
    ("command", "code"),
    [
        ("sleep 300 & touch started; sleep 300; wait", 130),  # bash's `&` job ignores SIGINT
        ("bash -c 'sleep 300 & wait' & touch started; wait", 130),  # and so does a grandchild
        ("trap 'exit 0' INT; sleep 300 & touch started; while :; do sleep 0.05; done", 130),
        ("trap 'exit 7' INT; sleep 300 & touch started; while :; do sleep 0.05; done", 7),
    ],
    ids=["background", "grandchild", "clean-exit", "own-code"],
)
def test_after_a_stop_nothing_of_the_group_is_left_and_the_code_says_so(
    tmp_path: Path, command: str, code: int
) -> None:
    stop, groups = StopRequest(), []
    _signal_when_started(stop, tmp_path / "started", signal.SIGINT)
    began = time.monotonic()
    outcome = select_backend("local").launch(
        request(tmp_path, command, stop=stop, on_group_started=groups.append, grace_seconds=10.0)
    )
    assert time.monotonic() - began < 5.0  # well within the grace period, not after it twice
    assert (outcome.returncode, outcome.interrupted_by) == (code, signal.SIGINT)
    assert group_members(groups[0]) == {}
