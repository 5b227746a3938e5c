"""`mlrun sync` through the CLI, without a server: the outbox is empty, or its server is gone."""

from __future__ import annotations

import json
from pathlib import Path

from mlrun_cli.core.settings import Settings
from mlrun_cli.tracking import outbox
from mlrun_cli.tracking.entities import Experiment, RunInfo, RunStatus
from mlrun_cli.tracking.outbox import PendingCall
from mlrun_cli.tracking.rest_store import open_rest_store
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


def test_the_entry_points_unsent_points_wait_in_the_outbox_whole(
    cli, monkeypatch, tmp_path
) -> None:
    """What mlrun_log handed over at exit (MLRUN_LOG_UNSENT) joins the run's outbox entry when
    the server is gone; a line cut short is no whole batch and is left out."""
    monkeypatch.setenv("MLRUN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://127.0.0.1:{free_port()}"
    store = open_rest_store(Settings.resolve(tracking_uri=uri))
    run_id = "b" * 32
    info = RunInfo(
        run_id, "0", "r", RunStatus.FINISHED, 1, 2, "active", "mlflow-artifacts:/0/b", "u"
    )
    unsent = Path(
        store.child_environment(info, Experiment("0", "Default", "", "active", None, None))[
            "MLRUN_LOG_UNSENT"
        ]
    )
    assert unsent.parent in store.host_paths(info)
    batches = [
        {"run_id": run_id, "metrics": [{"key": "loss", "value": "NaN", "timestamp": 1, "step": s}]}
        for s in range(3)
    ]
    lines = [
        json.dumps({"method": "POST", "endpoint": "runs/log-batch", "payload": b}) for b in batches
    ]
    unsent.write_text("\n".join(lines) + "\n" + lines[0][:20])
    store.publish(info)
    assert not unsent.parent.exists()
    kept = json.loads((tmp_path / "cache" / "outbox" / run_id / "entry.json").read_text())
    assert [call["payload"] for call in kept["calls"]] == batches
    result = cli("sync")
    assert result.exit_code == 4
    assert json.loads((tmp_path / "cache" / "outbox" / run_id / "entry.json").read_text()) == kept
