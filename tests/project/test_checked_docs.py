"""An unchanged MLproject is parsed and schema-checked once; later loads read a JSON copy."""

from __future__ import annotations

import os
from pathlib import Path

from mlrun_cli.core.caches import validation_stamp_dir
from mlrun_cli.project.checked_docs import load_checked
from mlrun_cli.project.spec import load_project
from tests.conftest import write_files

MLPROJECT = """name: demo
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
    command: "python train.py --alpha {alpha}"
"""


def entries() -> list[Path]:
    return sorted(validation_stamp_dir(os.environ).glob("*.json"))


def test_a_second_load_reads_the_cached_copy_with_its_lines(tmp_path: Path) -> None:
    first, problems = load_checked(MLPROJECT, "mlproject", "MLproject")
    assert problems == [] and len(entries()) == 1
    second, problems = load_checked(MLPROJECT, "mlproject", "MLproject")
    assert problems == []
    assert second == first
    assert second.line_of(("entry_points", "main", "command")) == 6


def test_the_cached_copy_is_what_a_run_uses(tmp_path: Path) -> None:
    project = write_files(tmp_path, {"MLproject": MLPROJECT})
    parsed = load_project(project)
    [entry] = entries()
    assert load_project(project) == parsed
    entry.write_text("not json")  # a damaged copy is parsed again, not trusted
    assert load_project(project) == parsed


def test_an_invalid_document_is_never_cached() -> None:
    _, problems = load_checked("name: [1]\nentry_points: {}\n", "mlproject", "MLproject")
    assert problems and entries() == []
    _, problems = load_checked("name: [1]\nentry_points: {}\n", "mlproject", "MLproject")
    assert problems


def test_what_json_would_change_is_not_cached() -> None:
    text = "name: demo\nentry_points:\n  main:\n    command: run\n    parameters:\n      1: float\n"
    load_checked(text, "mlproject", "MLproject")  # an int key: JSON would make it "1"
    assert entries() == []


def test_a_changed_file_is_parsed_again(tmp_path: Path) -> None:
    project = write_files(tmp_path, {"MLproject": MLPROJECT})
    load_project(project)
    (project / "MLproject").write_text(MLPROJECT.replace("0.5", "0.7"))
    assert load_project(project).entry_points["main"].parameters[0].default == "0.7"
    assert len(entries()) == 2
