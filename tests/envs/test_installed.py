"""The package list of a local run's interpreter, read without starting it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlrun_cli.envs.installed import interpreter_paths, requirement_lines


def test_names_and_versions_come_from_dist_info_folders_first_found_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in ("scikit_learn-1.5.0.dist-info", "Click-8.1.0.dist-info", "notes.txt"):
        (first / folder).mkdir(parents=True)
    (second / "click-7.0.dist-info").mkdir(parents=True)
    assert requirement_lines([str(first), str(second), str(tmp_path / "missing")]) == [
        "Click==8.1.0",
        "scikit_learn==1.5.0",
    ]


def test_another_venvs_packages_are_read_from_its_site_folder(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site] = venv.glob("lib/python3*/site-packages")
    (site / "tiny_pkg-0.3.dist-info").mkdir()
    paths = interpreter_paths(str(venv / "bin" / "python"))
    assert paths is not None
    assert "tiny_pkg==0.3" in requirement_lines(paths)


def test_a_launcher_script_is_not_guessed_at(tmp_path: Path) -> None:
    shim = tmp_path / "python"
    shim.write_text('#!/bin/sh\nexec python3 "$@"\n')
    shim.chmod(0o755)
    assert interpreter_paths(str(shim)) is None
