"""`mlrun ui` against `mlflow ui` with MLflow's defaults: seconds until the page answers.

    python bench/ui.py [--rounds N]

Each round starts both on the same store (one experiment), alternating A B A B, times from the
start until `GET /` answers 200, and ends each server's process group. Target: mlrun's launch
<= 0.5x `mlflow ui`'s (the median of per-pair ratios). The machine's load average is printed
before and after: compare numbers taken under similar load only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import BenchError, Sample, pair_ratio


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def until_page(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> Sample:
    """Start a server on a free port, wait for its page, stop its group by pid."""
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in argv]
    started = time.perf_counter()
    server = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        while time.perf_counter() - started < timeout:
            if server.poll() is not None:
                raise BenchError(f"{' '.join(argv)} exited {server.returncode}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
                    if page.status == 200:
                        return Sample(time.perf_counter() - started, 0.0)
            except OSError:
                time.sleep(0.1)
        raise BenchError(f"{' '.join(argv)}: no page after {timeout:.0f} s")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mlrun-bench-ui-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    mlflow_env = {**env, "MLFLOW_ALLOW_FILE_STORE": "true"}
    try:
        created = subprocess.run(
            [sys.executable, "-m", "mlrun_cli", "experiments", "create", "-n", "bench"],
            cwd=work, env=env, capture_output=True, text=True,
        )  # fmt: skip
        if created.returncode != 0:
            raise BenchError(created.stderr.strip())
        store = (work / "mlruns").as_uri()
        mlrun = [sys.executable, "-m", "mlrun_cli", "ui", "--port", "{port}"]
        mlflow = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store,
                  "--port", "{port}"]  # fmt: skip
        print(f"load average before: {os.getloadavg()}")
        ours: list[Sample] = []
        theirs: list[Sample] = []
        for _ in range(args.rounds):
            theirs.append(until_page(mlflow, mlflow_env, work))
            ours.append(until_page(mlrun, env, work))
        print(f"load average after: {os.getloadavg()}")
        for name, samples in (("mlflow ui", theirs), ("mlrun ui", ours)):
            seconds = [s.seconds for s in samples]
            print(f"{name:10} median {statistics.median(seconds):6.2f} s  "
                  f"(min {min(seconds):.2f}, max {max(seconds):.2f})")  # fmt: skip
        print(f"mlrun ui / mlflow ui: {pair_ratio(ours, theirs):.2f}x (target <= 0.5x)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
