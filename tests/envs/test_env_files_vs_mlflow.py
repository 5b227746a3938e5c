"""Every env-file rule against MLflow's own loader, run in the test on generated files.

What MLflow accepts, mlrun accepts; what MLflow refuses, mlrun refuses with a line. "MLflow
refuses" counts its loader (`_PythonEnv.from_yaml`, `_PythonEnv.from_conda_yaml`) and what
its builds cannot use: a requirement that is not a string (MLflow writes them joined into a
requirements file, which fails). The few places where mlrun differs on purpose are named in
`_python_env_deviation` and `_conda_deviation`, each with its reason.
"""

from __future__ import annotations

import itertools
import platform
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from mlflow.utils.environment import _PythonEnv

from mlrun_cli.envs.conda_file import load_conda_file
from mlrun_cli.envs.python_env import load_python_env
from mlrun_cli.errors import SpecError

ABSENT = object()
_VERSION = re.compile(r"^\d+(\.\d+){0,2}$")

PYTHON = [ABSENT, None, "", "3.10", "3.10.12", "3", 3.1, 3, ["3.10"], "3.11.*", ">=3.10"]
BUILD_DEPENDENCIES = [ABSENT, None, [], ["pip"], "pip", [1], ["", "pip"]]
DEPENDENCIES = [ABSENT, None, [], ["six"], "six", ["", "six"], [None], [["six"]], [{"a": 1}]]
EXTRA = [{}, {"extras": ["x"]}]

CHANNELS = [ABSENT, None, ["conda-forge"], "conda-forge", [1]]
NAME = [ABSENT, "env", 3]
CONDA_DEPENDENCIES = [
    ABSENT,
    None,
    [],
    ["python=3.10", "six"],
    ["python", "six"],
    ["python>3.8"],
    [3.8],
    [True],
    [{"pip": ["six"]}],
    [{"pip": None}],
    [{"pip": "six"}],
    [{"pip": [1]}],
    [{"conda": ["six"]}],
    ["six", {"pip": ["a"], "extra": 1}],
    "six",
]


def _document(**fields: Any) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value is not ABSENT}


def _write(path: Path, data: Any, raw: str | None = None) -> Path:
    path.write_text(raw if raw is not None else yaml.safe_dump(data, sort_keys=False))
    return path


def _mlflow_python_env(path: Path) -> _PythonEnv | None:
    """MLflow's reading, and whether its build could use the requirements."""
    try:
        env = _PythonEnv.from_yaml(str(path))
    except Exception:  # MLflow raises TypeError, AttributeError ...: any is a refusal
        return None
    requirements = [*env.build_dependencies, *env.dependencies]
    return env if all(isinstance(r, str) for r in requirements) else None


def _mlrun_verdict(load: Any) -> tuple[bool, Any]:
    """(accepted, result); a refusal must locate every problem by line."""
    try:
        return True, load()
    except SpecError as exc:
        assert exc.problems, "a refusal without a problem"
        for problem in exc.problems:
            assert problem.line is not None, f"no line: {problem}"
        return False, exc


def _python_env_deviation(data: Any) -> str | None:
    """Where mlrun refuses on purpose what MLflow's loader takes (and why)."""
    python = data.get("python") if isinstance(data, dict) else None
    if isinstance(python, str) and python.strip() and not _VERSION.match(python.strip()):
        return "mlrun finds an installed interpreter by version prefix: a number is needed"
    return None


def _python_env_cases() -> list[tuple[str, Any, str | None]]:
    cases: list[tuple[str, Any, str | None]] = [
        ("empty file", None, ""),
        ("a list", ["six"], None),
        ("a string", "six", None),
        ("a number key", {1: "x"}, None),
    ]
    for python, build, deps, extra in itertools.product(
        PYTHON, BUILD_DEPENDENCIES, DEPENDENCIES, EXTRA
    ):
        data = {**_document(python=python, build_dependencies=build, dependencies=deps), **extra}
        cases.append((repr(data), data, None))
    return cases


def test_python_env_files_are_read_as_mlflow_reads_them(tmp_path: Path) -> None:
    disagreements = []
    cases = _python_env_cases()
    for index, (label, data, raw) in enumerate(cases):
        path = _write(tmp_path / f"python_env_{index}.yaml", data, raw)
        theirs = _mlflow_python_env(path)
        accepted, ours = _mlrun_verdict(lambda p=path: load_python_env(p, tmp_path))
        expected = theirs is not None and _python_env_deviation(data) is None
        if accepted != expected:
            disagreements.append(f"{label}: mlflow {theirs is not None}, mlrun {accepted}")
        elif accepted:
            assert ours.python == (theirs.python or platform.python_version()).strip(), label
            assert list(ours.dependencies) == [d for d in theirs.dependencies if d.strip()]
            assert list(ours.build_dependencies) == [
                d for d in theirs.build_dependencies if d.strip()
            ]
    assert len(cases) > 1000
    assert not disagreements, "\n".join(disagreements)


def _mlflow_conda(path: Path) -> dict[str, Any] | None:
    try:
        env = _PythonEnv.from_conda_yaml(str(path))
    except Exception:  # MlflowException, TypeError, AttributeError: any is a refusal
        return None
    return env.to_dict() if all(isinstance(d, str) for d in env.dependencies) else None


