"""Hostile input and a broken machine, through real `mlrun` processes: bytes that are not
UTF-8 on the command line, and permission problems (as an unprivileged user when the tests
run as root, since root reads and writes everything).

Every case ends with the documented exit code, one message, no traceback, no run RUNNING and
nothing written where it should not be (tests/hostile.py).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.hostile import assert_one_message, running_runs, tree

MAIN = "entry_points:\n  main:\n    command: echo hi\n"
NOBODY = 65534
SETPRIV = shutil.which("setpriv")


def _usable_unprivileged(python: str, pythonpath: str | None) -> bool:
    env = {"PATH": "/usr/bin:/bin", **({"PYTHONPATH": pythonpath} if pythonpath else {})}
    probe = [SETPRIV or "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    code = "import mlrun_cli.cli, click, yaml, jsonschema, platformdirs"
    done = subprocess.run([*probe, python, "-c", code], env=env, capture_output=True, cwd="/")
    return done.returncode == 0


@pytest.fixture(scope="module")
def unprivileged_python() -> Iterator[tuple[str, str | None]]:
    """An interpreter (and PYTHONPATH) with which an unprivileged user can run mlrun: a venv
    of the system Python with mlrun's dependencies and a copy of the package, world-readable
    (the test's own interpreter may live under root's private home, and so may its venv's
    target, which mlrun needs again to start the entry point's supervisor)."""
    if os.geteuid() != 0 or SETPRIV is None:
        yield sys.executable, None
        return
    root = Path(tempfile.mkdtemp(prefix="mlrun-unprivileged-"))
    root.chmod(0o755)
    try:
        subprocess.run(["uv", "venv", "-q", "--python", "/usr/bin/python3", str(root / "venv")],
                       check=True)  # fmt: skip
        python = str(root / "venv" / "bin" / "python")
        subprocess.run(
            ["uv", "pip", "install", "-q", "--link-mode", "copy", "--python", python,
             "click", "pyyaml", "jsonschema", "platformdirs"],
            check=True,
        )  # fmt: skip
        source = root / "src"
        shutil.copytree(REPO / "mlrun_cli", source / "mlrun_cli")
        shutil.copytree(REPO / "schemas", source / "schemas")
        assert _usable_unprivileged(python, str(source))
        yield python, str(source)
    finally:
        shutil.rmtree(root)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder an unprivileged user can use (pytest's tmp_path is private to its owner)."""
    root = Path(tempfile.mkdtemp(prefix="mlrun-hostile-"))
    root.chmod(0o777)
    (root / "work").mkdir(mode=0o777)
    (root / "work").chmod(0o777)
    (root / "cache").mkdir(mode=0o777)
    (root / "cache").chmod(0o777)
    try:
        yield root
    finally:
        for path in root.rglob("*"):
            if path.is_dir() and not path.is_symlink():
                path.chmod(0o755)
        shutil.rmtree(root)


def mlrun(
    world: Path,
    *args: str | bytes,
    unprivileged: tuple[str, str | None] | None = None,
    **env: str,
):
    """A real mlrun process in `world/work`; `unprivileged` (the `unprivileged_python`
    fixture's interpreter and PYTHONPATH) drops root for the permission cases."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    environ.update({"MLRUN_CACHE_DIR": str(world / "cache"), **env})
    argv: list[str | bytes] = [sys.executable, "-m", "mlrun_cli", *args]
    if unprivileged is not None and os.geteuid() == 0:
        if SETPRIV is None:
            pytest.skip("running as root without setpriv: permissions cannot be tested")
        python, pythonpath = unprivileged
        if pythonpath is not None:
            environ["PYTHONPATH"] = pythonpath
        argv = [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", python,
                "-m", "mlrun_cli", *args]  # fmt: skip
    return subprocess.run(
        argv,
        cwd=world / "work",
        env=environ,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def project(world: Path, files: dict[str, str] | None = None) -> Path:
    directory = world / "work" / "project"
    directory.mkdir(mode=0o777, exist_ok=True)
    for name, content in (files or {"MLproject": MAIN}).items():
        (directory / name).write_text(content)
        (directory / name).chmod(0o666)
    directory.chmod(0o777)
    return directory


def refused(
    world: Path, args: Sequence[str | bytes], codes: tuple[int, ...], **options: object
) -> str:
    before = tree(world / "work")
    done = mlrun(world, *args, **options)  # type: ignore[arg-type]
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode in codes, (done.returncode, stderr)
    assert_one_message(stderr)
    assert not running_runs(world)
    assert tree(world / "work") == before, "a refused input wrote files"
    return stderr


# -- bytes that are not UTF-8 --------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        (b"-P", b"alpha=\xff\xfe"),
        (b"--run-name", b"run-\xc3\x28"),
        (b"--experiment-name", b"exp-\xff"),
        (b"-P", b"na\xffme=1"),
    ],
    ids=["param-value", "run-name", "experiment-name", "param-name"],
)
def test_bytes_that_are_not_utf8_are_refused_before_anything_is_written(
    world: Path, args: tuple[bytes, bytes]
) -> None:
    project(world)
    refused(world, ("run", "project", "--no-env", *args), (2,))


def test_a_retried_bad_experiment_name_never_writes_a_broken_experiment(world: Path) -> None:
    project(world)
    assert mlrun(world, "run", "project", "--no-env").returncode == 0
    for _ in range(2):
        refused(world, ("run", "project", "--no-env", "--experiment-name", b"e\xff"), (2,))
    listed = mlrun(world, "experiments", "list")
    assert listed.returncode == 0 and b"Traceback" not in listed.stderr


def test_a_sample_of_hostile_files_through_a_real_process(world: Path) -> None:
    for content in ("name: a\0b\n", "a: &a [*a]\n", "name: x\nname: y\n", "[" * 60):
        project(world, {"MLproject": content})
        refused(world, ("validate", "project"), (2,))
        refused(world, ("run", "project", "--no-env"), (2,))
    project(world)
    refused(world, ("run", "project", "--no-env", "-P", "../../../esc/pwned=1"), (2,))
    assert not (world / "esc").exists()


# -- a broken machine ----------------------------------------------------------------------------


def test_a_store_that_is_not_writable(unprivileged_python, world: Path) -> None:
    project(world)
    (world / "work" / "mlruns").mkdir(mode=0o555)
    stderr = refused(world, ("run", "project", "--no-env"), (4,), unprivileged=unprivileged_python)
    assert "not writable" in stderr


def test_an_experiment_folder_that_is_not_writable(unprivileged_python, world: Path) -> None:
    project(world)
    assert mlrun(world, "run", "project", "--no-env").returncode == 0
    store = world / "work" / "mlruns"
    for path in [store, *store.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    (store / "0").chmod(0o555)
    stderr = refused(world, ("run", "project", "--no-env"), (4,), unprivileged=unprivileged_python)
    assert "tracking store" in stderr


def test_an_artifact_location_that_is_not_writable_fails_the_run(
    unprivileged_python, world: Path
) -> None:
    project(world)
    locked = world / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)
    created = mlrun(world, "experiments", "create", "-n", "locked", "-l", locked.as_uri())
    assert created.returncode == 0, created.stderr
    store = world / "work" / "mlruns"
    for path in [store, *store.rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    done = mlrun(
        world,
        "run",
        "project",
        "--no-env",
        "--experiment-name",
        "locked",
        unprivileged=unprivileged_python,
    )
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 4, stderr
    assert "Traceback" not in stderr and "mlrun: error: tracking store" in stderr
    assert not running_runs(world)


def test_a_store_that_is_not_readable(unprivileged_python, world: Path) -> None:
    project(world)
    assert mlrun(world, "run", "project", "--no-env").returncode == 0
    (world / "work" / "mlruns").chmod(0)
    refused(world, ("runs", "list"), (4,), unprivileged=unprivileged_python)


def test_a_project_directory_that_is_not_readable(unprivileged_python, world: Path) -> None:
    project(world).chmod(0o311)
    stderr = refused(world, ("validate", "project"), (5,), unprivileged=unprivileged_python)
    assert "cannot be read" in stderr


def test_a_path_input_that_is_not_readable(unprivileged_python, world: Path) -> None:
    text = "entry_points:\n  main:\n    parameters:\n      data: path\n    command: echo {data}\n"
    project(world, {"MLproject": text})
    data = world / "work" / "data.csv"
    data.write_text("a\n")
    data.chmod(0)
    stderr = refused(
        world,
        ("run", "project", "--no-env", "-P", f"data={data}"),
        (2,),
        unprivileged=unprivileged_python,
    )
    assert "not readable" in stderr


def test_caches_that_cannot_be_written_only_cost_time(unprivileged_python, world: Path) -> None:
    project(world)
    archive = world / "work" / "project.zip"
    shutil.make_archive(str(archive.with_suffix("")), "zip", world / "work", "project")
    archive.chmod(0o644)
    blocked = world / "blocked"
    blocked.mkdir(mode=0o555)
    blocked.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IROTH | stat.S_IXOTH)
    env = {
        "MLRUN_CACHE_DIR": str(blocked),
        "MLRUN_SOURCE_ROOT": str(blocked / "sources"),
        "MLRUN_ENV_ROOT": str(blocked / "envs"),
    }
    checked = mlrun(world, "validate", "project", unprivileged=unprivileged_python, **env)
    assert checked.returncode == 0, checked.stderr
    done = mlrun(world, "run", "project.zip", "--no-env", unprivileged=unprivileged_python, **env)
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, stderr
    warnings = [line for line in stderr.splitlines() if "is not usable" in line]
    assert "Traceback" not in stderr
    assert any("source cache" in line for line in warnings), stderr
    assert len(warnings) == len({line.split(" is not usable")[0] for line in warnings}), stderr


@pytest.mark.parametrize("home", [None, "/nonexistent/home"], ids=["unset", "nowhere"])
def test_home_unset_or_pointing_nowhere(world: Path, home: str | None) -> None:
    project(world)
    environ = {k: v for k, v in os.environ.items() if k not in ("HOME", "MLRUN_CACHE_DIR")}
    if home is not None:
        environ["HOME"] = home
    for args in (("validate", "project"), ("run", "project", "--no-env")):
        done = subprocess.run(
            [sys.executable, "-m", "mlrun_cli", *args],
            cwd=world / "work",
            env=environ,
            capture_output=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert b"Traceback" not in done.stderr
    assert not (world / "work" / "~").exists()


def test_a_pyenv_root_that_cannot_be_read_is_skipped(unprivileged_python, world: Path) -> None:
    project(world, {"MLproject": MAIN, "python_env.yaml": "python: '3.99'\n"})
    versions = world / "pyenv" / "versions"
    versions.mkdir(parents=True)
    versions.chmod(0)
    (world / "pyenv").chmod(0o755)
    done = mlrun(
        world,
        "run",
        "project",
        "--env-manager",
        "virtualenv",
        unprivileged=unprivileged_python,
        PYENV_ROOT=str(world / "pyenv"),
    )
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 2, stderr
    warning, error = stderr.splitlines()  # the skipped root is said once, then the error
    assert warning.startswith("mlrun: warning: pyenv's interpreters are not searched")
    assert error.startswith("mlrun: error: no installed Python matches")
    assert not (world / "work" / "mlruns").exists()


def test_a_user_without_home_or_passwd_entry_and_a_closed_path_folder(
    unprivileged_python, world: Path
) -> None:
    """HOME unset, a uid the passwd file does not know (so no home at all), and a PATH whose
    first folder cannot be searched: the caches fall back to a temporary folder and bash is
    found further along PATH."""
    if os.geteuid() != 0 or SETPRIV is None:
        pytest.skip("needs root and setpriv to become a uid without a passwd entry")
    project(world)
    closed = world / "closed"
    closed.mkdir(mode=0o700)
    python, pythonpath = unprivileged_python
    environ = {"PATH": f"{closed}:/usr/bin:/bin", "PYTHONPATH": pythonpath or ""}
    stranger = "4242424"
    for args in (("validate", "project"), ("run", "project", "--no-env")):
        done = subprocess.run(
            [SETPRIV, f"--reuid={stranger}", f"--regid={stranger}", "--clear-groups", python,
             "-m", "mlrun_cli", *args],
            cwd=world / "work", env=environ, capture_output=True, timeout=60,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        stderr = done.stderr.decode(errors="replace")
        assert done.returncode == 0, stderr
        assert "Traceback" not in stderr and "Permission denied" not in stderr, stderr
    assert b"hi" in done.stdout
    assert not (world / "work" / "~").exists()
