"""What the benchmark needs, made on its own: an MLflow venv, a project copy, stores."""

from __future__ import annotations

import os
import platform
import random
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"

STORE_FORMAT = 1  # bump when the layout written by run_store changes
EXPERIMENT_META = """artifact_location: {root}/0
creation_time: 1700000000000
effective_trace_archival_retention: null
experiment_id: '0'
last_update_time: 1700000000000
lifecycle_stage: active
name: Default
trace_location: null
workspace: default
"""
RUN_META = """artifact_uri: {root}/0/{run_id}/artifacts
end_time: {end}
entry_point_name: ''
experiment_id: '0'
lifecycle_stage: active
run_id: {run_id}
run_name: run-{i}
source_name: ''
source_type: 4
source_version: ''
start_time: {start}
status: 3
tags: []
user_id: bench
"""


def mlflow_venv(log) -> Path:
    """A venv with the newest mlflow that installs here (pip chooses the version)."""
    venv = CACHE / "mlflow-venv"
    python = venv / "bin" / "python"
    if (venv / "bin" / "mlflow").exists():
        return venv
    log("creating a venv with mlflow (first run only; a minute or two)")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "mlflow", "virtualenv"], check=True)
    return venv


def mlrun_venv(log) -> Path:
    """This checkout installed as users install it (a wheel, bytecode compiled by pip)."""
    venv = CACHE / "mlrun-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    log("installing this checkout of mlrun into the bench venv")
    subprocess.run([str(python), "-m", "pip", "install", "-q", str(HERE.parent)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--force-reinstall",
            "--no-deps",
            str(HERE.parent),
        ],
        check=True,
    )
    return venv


def runtime_dir(venv: Path) -> str:
    """The installed mlrun_log's folder, as the runner puts it on PYTHONPATH."""
    code = "import mlrun_cli.backends.base as r; print(r.RUNTIME_DIR)"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def mlflow_version(venv: Path) -> str:

    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def project_copy(work: Path) -> Path:
    """The bench project, pinned to this interpreter's exact version."""
    target = work / "project"
    shutil.copytree(HERE / "project", target)
    (target / "python_env.yaml").write_text(
        f'python: "{platform.python_version()}"\ndependencies:\n  - mlflow-skinny\n'
    )
    return target


def run_store(count: int, log) -> Path:
    """`count` finished runs in MLflow's file layout, metric m above 0.5 for exactly 1,000.

    Written directly (as mlrun_log would write them, without a process per run) and kept in
    bench/.cache between bench runs: a 50,000-run store takes a minute to write here.
    """
    root = CACHE / "stores" / f"runs-{count}-v{STORE_FORMAT}" / "mlruns"
    if root.is_dir():
        return root
    log(f"writing a store of {count:,} runs (cached for later bench runs)")
    building = root.parent.with_name(root.parent.name + f".building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    _write_store(building / "mlruns", root.as_uri(), count)
    building.rename(root.parent)
    return root


def _write_store(target: Path, final_uri: str, count: int) -> None:
    (target / ".trash").mkdir(parents=True)
    (target / "0").mkdir()
    (target / "0" / "meta.yaml").write_text(EXPERIMENT_META.format(root=final_uri))
    every = max(1, count // 1000)
    for i in range(count):
        run_id = uuid.UUID(int=random.Random(i).getrandbits(128), version=4).hex
        run = target / "0" / run_id
        start = 1700000000000 + i * 1000
        for sub in ("params", "metrics", "tags", "artifacts"):
            (run / sub).mkdir(parents=True)
        (run / "meta.yaml").write_text(
            RUN_META.format(root=final_uri, run_id=run_id, i=i, start=start, end=start + 500)
        )
        (run / "params" / "i").write_text(str(i))
        m = 1.0 if i % every == 0 and i // every < 1000 else 0.25
        (run / "metrics" / "m").write_text(f"{start + 400} {m} 0\n")
        (run / "tags" / "mlflow.runName").write_text(f"run-{i}")
        (run / "tags" / "mlflow.user").write_text("bench")


def requirements(work: Path) -> Path:
    path = work / "requirements.txt"
    path.write_text("mlflow-skinny\n")
    return path
