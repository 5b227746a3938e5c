"""The run key: equal exactly when code, entry point, params, env and input data are equal."""

from __future__ import annotations

import os
from pathlib import Path

from mlrun_cli.context import Settings
from mlrun_cli.run.pipeline import RunRequest, plan_run
from mlrun_cli.run.run_key import compute_run_key
from tests.gitrepos import make_repo

PROJECT = {
    "MLproject": """
name: keyed
entry_points:
  main:
    parameters:
      data: {type: path, default: data.txt}
      k: {type: float, default: 1}
    command: "python step.py {data} {k}"
  other:
    command: "python step.py"
""",
    "step.py": "print('step')\n",
    "data.txt": "a\n",
}


def key(project: Path, *params: str, entry: str = "main") -> str:
    settings = Settings.resolve(None, cwd=project.parent, environ=dict(os.environ))
    request = RunRequest(
        uri=str(project), entry_point=entry, parameters=params, env_manager="local"
    )
    return compute_run_key(plan_run(request, settings)).key


def test_a_project_outside_git_is_keyed_by_its_content(make_project) -> None:
    project = make_project(PROJECT)
    first = key(project)
    assert key(project) == first
    assert key(project, "k=2") != first
    assert key(project, entry="other") != key(project, entry="main")
    (project / "step.py").write_text("print('changed')\n")
    changed_code = key(project)
    assert changed_code != first
    (project / "data.txt").write_text("b\n")
    assert key(project) != changed_code
    (project / "mlruns").mkdir()
    (project / "mlruns" / "x").write_text("a store inside the project does not count")
    (project / "__pycache__").mkdir()
    (project / "__pycache__" / "step.pyc").write_text("nor does bytecode")
    assert key(project) == key(project)


def test_a_git_project_is_keyed_by_commit_diff_and_untracked_content(tmp_path) -> None:
    repo = make_repo(tmp_path / "repo", PROJECT)
    clean = key(repo)
    (repo / "step.py").write_text("print('dirty')\n")
    dirty = key(repo)
    assert dirty != clean
    (repo / "notes.py").write_text("one\n")
    untracked = key(repo)
    assert untracked != dirty
    (repo / "notes.py").write_text("two\n")
    assert key(repo) != untracked
