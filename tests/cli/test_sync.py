"""`mlrun sync` through the CLI, without a server: the outbox is empty, or its server is gone."""

from __future__ import annotations

import json

from mlrun_cli.tracking import outbox
from mlrun_cli.tracking.outbox import PendingCall
from tests.servers import free_port


def test_an_empty_outbox_sends_nothing(cli, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MLRUN_CACHE_DIR", str(tmp_path / "cache"))
    result = cli("sync")
    assert (result.exit_code, result.stdout) == (0, "nothing to send: the outbox is empty\n")


def test_an_entry_whose_server_is_still_gone_stays(cli, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MLRUN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://127.0.0.1:{free_port()}"
    call = PendingCall("POST", "runs/update", {"run_id": "a" * 32, "status": "FINISHED"})
    entry = outbox.keep(
        tmp_path / "cache" / "outbox", uri, "a" * 32, "mlflow-artifacts:/0/a", [call], None
    )
    result = cli("sync")
    assert result.exit_code == 4
    assert result.stderr.startswith(
        f"mlrun: error: 1 run(s) still waiting in the outbox (run {'a' * 32}: tracking server {uri} is unreachable ("
    )
    kept = json.loads((entry.directory / "entry.json").read_text())
    assert kept["calls"] == [call.as_json()]
    assert "password" not in json.dumps(kept).lower()
