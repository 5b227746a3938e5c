"""A run started while another is active becomes its child (`mlflow.parentRunId`), as in
MLflow: inside an entry point (MLFLOW_RUN_ID), inside `mlflow.start_run()` in the host, and
for `mlrun run` called from an entry point."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mlrun_cli import projects
from mlrun_cli.tracking.tags import PARENT_TAG
from tests.conftest import run_mlrun, write_files
from tests.projects.helpers import api_project, recorded


def test_inside_an_entry_point_the_active_run_is_the_parent(
    tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = api_project(tmp_path)
    outer = projects.run(str(project), env_manager="local", tracking_uri=store)
    monkeypatch.setenv("MLFLOW_RUN_ID", outer.run_id)
    inner = projects.run(str(project), env_manager="local", tracking_uri=store,
                         synchronous=False)  # fmt: skip
    assert inner.wait()
    assert recorded(store, inner.run_id).tags[PARENT_TAG] == outer.run_id
    assert PARENT_TAG not in recorded(store, outer.run_id).tags


def test_inside_mlflow_start_run_in_the_host(
    tmp_path: Path, store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    project = api_project(tmp_path)
    mlflow.set_tracking_uri(Path(store).as_uri())
    try:
        with mlflow.start_run() as parent:
            child = projects.run(str(project), env_manager="local", tracking_uri=store)
        alone = projects.run(str(project), env_manager="local", tracking_uri=store)
    finally:
        mlflow.set_tracking_uri(None)
    assert recorded(store, child.run_id).tags[PARENT_TAG] == parent.info.run_id
    assert PARENT_TAG not in recorded(store, alone.run_id).tags


def test_mlrun_run_from_an_entry_point_nests_under_it(tmp_path: Path, store: str) -> None:
    """Both through the CLI, as a user's shell would run them."""
    inner = api_project(tmp_path)
    outer = write_files(tmp_path / "outer", {"MLproject": f"""
entry_points:
  main:
    command: "{sys.executable} -m mlrun_cli run {inner} --no-env -q --json > inner.json"
"""})  # fmt: skip
    done = run_mlrun("run", str(outer), "--no-env", "--json", "--tracking-uri", store,
                     cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    parent = json.loads(done.stdout)["run"]["run_id"]
    child = json.loads((outer / "inner.json").read_text())["run"]["run_id"]
    assert recorded(store, child).tags[PARENT_TAG] == parent
    assert PARENT_TAG not in recorded(store, parent).tags


def test_the_hosts_mlflow_tracking_uri_is_where_the_run_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`mlflow.set_tracking_uri()` then `run()`: as with mlflow.projects.run, only the import
    changes."""
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    project = api_project(tmp_path)
    chosen = tmp_path / "team-store"
    mlflow.set_tracking_uri(chosen.as_uri())
    try:
        submitted = projects.run(str(project), env_manager="local")
    finally:
        mlflow.set_tracking_uri(None)
    assert recorded(str(chosen), submitted.run_id).info.status.name == "FINISHED"
    assert not (tmp_path / "mlruns").exists()
