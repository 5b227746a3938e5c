"""mlrun_log: log into the run that `mlrun run` started, with the standard library only.

    import mlrun_log as ml
    ml.log_param("alpha", 0.5)
    ml.log_metric("loss", 0.12, step=3)

`mlrun run` puts the folder of this one file on PYTHONPATH, so any environment it builds can
import it without installing anything (and without seeing any other package of mlrun's).
It attaches through MLFLOW_RUN_ID and MLFLOW_TRACKING_URI and writes MLflow's file-store
layout, so MLflow's client reads what it logs; with an http(s):// tracking URI it speaks
MLflow's REST API instead, in batches (see the end of this file). Outside a run it starts one,
as MLflow does, and ends it when the program exits. It imports in milliseconds, where mlflow
takes seconds.

Any number of threads and processes may log into the same run at once: a metric point is one
`write` to a file opened for appending (the kernel keeps appends whole and in one piece), and
params and tags replace their file through a temporary file whose name is unique per call.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import getpass
import json
import os
import re
import secrets
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlencode, urlparse, urlsplit, urlunsplit

if TYPE_CHECKING:
    import ssl

__all__ = [
    "active_run_id",
    "end_run",
    "log_artifact",
    "log_artifacts",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "set_tag",
    "set_tags",
    "start_run",
]

_KEY = re.compile(r"[\w.\- :/]+")
_STATUS = {"RUNNING": 1, "FINISHED": 3, "FAILED": 4, "KILLED": 5}


class _Run:
    def __init__(self, directory: Path, owned: bool) -> None:
        self.directory = directory
        self.run_id = directory.name
        self.owned = owned  # started here, so ended here
        self.metric_files: dict[str, int] = {}  # key -> descriptor opened for appending

    def close(self) -> None:
        for descriptor in self.metric_files.values():
            os.close(descriptor)
        self.metric_files.clear()


_active: _Run | None = None
# Guards the active run and its open metric files: threads of one program share them.
_lock = threading.RLock()


def _store_root() -> Path:
    uri = os.environ.get("MLFLOW_TRACKING_URI") or "mlruns"
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if len(parsed.scheme) > 1:
        raise RuntimeError(f"mlrun_log writes only to file stores, not {uri}")
    return Path(uri).resolve()


def _run() -> _Run:
    """The active run: the one mlrun started for this process, or a new one."""
    global _active
    with _lock:
        if _active is None:
            run_id = os.environ.get("MLFLOW_RUN_ID")
            if run_id:
                _active = _Run(_find_run(_store_root(), run_id), owned=False)
            else:
                start_run()
        assert _active is not None
        return _active


def _find_run(root: Path, run_id: str) -> Path:
    experiment = os.environ.get("MLFLOW_EXPERIMENT_ID")
    if experiment and (root / experiment / run_id / "meta.yaml").is_file():
        return root / experiment / run_id
    for meta in root.glob(f"*/{run_id}/meta.yaml"):
        return meta.parent
    raise RuntimeError(f"mlrun_log: no run {run_id} in {root}")


def active_run_id() -> str:
    if (remote := _rest()) is not None:
        return remote.run_id
    return _run().run_id


def _check_key(key: str) -> str:
    if not _KEY.fullmatch(key) or key.startswith("/") or ".." in key.split("/"):
        raise ValueError(f"invalid key {key!r}: use letters, digits and _ - . : / without '..'")
    return key


def _write(path: Path, text: str) -> None:
    """Replace `path` whole; the temporary name is unique per call, so concurrent writers of
    one key never remove each other's file (the last rename wins)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _temporary(path: Path) -> Path:
    """A dot-file beside `path` (readers skip those), unique per call in every process."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp")


def log_param(key: str, value: Any) -> None:
    """Params are immutable, as in MLflow: the same value again is fine, another is an error."""
    if (remote := _rest()) is not None:
        remote.log_param(_check_key(key), str(value))
        return
    path = _run().directory / "params" / _check_key(key)
    text = str(value)
    if path.is_file():
        if path.read_text(encoding="utf-8") != text:
            raise ValueError(f"param {key!r} is already logged with another value")
        return
    _write(path, text)


def log_params(params: dict[str, Any]) -> None:
    for key, value in params.items():
        log_param(key, value)


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    """One point: `<timestamp ms> <value> <step>`, appended to the metric's file in one write."""
    stamp = int(time.time() * 1000) if timestamp is None else int(timestamp)
    if (remote := _rest()) is not None:
        remote.log_metric(_check_key(key), float(value), int(step), stamp)
        return
    line = f"{stamp} {float(value)!r} {int(step)}\n".encode()
    with _lock:
        descriptor = _metric_file(_run(), key)
        os.write(descriptor, line)


