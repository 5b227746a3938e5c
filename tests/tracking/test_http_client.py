"""The REST client against a server that cuts its answers mid-body, as a busy one may."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from mlrun_cli.tracking.http_client import ClientSettings, HttpClient, ServerUnreachableError

ANSWER = json.dumps({"runs": [], "next_page_token": ""}).encode()


class CuttingServer(http.server.ThreadingHTTPServer):
    """Answers every request whole, except the first `cuts`: their headers promise a body that
    never comes (the connection closes), which the client reads as IncompleteRead."""

    def __init__(self, cuts: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.cuts = cuts
        self.requests: list[str] = []


class _Handler(http.server.BaseHTTPRequestHandler):
    server: CuttingServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.requests.append(f"{self.command} {self.path.split('?')[0]}")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.end_headers()
        if self.server.cuts > 0:
            self.server.cuts -= 1
            self.close_connection = True
            return
        self.wfile.write(ANSWER)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def cutting() -> Iterator[CuttingServer]:
    server = CuttingServer(cuts=2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def client(server: CuttingServer) -> HttpClient:
    host, port = server.server_address[:2]
    return HttpClient(f"http://{host!s}:{port}", ClientSettings(backoff_factor=0.01))


@pytest.mark.parametrize(("method", "endpoint"), [("POST", "runs/search"), ("GET", "runs/get")])
def test_a_read_whose_answer_was_cut_is_asked_again_and_said(
    cutting: CuttingServer, method: str, endpoint: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert client(cutting).call(method, endpoint, {"run_id": "x"}) == json.loads(ANSWER)
    assert cutting.requests == [f"{method} /api/2.0/mlflow/{endpoint}"] * 3
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2 and retries[0].endswith("retrying (1 of 7)")


def test_a_write_whose_answer_was_cut_is_never_sent_twice(cutting: CuttingServer) -> None:
    with pytest.raises(ServerUnreachableError) as raised:
        client(cutting).call("POST", "runs/create", {"experiment_id": "0"})
    assert "IncompleteRead" in raised.value.message
    assert cutting.requests == ["POST /api/2.0/mlflow/runs/create"]
