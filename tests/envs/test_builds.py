"""Real environment builds through `mlrun run`: uv, virtualenv, conda (rattler), failures."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlrun_cli.tracking.file_store import FileStore
from tests.conftest import EXAMPLE, child_env, mlrun_command, run_mlrun, write_files

pytestmark = pytest.mark.slow
ENV_LESS = "entry_points:\n  main:\n    command: python -c 'import sys; print(sys.prefix)'\n"
BUILD_BARRIER = Path(__file__).parent / "build_barrier"
OWN_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def mlrun(tmp_path: Path, *args: str, timeout: float = 600):
    return run_mlrun(*args, cwd=tmp_path, timeout=timeout, MLRUN_ENV_ROOT=str(tmp_path / "envs"))


def last_run(tmp_path: Path):
    metas = sorted((tmp_path / "mlruns" / "0").glob("*/meta.yaml"), key=lambda p: p.stat().st_mtime)
    info, _params, tags = FileStore(tmp_path / "mlruns").read_run(metas[-1].parent.name)
    return info, tags, tmp_path / "mlruns" / "0" / info.run_id / "artifacts"


def cached_envs(tmp_path: Path) -> list[dict]:
    listed = mlrun(tmp_path, "envs", "list", "--json")
    return json.loads(listed.stdout)["envs"]


@pytest.mark.parametrize("manager", ["uv", "virtualenv"])
def test_the_example_builds_its_env_then_reuses_it(tmp_path: Path, manager: str) -> None:
    shutil.copytree(
        EXAMPLE, tmp_path / "example_project", ignore=shutil.ignore_patterns("*.joblib")
    )

    first = mlrun(tmp_path, "run", "example_project", "-e", "train", "--env-manager", manager)
    assert first.returncode == 0, first.stderr
    assert f"building {manager} env, Python" in first.stderr
    info, tags, artifacts = last_run(tmp_path)
    assert info.status.name == "FINISHED"
    assert tags["mlflow.project.env"] == manager
    assert tags["mlrun.env.python"].startswith(OWN_PYTHON)
    key = tags["mlrun.env.key"]
    lock = (artifacts / "environment" / "requirements.lock.txt").read_text().lower()
    assert "scikit-learn==" in lock and "mlflow-skinny==" in lock
    assert (artifacts / "environment" / "build.log").is_file()

    second = mlrun(tmp_path, "run", "example_project", "-e", "train", "--env-manager", manager)
    assert second.returncode == 0, second.stderr
    assert "building" not in second.stderr
    _, tags, artifacts = last_run(tmp_path)
    assert tags["mlrun.env.key"] == key
    assert (artifacts / "environment" / "requirements.lock.txt").is_file()
    assert not (artifacts / "environment" / "build.log").exists()
    [env] = cached_envs(tmp_path)
    assert (env["key"], env["manager"], env["project"]) == (
        key,
        manager,
        str(tmp_path / "example_project"),
    )


@pytest.mark.parametrize("version", ["3.10", "3.12"])
def test_projects_asking_for_other_pythons(tmp_path: Path, version: str) -> None:
    write_files(
        tmp_path / "p",
        {
            "python_env.yaml": f"python: '{version}'\ndependencies: [six]\n",
            "main.py": "import platform, six; print(platform.python_version())\n",
        },
    )
    done = mlrun(tmp_path, "run", "p", "-e", "main.py")
    if done.returncode == 2 and "no installed Python matches" in done.stderr:
        pytest.skip(f"Python {version} is not installed here")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(version + ".")
    _, tags, _ = last_run(tmp_path)
    assert tags["mlrun.env.python"] == done.stdout.strip()


def test_four_concurrent_runs_on_a_cold_key_build_once(tmp_path: Path) -> None:
    write_files(
        tmp_path / "p",
        {
            "python_env.yaml": f"python: '{OWN_PYTHON}'\ndependencies: [six, packaging]\n",
            "main.py": "import six, packaging; print('ok')\n",
        },
    )
    misses = tmp_path / "misses"
    misses.mkdir()
    # The barrier (build_barrier/sitecustomize.py): no runner builds until all four have found
    # the key cold, so only the lock can make them build once.
    env = child_env(
        MLRUN_ENV_ROOT=str(tmp_path / "envs"),
        PYTHONPATH=str(BUILD_BARRIER),
        MLRUN_TEST_BUILD_BARRIER=str(misses),
        MLRUN_TEST_BUILD_RUNNERS="4",
    )
    runners = [
        subprocess.Popen(
            mlrun_command("run", "p", "-e", "main.py"),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [r.communicate(timeout=600) for r in runners]
    assert [r.returncode for r in runners] == [0, 0, 0, 0], outputs
    assert len(list(misses.iterdir())) == 4  # all of them raced for the cold key
    assert sum("building uv env" in err for _, err in outputs) == 1
    assert [out for out, _ in outputs] == ["ok\n"] * 4
    assert len(cached_envs(tmp_path)) == 1
    statuses = [
        FileStore(tmp_path / "mlruns").read_run(m.parent.name)[0].status.name
        for m in (tmp_path / "mlruns" / "0").glob("*/meta.yaml")
    ]
    assert statuses == ["FINISHED"] * 4


def test_a_package_that_does_not_exist_fails_the_run_and_caches_nothing(tmp_path: Path) -> None:
    project = write_files(
        tmp_path / "p",
        {
            "python_env.yaml": f"python: '{OWN_PYTHON}'\ndependencies: [mlrun-test-no-such-package-xyz]\n",
            "main.py": "print('ran')\n",
        },
    )
    done = mlrun(tmp_path, "run", "p", "-e", "main.py")
    assert done.returncode == 3
    assert (
        "mlrun: error: installing dependencies failed (exit code 1); end of the build log:"
        in done.stderr
    )
    assert "mlrun-test-no-such-package-xyz" in done.stderr
    assert "ran" not in done.stdout
    info, _, artifacts = last_run(tmp_path)
    assert info.status.name == "FAILED"
    assert "mlrun-test-no-such-package-xyz" in (artifacts / "environment" / "build.log").read_text()
    assert cached_envs(tmp_path) == []

    (project / "python_env.yaml").write_text(f"python: '{OWN_PYTHON}'\ndependencies: [six]\n")
    fixed = mlrun(tmp_path, "run", "p", "-e", "main.py")
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout == "ran\n"
    assert len(cached_envs(tmp_path)) == 1


def test_rebuild_env_builds_again_and_says_why(tmp_path: Path) -> None:
    write_files(tmp_path / "p", {"python_env.yaml": f"python: '{OWN_PYTHON}'\n", "main.py": ""})
    assert mlrun(tmp_path, "run", "p", "-e", "main.py").returncode == 0
    again = mlrun(tmp_path, "run", "p", "-e", "main.py", "--rebuild-env")
    assert again.returncode == 0
    assert "building uv env" in again.stderr and "--rebuild-env was given" in again.stderr
    changed = tmp_path / "p" / "python_env.yaml"
    changed.write_text(f"python: '{OWN_PYTHON}'\ndependencies: [six]\n")
    third = mlrun(tmp_path, "run", "p", "-e", "main.py")
    assert "python_env.yaml changed since env" in third.stderr


def local_channel(root: Path) -> str:
    """A conda channel with one noarch package whose `hello-mlrun` prints a line."""
    import asyncio

    from rattler.index import index_fs
    from rattler_build import assemble_package

    files = write_files(root / "files", {"bin/hello-mlrun": "#!/bin/sh\necho hello from conda\n"})
    (files / "bin" / "hello-mlrun").chmod(0o755)
    (root / "channel" / "noarch").mkdir(parents=True)
    assemble_package(
        "hello-mlrun",
        "1.0",
        "noarch",
        "0",
        root / "channel" / "noarch",
        files_dir=files,
        noarch="generic",
    )
    asyncio.run(index_fs(root / "channel"))
    return (root / "channel").as_uri()


def test_a_conda_env_is_solved_and_installed_from_a_local_channel(tmp_path: Path) -> None:
    channel = local_channel(tmp_path / "conda")
    write_files(
        tmp_path / "p",
        {
            "conda.yaml": f"channels: [{channel}]\ndependencies: [hello-mlrun]\n",
            "MLproject": "entry_points:\n  main:\n    command: 'hello-mlrun && echo $CONDA_PREFIX'\n",
        },
    )
    done = mlrun(tmp_path, "run", "p")
    assert done.returncode == 0, done.stderr
    out = done.stdout.splitlines()
    assert out[0] == "hello from conda"
    _, tags, artifacts = last_run(tmp_path)
    assert (tags["mlflow.project.env"], tags["mlrun.env.engine"]) == ("conda", "rattler")
    assert out[1] == str(tmp_path / "envs" / tags["mlrun.env.key"] / "env")
    assert "hello-mlrun=1.0=0" in (artifacts / "environment" / "requirements.lock.txt").read_text()


UNREACHABLE_CONDA = """channels: [http://127.0.0.1:9/no-conda-here]
dependencies:
  - python={python}
  - cudatoolkit=11.8
  - six
  - pip
  - pip:
    - packaging
"""


def test_an_unreachable_conda_channel_falls_back_to_a_pip_translation(tmp_path: Path) -> None:
    write_files(
        tmp_path / "p",
        {
            "conda.yaml": UNREACHABLE_CONDA.format(python=OWN_PYTHON),
            "main.py": "import six, packaging, sys; print(sys.prefix)\n",
        },
    )
    done = mlrun(tmp_path, "run", "p", "-e", "main.py")
    assert done.returncode == 0, done.stderr
    assert "conda channels unreachable" in done.stderr
    assert "leaving out: cudatoolkit=11.8" in done.stderr
    _, tags, _ = last_run(tmp_path)
    assert (tags["mlflow.project.env"], tags["mlrun.env.engine"]) == ("conda", "pip-translation")

    strict = mlrun(tmp_path, "run", "p", "-e", "main.py", "--env-manager", "conda")
    assert strict.returncode == 3
    assert "mlrun: error: conda channels unreachable" in strict.stderr
    assert last_run(tmp_path)[0].status.name == "FAILED"


def test_uv_builds_a_conda_project_through_the_translation(tmp_path: Path) -> None:
    write_files(
        tmp_path / "p",
        {
            "conda.yaml": UNREACHABLE_CONDA.format(python=OWN_PYTHON),
            "main.py": "import six, packaging; print('ok')\n",
        },
    )
    done = mlrun(tmp_path, "run", "p", "-e", "main.py", "--env-manager", "uv")
    assert done.returncode == 0, done.stderr
    assert "conda packages pip cannot install were left out: cudatoolkit=11.8" in done.stderr
    assert done.stdout == "ok\n"


def test_a_uv_lock_project_is_built_from_its_lock(tmp_path: Path) -> None:
    project = write_files(
        tmp_path / "p",
        {
            "pyproject.toml": f'[project]\nname = "p"\nversion = "0"\nrequires-python = ">={OWN_PYTHON}"\n'
            'dependencies = ["six"]\n',
            "main.py": "import six; print(six.__version__)\n",
        },
    )
    from mlrun_cli.envs.uv import uv_executable

    subprocess.run([uv_executable(), "lock"], cwd=project, check=True, capture_output=True)
    done = mlrun(tmp_path, "run", "p", "-e", "main.py")
    assert done.returncode == 0, done.stderr
    _, tags, artifacts = last_run(tmp_path)
    assert (tags["mlflow.project.env"], tags["mlrun.env.engine"]) == ("uv", "uv.lock")
    assert (
        f"six=={done.stdout.strip()}"
        in (artifacts / "environment" / "requirements.lock.txt").read_text()
    )
    virtualenv = mlrun(tmp_path, "run", "p", "-e", "main.py", "--env-manager", "virtualenv")
    assert virtualenv.returncode == 2
    assert "only uv can install" in virtualenv.stderr


def test_a_terminal_sees_a_spinner_that_is_erased_before_the_entry_point_speaks(
    tmp_path: Path,
) -> None:
    import os
    import pty

    write_files(
        tmp_path / "p",
        {
            "python_env.yaml": f"python: '{OWN_PYTHON}'\ndependencies: [six]\n",
            "main.py": "import sys; print('entry point speaking', file=sys.stderr)\n",
        },
    )
    leader, follower = pty.openpty()
    runner = subprocess.Popen(
        mlrun_command("run", "p", "-e", "main.py"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=follower,
        env=child_env(MLRUN_ENV_ROOT=str(tmp_path / "envs")),
    )
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        screen += chunk
    runner.wait(timeout=600)
    text = screen.decode()
    assert runner.returncode == 0, text
    assert "\r| mlrun: building uv env" in text
    spinner_end = text.rindex("\r\x1b[K")
    assert spinner_end < text.index("mlrun: built uv env") < text.index("entry point speaking")


@pytest.mark.parametrize("manager", ["uv", "virtualenv"])
def test_a_project_without_env_files_gets_a_fresh_env_when_asked_as_mlflow_builds(
    tmp_path: Path, manager: str
) -> None:
    """MLflow builds a virtualenv with the current Python for such a project; mlrun does the
    same with --env-manager uv or virtualenv (the README's Differences say so)."""
    write_files(
        tmp_path / "project",
        {"MLproject": ENV_LESS},
    )
    done = mlrun(tmp_path, "run", "project", "--env-manager", manager)
    assert done.returncode == 0, done.stderr
    _info, tags, artifacts = last_run(tmp_path)
    assert tags["mlrun.env.python"].startswith(OWN_PYTHON)
    prefix = (artifacts / "logs" / "stdout.log").read_text().strip()
    assert prefix.startswith(str(tmp_path / "envs"))
