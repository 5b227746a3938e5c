"""What the benchmark needs, made on its own: an MLflow venv, a project copy, stores."""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
RUNTIME = HERE.parent / "mlrun_cli" / "runtime"

BUILD_SEARCH_STORE = """
import sys
sys.path.insert(0, sys.argv[1])
import mlrun_log as ml
for i in range(2000):
    ml.start_run(run_name=f"run-{i}", experiment_id="0")
    ml.log_param("i", i)
    ml.log_metric("m", (i + 0.5) / 2000)
    ml.end_run()
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


def search_store(work: Path) -> Path:
    """2,000 runs whose metric m is above 0.5 for exactly 1,000 of them."""
    root = work / "search-store" / "mlruns"
    if not root.exists():
        subprocess.run(
            [sys.executable, "-c", BUILD_SEARCH_STORE, str(RUNTIME)],
            check=True,
            env={"MLFLOW_TRACKING_URI": root.as_uri(), "PATH": ""},
        )
    return root


def requirements(work: Path) -> Path:
    path = work / "requirements.txt"
    path.write_text("mlflow-skinny\n")
    return path
