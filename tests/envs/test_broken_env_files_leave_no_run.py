"""A broken env file is refused before the run exists: `mlrun run` exits non-zero with one
message, and the store holds no run and no experiment (every env-file check is in plan_run,
which writes nothing), whatever the env manager and wherever the file is declared."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hostile import assert_one_message, tree

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]\n"
    for previous, name in zip("abcd", "bcde", strict=True)
)

BROKEN_PYTHON_ENV = {
    "alias bomb": BOMB + "dependencies: *e\n",
    "empty file": "",
    "not a mapping": "- six\n",
    "python as a number": "python: 3.10\n",
    "python not a version": "python: latest\n",
    "python not installed": "python: '3.99'\n",
    "unknown key": "python: '3.11'\ndeps: [six]\n",
    "dependencies a string": "dependencies: six\n",
    "a number as requirement": "dependencies: [six, 1]\n",
    "missing -r file": "dependencies: ['-r missing.txt']\n",
    "syntax error": "dependencies: [six\n",
    "not UTF-8": b"dependencies: [\xff\xfe]\n",
}
BROKEN_CONDA = {
    "alias bomb": BOMB + "dependencies: *e\n",
    "empty file": "",
    "not a mapping": "- six\n",
    "null dependencies": "dependencies:\n",
    "a number as package": "dependencies: [3.8]\n",
    "a pip section not a list": "dependencies: [{pip: six}]\n",
    "channels not a list of names": "channels: [1]\ndependencies: [six]\n",
}
MANAGERS = [(), ("--env-manager", "uv"), ("--env-manager", "virtualenv")]


def _write(directory: Path, files: dict[str, str | bytes]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = directory / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def _refused(cli, tmp_path: Path, *args: str) -> None:
    before = tree(tmp_path)
    result = cli("run", "project", "--experiment-name", "fresh", *args)
    assert result.exit_code != 0, result.stderr
    assert_one_message(result.stderr)
    assert not (tmp_path / "mlruns").exists(), "a refused env file left a store"
    assert tree(tmp_path) == before, "a refused env file wrote files"


@pytest.mark.parametrize("manager", MANAGERS, ids=["default", "uv", "virtualenv"])
@pytest.mark.parametrize("case", sorted(BROKEN_PYTHON_ENV))
def test_a_broken_python_env_leaves_no_run(cli, tmp_path: Path, case: str, manager) -> None:
    mlproject = "python_env: env.yaml\nentry_points:\n  main:\n    command: echo hi\n"
    _write(tmp_path / "project", {"MLproject": mlproject, "env.yaml": BROKEN_PYTHON_ENV[case]})
    _refused(cli, tmp_path, *manager)


@pytest.mark.parametrize("case", sorted(BROKEN_PYTHON_ENV))
def test_a_broken_python_env_beside_a_bare_script_leaves_no_run(cli, tmp_path, case) -> None:
    files = {"train.py": "print('hi')\n", "python_env.yaml": BROKEN_PYTHON_ENV[case]}
    _write(tmp_path / "project", files)
    _refused(cli, tmp_path, "-e", "train.py")


@pytest.mark.parametrize("manager", MANAGERS, ids=["default", "uv", "virtualenv"])
@pytest.mark.parametrize("case", sorted(BROKEN_CONDA))
def test_a_broken_conda_file_leaves_no_run(cli, tmp_path: Path, case: str, manager) -> None:
    mlproject = "conda_env: env.yaml\nentry_points:\n  main:\n    command: echo hi\n"
    _write(tmp_path / "project", {"MLproject": mlproject, "env.yaml": BROKEN_CONDA[case]})
    _refused(cli, tmp_path, *manager)


@pytest.mark.parametrize(
    ("name", "content"),
    [("python_env.yaml", "python: '3.99'\n"), ("conda.yaml", "dependencies: [python=3.99]\n")],
)
@pytest.mark.parametrize("manager", ["uv", "virtualenv"])
def test_an_uninstalled_python_names_the_file_that_asks_for_it(
    cli, tmp_path: Path, name: str, content: str, manager: str
) -> None:
    _write(tmp_path / "project", {"train.py": "print('hi')\n", name: content})
    _refused(cli, tmp_path, "-e", "train.py", "--env-manager", manager)
    stderr = cli("run", "project", "-e", "train.py", "--env-manager", manager).stderr
    assert stderr.rstrip().endswith(f"(asked for by project/{name})"), stderr