def _metric_file(run: _Run, key: str) -> int:
    """Opened once per key and kept until end_run; O_APPEND keeps every point whole."""
    descriptor = run.metric_files.get(key)
    if descriptor is None:
        path = run.directory / "metrics" / _check_key(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        descriptor = run.metric_files[key] = os.open(path, flags, 0o666)
    return descriptor


def log_metrics(metrics: dict[str, float], step: int = 0, timestamp: int | None = None) -> None:
    stamp = int(time.time() * 1000) if timestamp is None else timestamp
    for key, value in metrics.items():
        log_metric(key, value, step, stamp)


def set_tag(key: str, value: Any) -> None:
    if (remote := _rest()) is not None:
        remote.set_tag(_check_key(key), str(value))
        return
    _write(_run().directory / "tags" / _check_key(key), str(value))


def set_tags(tags: dict[str, Any]) -> None:
    for key, value in tags.items():
        set_tag(key, value)


def _artifact_dir(run: _Run) -> Path:
    meta = (run.directory / "meta.yaml").read_text(encoding="utf-8")
    match = re.search(r"^artifact_uri: '?(file://[^'\n]*)'?$", meta, flags=re.M)
    return Path(unquote(urlparse(match.group(1)).path)) if match else run.directory / "artifacts"


def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    source = Path(local_path)
    if (remote := _rest()) is not None:
        remote.upload(source, f"{artifact_path}/{source.name}" if artifact_path else source.name)
        return
    target = _artifact_dir(_run()) / (artifact_path or "") / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(target)
    try:  # a reader never sees half a file, two writers never mix theirs
        shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    if (remote := _rest()) is not None:
        for path in sorted(p for p in Path(local_dir).rglob("*") if p.is_file()):
            relative = path.relative_to(local_dir).as_posix()
            remote.upload(path, f"{artifact_path}/{relative}" if artifact_path else relative)
        return
    target = _artifact_dir(_run()) / (artifact_path or "")
    shutil.copytree(Path(local_dir), target, dirs_exist_ok=True)


def _scalar(value: str) -> str:
    """A YAML scalar as PyYAML's safe_dump writes simple strings: plain, or single-quoted."""
    plain = re.fullmatch(r"[A-Za-z_/][\w./:\-]*", value) and value.lower() not in (
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "null",
        "y",
        "n",
        "~",
    )
    return value if plain else "'" + value.replace("'", "''") + "'"


def start_run(run_name: str | None = None, experiment_id: str | None = None) -> str:
    """Start a run of our own (outside `mlrun run`); it ends when the program exits."""
    with _lock:
        return _start_run(run_name, experiment_id)


def _start_run(run_name: str | None, experiment_id: str | None) -> str:
    global _active
    global _remote
    if (uri := _remote_uri()) is not None:
        if _remote is not None:
            end_run()
        _remote = _start_rest_run(uri, run_name, experiment_id, attach=False)
        return _remote.run_id
    if _active is not None and _active.owned:
        end_run()
    root = _store_root()
    experiment_id = experiment_id or os.environ.get("MLFLOW_EXPERIMENT_ID") or "0"
    if experiment_id == "0" and not (root / "0" / "meta.yaml").is_file():
        _create_default_experiment(root)
    experiment_dir = root / experiment_id
    if not (experiment_dir / "meta.yaml").is_file():
        raise RuntimeError(f"mlrun_log: no experiment {experiment_id} in {root}")
    run_id = uuid.uuid4().hex
    directory = experiment_dir / run_id
    for sub in ("metrics", "params", "artifacts", "tags"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    name = run_name or f"mlrun-log-{run_id[:8]}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    meta = {
        "artifact_uri": _scalar((directory / "artifacts").as_uri()),
        "end_time": "null",
        "entry_point_name": "''",
        "experiment_id": f"'{experiment_id}'",
        "lifecycle_stage": "active",
        "run_id": run_id,
        "run_name": _scalar(name),
        "source_name": "''",
        "source_type": "4",
        "source_version": "''",
        "start_time": str(int(time.time() * 1000)),
        "status": "1",
        "tags": "[]",
        "user_id": _scalar(user),
    }
    _write(directory / "meta.yaml", "".join(f"{k}: {v}\n" for k, v in meta.items()))
    _active = _Run(directory, owned=True)
    set_tags(
        {
            "mlflow.runName": name,
            "mlflow.user": user,
            "mlflow.source.type": "LOCAL",
            "mlflow.source.name": sys.argv[0] if sys.argv and sys.argv[0] else "python",
        }
    )
    return run_id


def _create_default_experiment(root: Path) -> None:
    now = int(time.time() * 1000)
    (root / ".trash").mkdir(parents=True, exist_ok=True)
    lines = [
        f"artifact_location: {_scalar((root / '0').as_uri())}",
        f"creation_time: {now}",
        "effective_trace_archival_retention: null",
        "experiment_id: '0'",
        f"last_update_time: {now}",
        "lifecycle_stage: active",
        "name: Default",
        "trace_location: null",
        "workspace: default",
    ]
    _write(root / "0" / "meta.yaml", "\n".join(lines) + "\n")


def end_run(status: str = "FINISHED") -> None:
    """End a run this module started; a run mlrun started is ended by mlrun."""
    global _active
    global _remote
    if _remote is not None:
        remote, _remote = _remote, None
        remote.end(status)
        return
    with _lock:
        run, _active = _active, None
        if run is None:
            return
        run.close()
    if not run.owned:
        return
    meta_path = run.directory / "meta.yaml"
    meta = meta_path.read_text(encoding="utf-8")
    meta = re.sub(r"^status: \d+$", f"status: {_STATUS[status]}", meta, flags=re.M)
    meta = re.sub(r"^end_time: .*$", f"end_time: {int(time.time() * 1000)}", meta, flags=re.M)
    _write(meta_path, meta)


def _on_exit() -> None:
    end_run("FAILED" if getattr(sys, "last_value", None) is not None else "FINISHED")


atexit.register(_on_exit)


# -- tracking servers (http:// and https:// tracking URIs), over urllib -------------------------
#
# Points are buffered and sent with runs/log-batch within MLflow's limits per request, from a
# background thread every second (at once when a buffer is full) and at exit. Connection errors,
# 429 and 5xx are retried with MLflow's client settings (MLFLOW_HTTP_REQUEST_MAX_RETRIES,
# _BACKOFF_FACTOR, _TIMEOUT); a batch that still fails goes back to the front of the buffer, so
# the entry point never waits for the server and nothing is sent twice by us. A batch the server
# refuses (HTTP 400) is halved until the refused item is alone; that item is dropped with one
# line on stderr and the rest is sent.
#
# At exit the back-off stops: what is left gets MLRUN_LOG_EXIT_TIMEOUT seconds (default 10) to
# reach the server. What still does not is appended to the file MLRUN_LOG_UNSENT names (`mlrun
# run` sets it; its finish moves the file's batches into the outbox that `mlrun sync` replays),
# one line per batch: {"method": "POST", "endpoint": "runs/log-batch", "payload": {...}}.
# Outside mlrun, such points are counted on stderr and a run of our own ends FAILED.

_MAX_METRICS, _MAX_PARAMS, _MAX_TAGS = 1000, 100, 100
_RETRIED = (429, 500, 502, 503, 504)
_Item = tuple[str, dict[str, Any]]  # ("metrics" | "params" | "tags", the item as JSON)


def _remote_uri() -> str | None:
    uri = os.environ.get("MLFLOW_TRACKING_URI") or ""
    return uri.rstrip("/") if uri.lower().startswith(("http://", "https://")) else None


def _split_userinfo(uri: str) -> tuple[str, str | None]:
    """The URI without `user:password@` (so messages never show it), and that part decoded."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), f"{unquote(user)}:{unquote(password)}"


def _json_number(value: float) -> float | str:
    """NaN and infinities as MLflow's client sends them: strings, since JSON has no such tokens
    (the server reads the token NaN as 0.0 and drops Infinity with the rest of its batch)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


class _Refused(RuntimeError):
    """HTTP 400: the server refuses a value in the request, so sending it again cannot succeed
    (401, 403 and 404 concern the whole run, not one item)."""


class _Unreachable(ConnectionError):
    """The server did not answer within the retries, the exit's time limit, or before a stop."""


class _RestClient:
    """MLflow's REST API with MLflow's client variables for auth, TLS, retries and timeouts."""

    def __init__(self, uri: str) -> None:
        env = os.environ
        self.uri, userinfo = _split_userinfo(uri)  # urllib refuses user:password@ in a URL
        self.retries = int(env.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") or 7)
        self.backoff = float(env.get("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR") or 2)
        self.timeout = float(env.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or 120)
        self.headers = {"Content-Type": "application/json"}
        user, password = env.get("MLFLOW_TRACKING_USERNAME"), env.get("MLFLOW_TRACKING_PASSWORD")
        token = env.get("MLFLOW_TRACKING_TOKEN")
        if user and password:
            userinfo = f"{user}:{password}"
        if userinfo:
            pair = base64.b64encode(userinfo.encode()).decode()
            self.headers["Authorization"] = f"Basic {pair}"
        elif token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.context = self._tls_context(env)

    @staticmethod
    def _tls_context(env: Mapping[str, str]) -> ssl.SSLContext:
        import ssl

        if (env.get("MLFLOW_TRACKING_INSECURE_TLS") or "").lower() in ("1", "true", "yes"):
            context = ssl._create_unverified_context()
        else:
            context = ssl.create_default_context(cafile=env.get("MLFLOW_TRACKING_SERVER_CERT_PATH"))
        if env.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
            context.load_cert_chain(env["MLFLOW_TRACKING_CLIENT_CERT_PATH"])
        return context

    def call(
        self, endpoint: str, payload: dict[str, Any], method: str = "POST", **limits: Any
    ) -> Any:
        url = f"{self.uri}/api/2.0/mlflow/{endpoint}"
        data: bytes | None = json.dumps(payload, allow_nan=False).encode()
        if method == "GET":
            url, data = f"{url}?{urlencode(payload)}", None
        return json.loads(self.send(url, method, data, **limits) or b"{}")

    def send(
        self,
        url: str,
        method: str,
        data: bytes | None,
        deadline: float | None = None,
        stop: threading.Event | None = None,
    ) -> bytes:
        """Retry connection errors, 429 and 5xx with exponential backoff; never a 4xx. The
        back-off ends early at `deadline` (time.monotonic) or when `stop` is set."""
        import http.client
        import urllib.error
        import urllib.request

        attempt = 0
        while True:
            request = urllib.request.Request(url, data, self.headers, method=method)
            try:
                opener = urllib.request.urlopen(
                    request, timeout=self._timeout(deadline), context=self.context
                )
                with opener as response:
                    body: bytes = response.read()
                    return body
            except urllib.error.HTTPError as exc:
                if exc.code not in _RETRIED or attempt >= self.retries:
                    raise self._http_error(exc) from None
                failure = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                failure = str(exc) or type(exc).__name__
            if attempt >= self.retries:
                raise _Unreachable(f"mlrun_log: {self.uri} is unreachable ({failure})")
            self._back_off(min(120.0, self.backoff * (2**attempt)), deadline, stop, failure)
            attempt += 1

    def _timeout(self, deadline: float | None) -> float:
        if deadline is None:
            return self.timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise _Unreachable(f"mlrun_log: {self.uri} did not answer in time")
        return min(self.timeout, left)

    def _back_off(
        self, delay: float, deadline: float | None, stop: threading.Event | None, failure: str
    ) -> None:
        if deadline is not None and time.monotonic() + delay >= deadline:
            raise _Unreachable(f"mlrun_log: {self.uri} did not answer in time ({failure})")
        if stop is None:
            time.sleep(delay)
        elif stop.wait(delay):
            raise _Unreachable(f"mlrun_log: {self.uri} is unreachable ({failure})")

    def _http_error(self, exc: Any) -> RuntimeError:
        detail = exc.read().decode("utf-8", "replace")
        with contextlib.suppress(ValueError, KeyError, TypeError):  # MLflow's JSON error
            detail = json.loads(detail)["message"]
        detail = " ".join(str(detail).split())[:500]
        message = f"mlrun_log: {self.uri}: HTTP {exc.code}: {detail}"
        return _Refused(message) if exc.code == 400 else RuntimeError(message)


class _RestRun:
    """A run on a tracking server; what is logged is buffered and sent in batches."""

    def __init__(self, client: _RestClient, run_id: str, owned: bool) -> None:
        self.client = client
        self.run_id = run_id
        self.owned = owned
        self.lock = threading.Lock()
        self.metrics: list[dict[str, Any]] = []
        self.params: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.logged_params: dict[str, str] = {}
        self.in_flight: list[list[_Item]] = []  # taken from the buffers, not yet answered
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.flusher = threading.Thread(target=self._flush_every_second, daemon=True)
        self.flusher.start()

    def _flush_every_second(self) -> None:
        """Never raises: what fails stays buffered for the next round or for end()."""
        while not self.stop.is_set():
            self.wake.wait(1.0)
            self.wake.clear()
            if self.stop.is_set():
                return
            try:
                self.flush(stop=self.stop)
            except Exception as exc:  # the thread must outlive any failure
                if not self.stop.is_set():  # else end() sends it and says what it could not
                    sys.stderr.write(f"{exc}; will retry\n")

    def log_param(self, key: str, value: str) -> None:
        with self.lock:
            known = self.logged_params.get(key)
            if known is not None and known != value:
                raise ValueError(f"param {key!r} is already logged with another value")
            self.logged_params[key] = self.params[key] = value
            if len(self.params) >= _MAX_PARAMS:
                self.wake.set()

    def log_metric(self, key: str, value: float, step: int, stamp: int) -> None:
        point = {"key": key, "value": _json_number(value), "timestamp": stamp, "step": step}
        with self.lock:
            self.metrics.append(point)
            if len(self.metrics) >= _MAX_METRICS:
                self.wake.set()

    def set_tag(self, key: str, value: str) -> None:
        with self.lock:
            self.tags[key] = value
            if len(self.tags) >= _MAX_TAGS:
                self.wake.set()

    def flush(self, **limits: Any) -> None:
        """Send everything buffered; what did not reach the server goes back to the buffer."""
        while items := self._take(everything=False):
            self._send(items, **limits)

    def _take(self, everything: bool) -> list[_Item]:
        """The next batch's worth of items (or all of them), out of the buffers."""
        with self.lock:
            count = len(self.metrics) if everything else _MAX_METRICS
            metrics, self.metrics = self.metrics[:count], self.metrics[count:]
            params = dict(list(self.params.items())[: None if everything else _MAX_PARAMS])
            tags = dict(list(self.tags.items())[: None if everything else _MAX_TAGS])
            for key in params:
                del self.params[key]
            for key in tags:
                del self.tags[key]
            items: list[_Item] = [("metrics", point) for point in metrics]
            items += [("params", {"key": k, "value": v}) for k, v in params.items()]
            items += [("tags", {"key": k, "value": v}) for k, v in tags.items()]
            if items:
                self.in_flight.append(items)
            return items

    def _send(self, items: list[_Item], **limits: Any) -> None:
        """One batch; a refused batch is halved until the refused item is alone, and that item
        is dropped with one line on stderr, so one bad value never holds back the others."""
        pending = [items]
        try:
            while pending:
                chunk = pending.pop(0)
                try:
                    self.client.call("runs/log-batch", self._batch(chunk), **limits)
                except _Refused as exc:
                    if len(chunk) > 1:
                        middle = len(chunk) // 2
                        pending[:0] = [chunk[:middle], chunk[middle:]]
                        continue
                    kind, item = chunk[0]
                    sys.stderr.write(f"{exc}; dropped the {kind[:-1]} {item['key']!r}\n")
                except BaseException:
                    self._put_back([item for rest in (chunk, *pending) for item in rest])
                    raise
        finally:
            with self.lock:
                self.in_flight.remove(items)

    def _batch(self, items: list[_Item]) -> dict[str, Any]:
        batch: dict[str, Any] = {"run_id": self.run_id, "metrics": [], "params": [], "tags": []}
        for kind, item in items:
            batch[kind].append(item)
        return batch

    def _put_back(self, items: list[_Item]) -> None:
        """Unsent items return to the front of the buffer, ahead of what was logged since."""
        with self.lock:
            self.metrics[:0] = [item for kind, item in items if kind == "metrics"]
            params = {i["key"]: i["value"] for kind, i in items if kind == "params"}
            tags = {i["key"]: i["value"] for kind, i in items if kind == "tags"}
            self.params = {**params, **self.params}
            self.tags = {**tags, **self.tags}

    def artifact_uri(self) -> str:
        answer = self.client.call("runs/get", {"run_id": self.run_id}, method="GET")
        return str(answer["run"]["info"]["artifact_uri"])

    def upload(self, source: Path, relative: str) -> None:
        """Into the run's artifact location: the server's proxy, or a folder on this machine."""
        uri = self.artifact_uri()
        parsed = urlparse(uri)
        if parsed.scheme == "mlflow-artifacts":
            base = (
                f"{urlparse(self.client.uri).scheme}://{parsed.netloc}"
                if parsed.netloc
                else (self.client.uri)
            )
            path = quote(f"{parsed.path.strip('/')}/{relative}")
            url = f"{base}/api/2.0/mlflow-artifacts/artifacts/{path}"
            self.client.send(url, "PUT", source.read_bytes())
            return
        if parsed.scheme in ("", "file"):
            target = Path(unquote(parsed.path)) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            return
        raise RuntimeError(f"mlrun_log: cannot upload to {parsed.scheme}: artifact locations")

    def end(self, status: str | None) -> None:
        """Stop the flusher (its back-off ends at once), send what is left within the exit's
        time limit, and hand what still did not arrive to mlrun (see MLRUN_LOG_UNSENT)."""
        limit = float(os.environ.get("MLRUN_LOG_EXIT_TIMEOUT") or 10)
        deadline = time.monotonic() + limit
        self.stop.set()
        self.wake.set()
        self.flusher.join(limit)
        try:
            self.flush(deadline=deadline)
        except (ConnectionError, RuntimeError) as exc:
            with self.lock:
                stuck = [item for items in self.in_flight for item in items]
            lost = self._hand_over([*stuck, *self._take(everything=True)], exc)
            status = "FAILED" if lost and status is not None else status
        if status is not None and self.owned:
            payload = {"run_id": self.run_id, "status": status, "end_time": int(time.time() * 1000)}
            try:
                self.client.call("runs/update", payload, deadline=time.monotonic() + limit)
            except (ConnectionError, RuntimeError) as exc:
                sys.stderr.write(f"{exc}; the run's status {status} was not sent\n")

    def _hand_over(self, items: list[_Item], cause: Exception) -> bool:
        """Write the items for mlrun's outbox; True when they are lost (no outbox to take them)."""
        counts = {kind: sum(1 for k, _ in items if k == kind) for kind in ("metrics", "params")}
        what = (
            f"{counts['metrics']} metric points, {counts['params']} params and "
            f"{len(items) - sum(counts.values())} tags"
        )
        target = os.environ.get("MLRUN_LOG_UNSENT")
        if target:
            try:
                _append_batches(Path(target), [self._batch(c) for c in _chunks(items)])
            except OSError as exc:
                sys.stderr.write(f"{cause}; {what} are lost: {target}: {exc}\n")
                return True
            sys.stderr.write(
                f"{cause}; {what} go to mlrun, sent at the run's end or kept for `mlrun sync`\n"
            )
            return False
        sys.stderr.write(f"{cause}; {what} were not sent\n")
        return True


def _chunks(items: list[_Item]) -> list[list[_Item]]:
    """Items in batches within MLflow's limits per request."""
    limits = {"metrics": _MAX_METRICS, "params": _MAX_PARAMS, "tags": _MAX_TAGS}
    chunks: list[list[_Item]] = []
    for kind, limit in limits.items():
        of_kind = [item for item in items if item[0] == kind]
        chunks += [of_kind[start : start + limit] for start in range(0, len(of_kind), limit)]
    return chunks


def _append_batches(path: Path, batches: list[dict[str, Any]]) -> None:
    """One line per batch, each a single O_APPEND write, so lines of several processes never
    mix; fsync'd, since the program exits right after."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    descriptor = os.open(path, flags, 0o600)
    try:
        for batch in batches:
            call = {"method": "POST", "endpoint": "runs/log-batch", "payload": batch}
            os.write(descriptor, (json.dumps(call, allow_nan=False) + "\n").encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _start_rest_run(
    uri: str, run_name: str | None, experiment_id: str | None, attach: bool
) -> _RestRun:
    client = _RestClient(uri)
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if run_id and attach:
        return _RestRun(client, run_id, owned=False)
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    payload = {
        "experiment_id": experiment_id or os.environ.get("MLFLOW_EXPERIMENT_ID") or "0",
        "user_id": user,
        "start_time": int(time.time() * 1000),
        "tags": [
            {"key": "mlflow.user", "value": user},
            {"key": "mlflow.source.type", "value": "LOCAL"},
            {"key": "mlflow.source.name", "value": sys.argv[0] if sys.argv[0:1] else "python"},
        ],
    }
    if run_name:
        payload["run_name"] = run_name
    answer = client.call("runs/create", payload)
    return _RestRun(client, str(answer["run"]["info"]["run_id"]), owned=True)


_remote: _RestRun | None = None


def _rest() -> _RestRun | None:
    """The run on a tracking server, when MLFLOW_TRACKING_URI names one (started on first use)."""
    global _remote
    uri = _remote_uri()
    if uri is None:
        return None
    if _remote is None:
        _remote = _start_rest_run(uri, None, None, attach=True)
    return _remote
