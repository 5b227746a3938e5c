"""A real `mlflow server` for the tracking-server workloads, shared by both tools.

Started on first use on a free loopback port (SQLite backend, --serve-artifacts), in its own
process group, and stopped by its pid when the bench ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from measure import BenchError


class TrackingServer:
    def __init__(self, mlflow: str, work: Path) -> None:
        self.mlflow = mlflow
        self.work = work / "server"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def uri(self) -> str:
        if self.process is None:
            self._start()
        return f"http://127.0.0.1:{self.port}"

    def _start(self, timeout: float = 300.0) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.work.mkdir(parents=True, exist_ok=True)
        argv = [
            self.mlflow, "server", "--host", "127.0.0.1", "--port", str(self.port),
            "--backend-store-uri", f"sqlite:///{self.work / 'mlflow.db'}",
            "--serve-artifacts", "--artifacts-destination", str(self.work / "artifacts"),
            "--workers", "1",
        ]  # fmt: skip
        log = open(self.work / "server.log", "ab")  # noqa: SIM115  # the server keeps it open
        self.process = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"mlflow server exited; see {self.work / 'server.log'}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise BenchError("mlflow server did not answer /health in time")

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None
