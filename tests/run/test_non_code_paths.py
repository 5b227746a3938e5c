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
    project = tmp_path / "proj"
    if in_git:
        make_repo(project, files)
    else:
        project.mkdir()
        for name, text in files.items():
            (project / name).write_text(text)
    clean = ("--require-clean",) if in_git else ()
    _run(project, *clean)  # ./mlruns, the cache and the output all land inside the project
    _run(project, *clean)
    assert (tmp_path / "runs.log").read_text().count("ran") == 1
