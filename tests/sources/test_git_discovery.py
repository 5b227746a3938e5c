"""A project outside any git repository is known to be one without starting git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlrun_cli.sources.git import git_state, inside_work_tree


def test_a_folder_with_no_git_above_needs_no_git_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GIT_DIR", raising=False)
    monkeypatch.setenv("PATH", "")  # git could not even be started
    assert not inside_work_tree(tmp_path)
    assert git_state(tmp_path) is None


def test_a_subfolder_of_a_repository_is_inside_it(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "sub").mkdir()
    assert inside_work_tree(tmp_path / "sub")


def test_git_dir_in_the_environment_always_asks_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere.git"))
    assert inside_work_tree(tmp_path)


def test_excluded_paths_are_neither_untracked_nor_in_the_diff(tmp_path: Path) -> None:
    from tests.gitrepos import make_repo

    repo = make_repo(tmp_path / "repo", {"train.py": "print(1)\n", "model.bin": "old\n"})
    (repo / "mlruns" / "0").mkdir(parents=True)
    (repo / "mlruns" / "0" / "meta.yaml").write_text("x\n")
    (repo / "model.bin").write_text("new\n")  # a tracked output, rewritten by the run
    (repo / "notes.txt").write_text("real change\n")
    state = git_state(repo, excluded=(repo / "mlruns", repo / "model.bin"))
    assert state is not None
    assert state.untracked == ("notes.txt",)
    assert state.diff == ""
    clean = git_state(repo, excluded=(repo / "mlruns", repo / "model.bin", repo / "notes.txt"))
    assert clean is not None and not clean.dirty
