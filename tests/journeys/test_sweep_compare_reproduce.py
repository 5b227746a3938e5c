"""A sweep, a comparison of two of its children, and the reproduction of one, as a user does it
in a git repository (./mlruns beside the code, not ignored) and in a plain directory: the
table, the differences, the metrics side by side, and the store read back by MLflow's client.

The entry point writes a report it does not declare as an output: the first child finds it
absent (an output), and every later run of the entry point treats it as one too. Children of a
-j 2 sweep all write that one report: they take turns, and each records the digest of its own.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import child_env, mlrun_command, run_mlrun, write_files
from tests.gitrepos import commit_all, git

pytestmark = [pytest.mark.journey, pytest.mark.slow]

PROJECT = {
    "MLproject": """name: sweepme
entry_points:
  main:
    parameters:
      k: {type: float, default: 1}
      data: {type: path, default: data.txt}
      report: {type: path, default: report.txt}
    command: "python score.py {data} {k} {report}"
""",
    "score.py": """import os, sys, time
from pathlib import Path
import mlrun_log as ml
text = open(sys.argv[1]).read()
score = len(text) * float(sys.argv[2])
ml.log_param("length", len(text))
ml.log_metric("score", score)
open(sys.argv[3], "w").write(f"score {score}\\n")
if os.environ.get("SWEEP_GATE"):  # stay until a sibling started, or the sweep said they take turns
    gate, me = Path(os.environ["SWEEP_GATE"]), f"started-{sys.argv[2]}"
    (gate / me).touch()
    deadline = time.monotonic() + 60
    while not any(p.name.startswith("started-") and p.name != me for p in gate.iterdir()):
        if "children share output" in (gate / "mlrun.err").read_text():
            break
        if time.monotonic() > deadline:
            raise SystemExit("no sibling started, and the sweep said nothing about turns")
        time.sleep(0.02)
