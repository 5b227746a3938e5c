"""Real tracking servers and databases for tests: `mlflow server` and PostgreSQL.

Each server is its own process group, started on a free loopback port and stopped by its pid.
With CI=true a missing engine fails the test instead of skipping it.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import REPO

# What the basic-auth app demands: any admin password but its old default.
ADMIN_PASSWORD = "a-test-admin-" + secrets.token_hex(4)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def missing_engine(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: engines must be present)")
    pytest.skip(reason)


@dataclass
class MlflowServer:
    """`mlflow server` on 127.0.0.1 with --serve-artifacts, restartable on the same port/data."""

    backend_uri: str
    data_dir: Path
    port: int = field(default_factory=free_port)
    app_name: str | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 240.0) -> MlflowServer:
        argv = [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--backend-store-uri", self.backend_uri,
            "--serve-artifacts", "--artifacts-destination", str(self.data_dir / "artifacts"),
            "--workers", "1",
        ]  # fmt: skip
        self.data_dir.mkdir(parents=True, exist_ok=True)  # the auth config is written there
        # Without MLflow's job runner (GenAI jobs only), a server answers 2-4 s sooner.
        env = {
            **os.environ,
            "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        if self.app_name:
            argv += ["--app-name", self.app_name]
            env["MLFLOW_AUTH_CONFIG_PATH"] = str(self._auth_config())
            env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = secrets.token_hex(16)
        log = open(self.data_dir / "server.log", "ab")  # noqa: SIM115  # the server keeps it
        self.process = subprocess.Popen(
            argv, stdout=log, stderr=log, env=env, cwd=self.data_dir, start_new_session=True
        )
        self._wait_healthy(timeout)
        return self

    def _auth_config(self) -> Path:
        config = self.data_dir / "basic_auth.ini"
        config.write_text(
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = sqlite:///{self.data_dir / 'auth.db'}\n"
            "admin_username = admin\n"
            f"admin_password = {ADMIN_PASSWORD}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        return config

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.data_dir / "server.log").read_text(errors="replace")[-3000:]
                raise AssertionError(f"mlflow server exited early:\n{log}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise AssertionError(f"mlflow server on {self.uri} did not answer /health in time")

    def stop(self) -> None:
        """SIGTERM to the server's own process group, SIGKILL if it lingers."""
        if self.process is None:
            return
        pgid = self.process.pid
        for signum, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, signum)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        self.process = None


def start_postgres() -> tuple[str, str]:
    """(postgresql:// URI, cluster dir) of a fresh cluster from scripts/postgres.sh."""
    if os.geteuid() != 0:
        missing_engine("scripts/postgres.sh needs root to install and run PostgreSQL")
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "postgres.sh"), "start"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        missing_engine(f"PostgreSQL did not start: {done.stderr[-500:]}")
    values = dict(
        line.removeprefix("export ").split("=", 1)
        for line in done.stdout.splitlines()
        if line.startswith("export ")
    )
    return values["MLRUN_TEST_POSTGRES_URI"], values["MLRUN_POSTGRES_DIR"]


def stop_postgres(directory: str) -> None:
    subprocess.run(
        ["bash", str(REPO / "scripts" / "postgres.sh"), "stop", directory],
        capture_output=True,
        timeout=60,
        check=True,
    )


def create_database(admin_uri: str, name: str) -> str:
    """A new empty database on the cluster, so each use starts from MLflow's migrations."""
    import psycopg2

    connection = psycopg2.connect(admin_uri)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()
    return admin_uri.rsplit("/", 1)[0] + f"/{name}"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes

    def payload(self) -> dict[str, object]:
        try:
            document = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return document if isinstance(document, dict) else {}


@contextmanager
def recording_proxy(target: str) -> Iterator[tuple[str, list[Request]]]:
    """(URI, requests): a pass-through HTTP proxy in front of a real server that keeps every
    request it forwards, so a test sees what a client asked the server for."""
    seen: list[Request] = []
    host, port = target.removeprefix("http://").split(":")

    class Forward(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(Request(self.command, self.path, body))
            upstream = http.client.HTTPConnection(host, int(port), timeout=300)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            upstream.request(self.command, self.path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            upstream.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the recorded requests are the log."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
