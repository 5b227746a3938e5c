"""The run key: equal exactly when code, entry point, params, env and input data are equal;
and an identical run is reused only while the outputs it recorded are still as it wrote them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from mlrun_cli.core.settings import Settings
from mlrun_cli.run.pipeline import plan_run
from mlrun_cli.run.plan import RunRequest
from mlrun_cli.run.run_key import compute_run_key
from mlrun_cli.tracking.file_store import FileStore
from tests.conftest import EXAMPLE, run_mlrun
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


# -- reuse checks the outputs the earlier run recorded ----------------------------------------

WRITER = {
    "MLproject": """
name: writer
entry_points:
  main:
    parameters:
      k: {type: string, default: a}
      out: {type: path, default: out/result.txt, role: output}
      shape: {type: string, default: file}
    command: "python write.py {k} {out} {shape}"
""",
    "write.py": """
import pathlib, sys
k, out, shape = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
if shape == "file":
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"made from {k}\\n")
else:
    out.mkdir(parents=True, exist_ok=True)
    (out / "part.txt").write_text(f"made from {k}\\n")
print(f"wrote {k}")
""",
    "out/.keep": "",  # an output's folder must exist, as models/ does in example_project
}


def _stored_runs(tmp_path: Path) -> dict[str, dict[str, str]]:
    return {r.info.run_id: r.tags for r in FileStore(tmp_path / "mlruns").stored_runs(["0"])}


def _changed(output: Path, shape: str) -> None:
    """Another run's result where the earlier run's output was (what train alpha=0.5 did)."""
    target = output if shape == "file" else output / "part.txt"
    target.write_text("made from b\n")


def _deleted(output: Path, shape: str) -> None:
    if shape == "file":
        output.unlink()
    else:
        shutil.rmtree(output)


def _rewritten_alike(output: Path, shape: str) -> None:
    """Same bytes written again: new times and inode, same content, so still reusable."""
    target = output if shape == "file" else output / "part.txt"
    content = target.read_bytes()
    target.unlink()
    target.write_bytes(content)


def _extra_file(output: Path, shape: str) -> None:
    if shape == "file":
        output.write_text(output.read_text() + "appended\n")
    else:
        (output / "stray.txt").write_text("not written by the run\n")


@pytest.mark.parametrize("shape", ["file", "directory"])
@pytest.mark.parametrize("mode", ["--reuse", "--reuse=record"])
@pytest.mark.parametrize(
    ("action", "reused", "why"),
    [
        (_changed, False, "changed"),
        (_deleted, False, "is missing"),
        (_extra_file, False, "changed"),
        (_rewritten_alike, True, None),
        (lambda output, shape: None, True, None),
    ],
    ids=["changed", "deleted", "grown", "rewritten-alike", "untouched"],
)
def test_reuse_only_while_the_recorded_output_is_as_the_run_wrote_it(
    cli, make_project, tmp_path, action, reused, why, mode, shape
) -> None:
    make_project(WRITER)
    args = ("run", "project", "--no-env", "-P", f"shape={shape}")
    first = cli(*args, "--json")
    assert first.exit_code == 0, first.stderr
    earlier = json.loads(first.stdout)["run"]["run_id"]
    output = tmp_path / "project" / "out" / "result.txt"
    action(output, shape)

    again = cli(*args, mode)
    assert again.exit_code == 0, again.stderr
    runs = _stored_runs(tmp_path)
    if reused:
        assert f"identical to FINISHED run {earlier}; not run again" in again.stderr
        assert "wrote a" not in again.stdout
        assert len(runs) == (2 if mode == "--reuse=record" else 1)
        shown_id = again.stdout.strip()  # the run of this command, as a script captures it
        if mode == "--reuse=record":
            assert runs[shown_id]["mlrun.reused_from"] == earlier
        else:
            assert shown_id == earlier
        return
    shown = os.path.join("project", "out", "result.txt")
    assert f"mlrun: output out ({shown}) {why} since run {earlier}; running again" in again.stderr
    assert "not run again" not in again.stderr
    assert "wrote a" in again.stdout
    assert len(runs) == 2 and all("mlrun.reused_from" not in tags for tags in runs.values())
    fresh = cli(*args, "--reuse")  # the new run wrote the output again: it is reusable now
    assert "not run again" in fresh.stderr and "running again" not in fresh.stderr


def test_sweep_reuse_runs_again_exactly_the_points_whose_output_changed(
    cli, make_project, tmp_path
) -> None:
    make_project(WRITER)
    args = ("sweep", "project", "--no-env", "-P", "k=a,b,c", "-P",
            "out=project/out/a.txt,project/out/b.txt,project/out/c.txt", "--zip", "--reuse", "--json")  # fmt: skip
    first = cli(*args)
    assert first.exit_code == 0, first.stderr
    earlier = {
        row["params"]["k"]: row["run_id"] for row in json.loads(first.stdout)["sweep"]["children"]
    }
    (tmp_path / "project" / "out" / "a.txt").unlink()
    (tmp_path / "project" / "out" / "c.txt").write_text("made from b\n")

    again = cli(*args)
    assert again.exit_code == 0, again.stderr
    sweep = json.loads(again.stdout)["sweep"]
    assert sweep["executed"] == 2
    reused = {row["params"]["k"]: row["reused_from"] for row in sweep["children"]}
    assert reused == {"a": None, "b": earlier["b"], "c": None}
    assert f"since run {earlier['a']}; running again" in again.stderr
    assert f"since run {earlier['c']}; running again" in again.stderr
    assert (tmp_path / "project" / "out" / "c.txt").read_text() == "made from c\n"
    assert json.loads(cli(*args).stdout)["sweep"]["executed"] == 0


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_the_users_overwritten_model_is_trained_again_not_reused(tmp_path: Path) -> None:
    """train alpha=0.01, train alpha=0.5 (same models/model.joblib), then --reuse alpha=0.01:
    the model on disk is the 0.5 one, so the 0.01 run must not stand in for a new one."""
    shutil.copytree(EXAMPLE, tmp_path / "example_project",
                    ignore=shutil.ignore_patterns("*.joblib", "mlruns"))  # fmt: skip
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

    def train(alpha: str, *extra: str) -> tuple[dict[str, object], str]:
        done = run_mlrun("run", "example_project", "-e", "train", "-P", f"alpha={alpha}",
                         "--no-env", "--json", *extra, cwd=tmp_path, timeout=300, PATH=path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        return json.loads(done.stdout)["run"], done.stderr

    first, _ = train("0.01")
    second, _ = train("0.5")
    model = tmp_path / "example_project" / "models" / "model.joblib"
    runs = _stored_runs(tmp_path)
    digest = "mlrun.output.output_file.digest"
    assert _sha256(model) == runs[str(second["run_id"])][digest]

    third, stderr = train("0.01", "--reuse")
    assert third["run_id"] not in (first["run_id"], second["run_id"]), "the stale run was reused"
    shown = os.path.join("example_project", "models", "model.joblib")
    assert (
        f"mlrun: output output_file ({shown}) changed since run {first['run_id']}; running again"
        in stderr
    )
    runs = _stored_runs(tmp_path)
    assert (
        _sha256(model) == runs[str(first["run_id"])][digest] == runs[str(third["run_id"])][digest]
    )
    fourth, stderr = train("0.01", "--reuse")
    assert fourth["reused_from"] == third["run_id"], stderr
