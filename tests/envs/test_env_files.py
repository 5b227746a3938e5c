"""python_env.yaml, conda.yaml and finding the interpreter they ask for."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import pytest

from mlrun_cli.envs.conda_file import load_conda_file, translate
from mlrun_cli.envs.interpreters import find_interpreter, satisfies
from mlrun_cli.envs.python_env import load_python_env
from mlrun_cli.errors import EnvUnavailableError, SpecError
from tests.conftest import write_files


@pytest.mark.parametrize(
    ("version", "wanted", "ok"),
    [
        ("3.11.7", "3", True),
        ("3.11.7", "3.11", True),
        ("3.11.7", "3.11.7", True),
        ("3.11.7", "3.1", False),
        ("3.10.13", "3.10.12", False),
        ("3.12.1", "3.11", False),
    ],
)
def test_a_requirement_is_a_version_prefix(version, wanted, ok) -> None:
    assert satisfies(version, wanted) is ok


def fake_pyenv(root: Path, *versions: str) -> Path:
    """A pyenv versions folder whose interpreters are this (real) Python."""
    for version in versions:
        major_minor = ".".join(version.split(".")[:2])
        executable = root / "versions" / version / "bin" / f"python{major_minor}"
        executable.parent.mkdir(parents=True)
        executable.symlink_to(sys.executable)
    return root


def test_pyenv_versions_are_found_by_folder_name_newest_first(tmp_path) -> None:
    root = fake_pyenv(tmp_path, "3.97.1", "3.97.4", "3.98.0")
    environ = {"PYENV_ROOT": str(root), "PATH": ""}
    found = find_interpreter("3.97", environ)
    assert (found.version, found.path) == ("3.97.4", root / "versions/3.97.4/bin/python3.97")
    assert find_interpreter("3.97.1", environ).version == "3.97.1"


def test_the_current_interpreter_satisfies_its_own_version(tmp_path) -> None:
    wanted = f"{sys.version_info.major}.{sys.version_info.minor}"
    found = find_interpreter(wanted, {"PYENV_ROOT": str(tmp_path), "PATH": ""})
    assert found.path == Path(sys.executable)


def other_installed_python() -> Path | None:
    """A real interpreter of another minor version than this one (pyenv has several here)."""
    own = f"{sys.version_info.major}.{sys.version_info.minor}"
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    for executable in sorted(root.glob("3.*/bin/python3.*")):
        if executable.name[len("python") :] != own and executable.name.count(".") == 1:
            return executable
    return None


def test_path_executables_are_asked_their_version(tmp_path) -> None:
    other = other_installed_python()
    if other is None:
        pytest.skip("needs a second installed Python (pyenv provides them on these machines)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / other.name).symlink_to(other)
    environ = {"PYENV_ROOT": str(tmp_path / "none"), "PATH": str(bin_dir)}
    found = find_interpreter(other.name[len("python") :], environ)
    assert found.path == bin_dir / other.name
    assert found.version.startswith(other.name[len("python") :] + ".")


def test_no_match_lists_what_is_installed(tmp_path) -> None:
    root = fake_pyenv(tmp_path, "3.97.1")
    with pytest.raises(
        EnvUnavailableError,
        match=r"no installed Python matches python: '3\.99' \(installed: .*3\.97\.1",
    ):
        find_interpreter("3.99", {"PYENV_ROOT": str(root), "PATH": ""})


def test_python_env_loads_and_resolves_requirement_files(tmp_path) -> None:
    project = write_files(
        tmp_path,
        {
            "python_env.yaml": "python: '3.11'\nbuild_dependencies: [pip]\ndependencies:\n  - six\n  - -r reqs/extra.txt\n",
            "reqs/extra.txt": "packaging\n",
        },
    )
    spec = load_python_env(project / "python_env.yaml", tmp_path)
    assert (spec.python, spec.build_dependencies) == ("3.11", ("pip",))
    assert spec.requirement_lines(project) == ["six", f"-r {project / 'reqs' / 'extra.txt'}"]
    before = spec.fingerprint(project)
    (project / "reqs" / "extra.txt").write_text("packaging==24.0\n")
    assert spec.fingerprint(project) != before


def test_python_env_without_python_means_the_current_interpreter(tmp_path) -> None:
    """As MLflow's `_PythonEnv`: sklearn_elasticnet_wine and its peers ship no `python` key."""
    (tmp_path / "python_env.yaml").write_text(
        "build_dependencies:\n  - pip\ndependencies:\n  - six\n"
    )
    spec = load_python_env(tmp_path / "python_env.yaml", tmp_path)
    assert spec.python == platform.python_version()
    assert spec.dependencies == ("six",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "python: 3.10\n",
            ['python_env.yaml:1: python: write the version in quotes: python: "3.10"'],
        ),
        (
            "python: '3.11'\ndeps: [six]\n",
            [
                "python_env.yaml:2: deps: unknown key (allowed here: python, build_dependencies, dependencies)"
            ],
        ),
        (
            "python: '3.11'\ndependencies: [-r missing.txt]\n",
            ["python_env.yaml:2: dependencies: referenced file not found: {dir}/missing.txt"],
        ),
    ],
)
def test_python_env_mistakes_are_located(tmp_path, text, expected) -> None:
    (tmp_path / "python_env.yaml").write_text(text)
    with pytest.raises(SpecError) as caught:
        load_python_env(tmp_path / "python_env.yaml", tmp_path)
    assert caught.value.lines() == [line.format(dir=tmp_path) for line in expected]


def test_conda_file_translation_keeps_pip_installable_packages(tmp_path) -> None:
    (tmp_path / "conda.yaml").write_text(
        "channels: [conda-forge]\ndependencies:\n  - python=3.10\n  - numpy=1.26.*\n"
        "  - scikit-learn>=1.3\n  - cudatoolkit=11.8\n  - conda-forge::libfoo\n  - pytorch\n"
        "  - pip\n  - pip:\n    - mlflow-skinny\n"
    )
    conda = load_conda_file(tmp_path / "conda.yaml", "conda.yaml")
    assert conda.channels == ("conda-forge",)
    spec = translate(conda, "3.11")
    assert spec.python == "3.10"
    assert spec.dependencies == ("numpy==1.26.*", "scikit-learn>=1.3", "torch", "mlflow-skinny")
    assert spec.dropped == ("cudatoolkit=11.8", "conda-forge::libfoo")


def test_conda_file_without_python_pin_uses_the_given_default(tmp_path) -> None:
    (tmp_path / "conda.yaml").write_text("dependencies: [six]\n")
    assert (
        translate(load_conda_file(tmp_path / "conda.yaml", "conda.yaml"), "3.11").python == "3.11"
    )


def test_a_broken_conda_file_is_a_spec_error(tmp_path) -> None:
    (tmp_path / "conda.yaml").write_text("dependencies: {a: 1}\n")
    with pytest.raises(SpecError, match="expected a list of packages"):
        load_conda_file(tmp_path / "conda.yaml", "conda.yaml")


def test_the_uv_version_in_the_env_key_is_the_installed_wheels() -> None:
    """Read from the dist-info folder's name: a warm run does not import importlib.metadata."""
    from importlib import metadata

    from mlrun_cli.envs.uv import _wheel_version

    assert _wheel_version() == metadata.version("uv")