print("scored", sys.argv[2])
""",
    "data.txt": "abcd\n",
}


def _path() -> str:
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def _mlrun(cwd: Path, *args: str, code: int = 0) -> str:
    done = run_mlrun(*args, cwd=cwd, timeout=120, PATH=_path(), MLRUN_CACHE_DIR=str(cwd / ".cache"))
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    return done.stdout if code == 0 else done.stderr


def _rows(table: str) -> list[list[str]]:
    return [line.split() for line in table.strip().splitlines()]


def _sweep(project: Path, *extra: str) -> dict[str, str]:
    """k -> child run id, read from the table the sweep prints."""
    out = _mlrun(project, "sweep", ".", "-P", "k=1,2,3", "--no-env", "--metric", "score", *extra)
    rows = _rows(out)
    header = next(r for r in rows if r and r[0] == "#")
    assert header == ["#", "run", "k", "status", "duration", "score"]
    children = [r for r in rows if r and r[0] in ("1", "2", "3")]
    assert [(r[2], r[3], r[-1]) for r in children] == [
        ("1", "FINISHED", "5"), ("2", "FINISHED", "10"), ("3", "FINISHED", "15")
    ]  # fmt: skip
    assert rows[-1][0] == "sweep" and "FINISHED" in rows[-1][2]
    return {r[2]: r[1] for r in children}


def _client(project: Path):
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=(project / "mlruns").as_uri())


def _full_id(project: Path, prefix: str) -> str:
    runs = _client(project).search_runs(["0"], max_results=1000)
    return next(r.info.run_id for r in runs if r.info.run_id.startswith(prefix))


def _compare_and_reproduce(project: Path, children: dict[str, str]) -> None:
    compared = _rows(_mlrun(project, "runs", "compare", children["1"], children["3"]))
    assert compared[0] == ["SECTION", "KEY", children["1"], children["3"]]
    assert ["params", "k", "1", "3"] in compared
    assert ["metrics", "score", "5.0", "15.0"] in compared
    assert not any(row[1] == "length" for row in compared), "equal params are not shown"

    original = _full_id(project, children["2"])
    out = _mlrun(project, "reproduce", children["2"])
    lines = out.splitlines()
    assert "scored 2" in lines
    assert lines[-3].split() == ["metric", "original", "reproduced", "match"]
    assert lines[-2].split() == ["score", "10.0", "10.0", "yes"]
    assert lines[-1].endswith(f"of run {original}: reproduced (rtol 1e-06)")

    client = _client(project)
    new_id = lines[-1].split()[1]
    new, old = client.get_run(new_id), client.get_run(original)
    assert new.info.status == "FINISHED"
    assert new.data.tags["mlrun.reproduces"] == original
    assert "mlrun.input.report.digest" not in new.data.tags, "an output became an input"
    assert new.data.metrics == old.data.metrics == {"score": 10.0}
    assert {k: new.data.params[k] for k in ("k", "length")} == {
        k: old.data.params[k] for k in ("k", "length")
    }
    # In git the data is read from the reproduction's fresh checkout: the same file by name and
    # by content, at another place.
    assert Path(new.data.params["data"]).name == Path(old.data.params["data"]).name
    digest = "mlrun.input.data.digest"
    assert new.data.tags[digest] == old.data.tags[digest]


def _children_take_turns_on_the_report(project: Path, gate: Path) -> None:
    """-j 2 over k=4,5,6, every child writing report.txt: each child's recorded output digest
    is of the report it wrote itself, and the sweep said once why they took turns."""
    gate.mkdir()
    err = gate / "mlrun.err"
    with err.open("w") as stderr:
        done = subprocess.run(
            mlrun_command("sweep", ".", "-P", "k=4,5,6", "--no-env", "-j", "2", "--json"),
            cwd=project,
            env=child_env(
                PATH=_path(), MLRUN_CACHE_DIR=str(project / ".cache"), SWEEP_GATE=str(gate)
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=120,
        )
    said = err.read_text()
    assert done.returncode == 0, said
    parent = json.loads(done.stdout)["sweep"]["parent_run_id"]
    client = _client(project)
    children = client.search_runs(["0"], f"tags.mlflow.parentRunId = '{parent}'")
    assert sorted(r.data.params["k"] for r in children) == ["4", "5", "6"]
    for run in children:
        own = f"score {5 * float(run.data.params['k'])}\n"
        digest = run.data.tags["mlrun.output.report.digest"]
        assert digest == hashlib.sha256(own.encode()).hexdigest(), run.data.params["k"]
    assert (
        said.count("mlrun: children share output report (report.txt); they run one at a time") == 1
    )


def test_sweep_compare_and_reproduce_in_a_git_repository(tmp_path: Path) -> None:
    project = write_files(tmp_path / "repo", PROJECT)
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "sweepme")
    children = _sweep(project, "--reuse")
    again = _mlrun(project, "sweep", ".", "-P", "k=1,2,3", "--no-env", "--reuse")
    # Every point wrote the one report.txt: only the last writer's is still there, so that point
    # alone is reused (had the report entered the run key, none would be).
    assert "2 executed" in again, "the report the first sweep wrote made the second differ"
    assert [row[3] for row in _rows(again) if "(reused)" in row] == ["3"]
    client = _client(project)
    for run in client.search_runs(["0"]):
        assert run.data.tags["mlflow.source.git.dirty"] == "false", run.data.tags
    (project / "score.py").write_text("raise SystemExit('edited since')\n")  # not committed
    _compare_and_reproduce(project, children)


def test_sweep_compare_and_reproduce_outside_git(tmp_path: Path) -> None:
    project = write_files(tmp_path / "plain", PROJECT)
    children = _sweep(project)
    _compare_and_reproduce(project, children)

    (project / "score.py").write_text(PROJECT["score.py"].replace("* float", "+ float"))
    refused = _mlrun(project, "reproduce", children["1"], code=5)
    assert "which is not in git, and its files changed since: changed score.py;" in refused
    (project / "score.py").write_text(PROJECT["score.py"])
    assert "reproduced (rtol 1e-06)" in _mlrun(project, "reproduce", children["1"])
    _children_take_turns_on_the_report(project, tmp_path / "gate")
