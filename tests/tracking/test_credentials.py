"""No credential in anything mlrun writes, prints or uploads, against a real `mlrun server`.

A canary secret comes from each place a credential can: the tracking URI's user:password@ (the
basic-auth server's real admin password), MLFLOW_TRACKING_PASSWORD, MLFLOW_TRACKING_TOKEN and a
secret -P value. The entry point prints its environment and the URI on stdout and stderr, and
logs through mlrun_log (which must authenticate with the URI's userinfo). Then every file under
the store, the caches, the outbox and the server's artifact folder is searched, with the output.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import child_env, mlrun_command, run_mlrun, write_files
from tests.servers import ADMIN_PASSWORD, MlflowServer
from tests.tracking.test_servers import isolated, mlflow_reads, wait_for  # noqa: F401

pytestmark = pytest.mark.slow

PRINTING_PROJECT = {
    "MLproject": """
entry_points:
  main:
    parameters:
      api_token: string
    command: "python show.py {api_token}"
""",
    "show.py": """
import os, pathlib, sys
import mlrun_log as ml
ml.log_metric("seen", 1.0)
ml.log_param("given", sys.argv[1])
ml.end_run()
for name, value in sorted(os.environ.items()):
    print(f"{name}={value}")
print("uri", os.environ["MLFLOW_TRACKING_URI"], file=sys.stderr)
print("argv", sys.argv, file=sys.stderr)
pathlib.Path("started").touch()
if os.environ.get("WAIT_FOR_GO"):
    import time
    while not pathlib.Path("go").exists():
        time.sleep(0.05)
""",
}
PASSWORD_CANARY = "canary-password-4f1c"
TOKEN_CANARY = "canary-token-9a2e"
PARAM_CANARY = "canary-param-77d0"
CANARIES = (ADMIN_PASSWORD, PASSWORD_CANARY, TOKEN_CANARY, PARAM_CANARY)


def canaries_in_files(*roots: Path) -> list[str]:
    """`path: canary` for every file below `roots` that holds one."""
    found = []
    for root in roots:
        for path in (p for p in root.rglob("*") if p.is_file()):
            data = path.read_bytes()
            found += [f"{path}: {c}" for c in CANARIES if c.encode() in data]
    return found


def canaries_in(text: str) -> list[str]:
    return [c for c in CANARIES if c in text]


def credential_env(tmp_path: Path, server: MlflowServer) -> dict[str, str]:
    """The URI with the admin password, and canaries in MLflow's other two variables."""
    return {
        "MLFLOW_TRACKING_URI": server.uri.replace("://", f"://admin:{ADMIN_PASSWORD}@"),
        "MLFLOW_TRACKING_PASSWORD": PASSWORD_CANARY,  # without a username: MLflow ignores it
        "MLFLOW_TRACKING_TOKEN": TOKEN_CANARY,  # the URI's userinfo wins, as in MLflow
    }


def test_no_credential_is_written_printed_or_uploaded(tmp_path, isolated) -> None:  # noqa: F811
    server = MlflowServer(
        f"sqlite:///{tmp_path / 'server' / 'mlflow.db'}", tmp_path / "server", app_name="basic-auth"
    )
    server.start()
    project = write_files(tmp_path / "project", PRINTING_PROJECT)
    env = {**isolated, **credential_env(tmp_path, server)}
    argv = ("run", str(project), "--json", "-P", f"api_token={PARAM_CANARY}")
    try:
        online = run_mlrun(*argv, cwd=tmp_path, timeout=300, **env)
        assert online.returncode == 0, online.stderr
        online_id = json.loads(online.stdout)["run"]["run_id"]
        reader = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": ADMIN_PASSWORD}
        seen = mlflow_reads(server.uri, online_id, **reader)
        assert seen["metrics"] == {"seen": 1.0}  # mlrun_log authenticated with the userinfo
        assert seen["logs"] == ["logs/stderr.log", "logs/stdout.log"]

        (project / "started").unlink()
        child = subprocess.Popen(
            mlrun_command(*argv), cwd=tmp_path, env=child_env(**env, WAIT_FOR_GO="1"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        wait_for(project / "started")
        server.stop()
        (project / "go").touch()
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        offline_id = json.loads(out)["run"]["run_id"]
        entry = tmp_path / "cache" / "outbox" / offline_id / "entry.json"
        assert json.loads(entry.read_text())["tracking_uri"] == server.uri
        outbox_files = canaries_in_files(tmp_path / "cache", project)

        server.start()
        synced = run_mlrun("sync", cwd=tmp_path, **env)
        assert (synced.returncode, synced.stdout) == (
            0,
            f"run {offline_id}: sent to {server.uri}\n",
        )
        uploaded = server.data_dir / "artifacts"
        stdout_logs = [p.read_text() for p in uploaded.rglob("stdout.log")]
        assert len(stdout_logs) == 2
        assert all("MLFLOW_TRACKING_TOKEN=***" in log for log in stdout_logs)
    finally:
        server.stop()
    printed = online.stdout + online.stderr + out + err + synced.stdout + synced.stderr
    assert canaries_in(printed) == []
    assert outbox_files == []
    assert canaries_in_files(tmp_path / "cache", project, uploaded) == []