_UNPINNED_PYTHON = re.compile(r"^python((<|>|!=)[\d.]*)?$")


def _conda_oracle(data: Any, path: Path) -> dict[str, Any] | None:
    """MLflow's verdict, but for where mlrun differs on purpose:
    - channels must be a list of names, conda's format: conda engines read them (MLflow
      hands them to conda unread);
    - a string for dependencies is refused: MLflow iterates it letter by letter;
    - an unpinned python (`python`, `python>3.8`) is accepted: it is conda's to solve (MLflow's
      conda manager accepts it too); the pip translation then uses the current Python."""
    if not isinstance(data, dict):
        return _mlflow_conda(path)
    channels = data.get("channels")
    if channels is not None and not (
        isinstance(channels, list) and all(isinstance(c, str) for c in channels)
    ):
        return None
    specs = data.get("dependencies")
    if isinstance(specs, str):
        return None
    if isinstance(specs, list):
        kept = [s for s in specs if not (isinstance(s, str) and _UNPINNED_PYTHON.match(s))]
        path = _write(path.with_name(f"pinned_{path.name}"), {**data, "dependencies": kept})
    return _mlflow_conda(path)


def _conda_cases() -> list[tuple[str, Any, str | None]]:
    cases: list[tuple[str, Any, str | None]] = [
        ("empty file", None, ""),
        ("a list", ["six"], None),
    ]
    for name, channels, deps in itertools.product(NAME, CHANNELS, CONDA_DEPENDENCIES):
        data = _document(name=name, channels=channels, dependencies=deps)
        cases.append((repr(data), data, None))
    return cases


def test_conda_files_are_read_as_mlflow_reads_them(tmp_path: Path) -> None:
    disagreements = []
    for index, (label, data, raw) in enumerate(_conda_cases()):
        path = _write(tmp_path / f"conda_{index}.yaml", data, raw)
        theirs = _conda_oracle(data, path)
        accepted, ours = _mlrun_verdict(lambda p=path: load_conda_file(p, p.name))
        if accepted != (theirs is not None):
            disagreements.append(f"{label}: mlflow {theirs is not None}, mlrun {accepted}")
        elif accepted and theirs is not None:
            assert list(ours.pip_specs) == list(theirs["dependencies"] or []), label
    assert not disagreements, "\n".join(disagreements)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("python: '3.11.*'\n", 1, 'expected a version such as "3.11"'),
        ("", 1, "an empty file"),
    ],
)
def test_python_env_refusals_name_the_line(tmp_path: Path, text: str, line: int, words: str):
    path = _write(tmp_path / "python_env.yaml", None, text)
    with pytest.raises(SpecError) as caught:
        load_python_env(path, tmp_path)
    [problem] = caught.value.problems
    assert problem.line == line and words in str(problem)


def test_an_empty_requirement_is_skipped_with_a_warning(tmp_path: Path, caplog) -> None:
    path = _write(tmp_path / "python_env.yaml", None, "dependencies:\n  - six\n  - ''\n")
    assert load_python_env(path, tmp_path).dependencies == ("six",)
    assert "python_env.yaml:3: dependencies[1]: an empty requirement" in caplog.text


EXAMPLES = Path(__file__).parents[1] / "fixtures" / "mlflow_examples"


@pytest.mark.parametrize(
    "example", sorted(p.parent.name for p in EXAMPLES.glob("*/python_env.yaml"))
)
def test_mlflow_examples_env_files_read_as_mlflow_reads_them(example: str) -> None:
    path = EXAMPLES / example / "python_env.yaml"
    theirs = _PythonEnv.from_yaml(str(path))
    ours = load_python_env(path, EXAMPLES)
    assert ours.python == theirs.python
    assert list(ours.dependencies) == theirs.dependencies
    assert list(ours.build_dependencies) == theirs.build_dependencies


def test_validate_and_run_give_the_same_verdict_on_every_python_env(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`validate` and `run`'s plan read the file alike; only a Python version this machine
    lacks differs: validate warns (the file is fine), run refuses before the run exists."""
    from mlrun_cli.commands.validate import validate
    from mlrun_cli.core.settings import Settings
    from mlrun_cli.errors import EnvUnavailableError
    from mlrun_cli.run.pipeline import plan_run
    from mlrun_cli.run.plan import RunRequest

    mlproject = "python_env: python_env.yaml\nentry_points:\n  main:\n    command: echo hi\n"
    settings = Settings.resolve(cwd=tmp_path)
    for index, (python, deps) in enumerate(itertools.product(PYTHON, DEPENDENCIES)):
        directory = tmp_path / str(index)
        directory.mkdir()
        (directory / "MLproject").write_text(mlproject)
        _write(directory / "python_env.yaml", _document(python=python, dependencies=deps))
        caplog.clear()
        validated, _ = _mlrun_verdict(lambda d=directory: validate(str(d), settings))
        warned = "no installed Python matches" in caplog.text
        try:
            plan_run(RunRequest(uri=str(directory), env_manager="uv"), settings)
            planned = True
        except SpecError:
            planned = False
        except EnvUnavailableError as exc:
            assert validated and warned and "no installed Python" in exc.message, (python, deps)
            continue
        assert validated == planned, (python, deps)
