"""Talking to an MLflow tracking server: MLflow's client variables, retries, and errors.

Honours the variables MLflow's own client reads, with its defaults:
MLFLOW_TRACKING_USERNAME/PASSWORD (basic auth), MLFLOW_TRACKING_TOKEN (bearer),
MLFLOW_TRACKING_INSECURE_TLS, MLFLOW_TRACKING_SERVER_CERT_PATH, MLFLOW_TRACKING_CLIENT_CERT_PATH,
MLFLOW_HTTP_REQUEST_MAX_RETRIES, MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR, MLFLOW_HTTP_REQUEST_TIMEOUT.
Connection errors, 429 and 5xx are retried with exponential backoff, each retry announced
("retrying (n of N)"); a 4xx never is, nor a refused connection to a loopback address (nothing
listens there: waiting minutes for it would only delay the error).
`requests` is imported here only, and this module only when a server URI is used.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mlrun_cli.core.credentials import display_uri
from mlrun_cli.errors import NotFoundError, StoreError

if TYPE_CHECKING:
    from types import TracebackType

    import requests
    from urllib3.connectionpool import ConnectionPool
    from urllib3.response import BaseHTTPResponse
    from urllib3.util.retry import Retry

log = logging.getLogger(__name__)
# urllib3 announces each retry as a warning; mlrun reports the outcome once, in its own words.
logging.getLogger("urllib3").addHandler(logging.NullHandler())
logging.getLogger("urllib3").propagate = False
API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"
RETRIED_STATUSES = (429, 500, 502, 503, 504)
JsonObject = dict[str, Any]


class ServerUnreachableError(StoreError):
    """The server did not answer (or answered 429/5xx) after every retry."""


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ClientSettings:
    """MLflow's client variables, read once from the invocation's environment."""

    username: str | None = None
    password: str | None = None
    token: str | None = None
    insecure_tls: bool = False
    server_cert_path: str | None = None
    client_cert_path: str | None = None
    max_retries: int = 7
    backoff_factor: float = 2.0
    timeout: float = 120.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ClientSettings:
        try:
            return cls(
                username=environ.get("MLFLOW_TRACKING_USERNAME") or None,
                password=environ.get("MLFLOW_TRACKING_PASSWORD") or None,
                token=environ.get("MLFLOW_TRACKING_TOKEN") or None,
                insecure_tls=_flag(environ.get("MLFLOW_TRACKING_INSECURE_TLS")),
                server_cert_path=environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None,
                client_cert_path=environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH") or None,
                max_retries=int(environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES") or 7),
                backoff_factor=float(environ.get("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR") or 2),
                timeout=float(environ.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or 120),
            )
        except ValueError as exc:
            raise StoreError(f"MLFLOW_HTTP_REQUEST_* variable: {exc}") from None

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in output, logs, tags or provenance."""
        return tuple(v for v in (self.password, self.token) if v)


class HttpClient:
    """One connection pool to one server; every call returns the decoded JSON answer."""

    def __init__(self, base_uri: str, settings: ClientSettings) -> None:
        self.base_uri = base_uri.rstrip("/")
        self.settings = settings
        self._session: requests.Session | None = None

    @property
    def shown_uri(self) -> str:
        return display_uri(self.base_uri)

    def session(self) -> requests.Session:
        if self._session is None:
            self._session = _new_session(self.settings, self.shown_uri)
        return self._session

    def call(
        self, method: str, endpoint: str, payload: Mapping[str, Any] | None = None
    ) -> JsonObject:
        """`endpoint` below /api/2.0/mlflow/, e.g. `runs/get`; GET sends the payload as query."""
        url = f"{self.base_uri}{API}/{endpoint}"
        if method == "GET":
            response = self._send("GET", url, params=dict(payload or {}))
        else:
            response = self._send(method, url, json=dict(payload or {}))
        return self._json(response, endpoint)

    def put_artifact(self, path: str, data: bytes) -> None:
        response = self._send("PUT", f"{self.base_uri}{ARTIFACTS_API}/{quote(path)}", data=data)
        self._json(response, "artifact upload")

    def get_artifact(self, path: str) -> bytes | None:
        response = self._send("GET", f"{self.base_uri}{ARTIFACTS_API}/{quote(path)}")
        if response.status_code == 404:
            return None
        self._json(response, "artifact download", decode=False)
        return response.content

    def list_artifacts(self, path: str) -> list[JsonObject]:
        response = self._send("GET", f"{self.base_uri}{ARTIFACTS_API}", params={"path": path})
        files = self._json(response, "artifact listing").get("files", [])
        return list(files)

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        import requests

        try:
            return self._request(method, url, **kwargs)
        except requests.exceptions.SSLError as exc:
            raise StoreError(f"tracking server {self.shown_uri}: TLS failed ({exc})") from None
        except requests.exceptions.RequestException as exc:
            raise ServerUnreachableError(
                f"tracking server {self.shown_uri} is unreachable ({_cause(exc)})"
            ) from None

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """urllib3 retries a request whose connection or headers failed; an answer cut in its
        body (a busy server closing the connection mid-answer) surfaces after that, and is
        asked again here, announced, but only for a request that reads: a write that may have
        been done once is never sent twice."""
        import requests

        reads = method == "GET" or url.endswith("/search")
        session, retries = self.session(), self.settings.max_retries
        for attempt in range(1, retries + 1 if reads else 1):
            try:
                return session.request(method, url, timeout=self.settings.timeout, **kwargs)
            except requests.exceptions.ChunkedEncodingError as exc:
                log.warning(
                    "tracking server %s: %s; retrying (%d of %d)",
                    self.shown_uri, _cause(exc), attempt, retries,
                )  # fmt: skip
                time.sleep(min(self.settings.backoff_factor * 2 ** (attempt - 1), 30.0))
        return session.request(method, url, timeout=self.settings.timeout, **kwargs)

    def _json(self, response: requests.Response, what: str, decode: bool = True) -> JsonObject:
        status = response.status_code
        if status in RETRIED_STATUSES:
            raise ServerUnreachableError(
                f"tracking server {self.shown_uri}: {what} failed with HTTP {status} "
                f"after {self.settings.max_retries} retries"
            )
        if status in (401, 403):
            raise StoreError(
                f"tracking server {self.shown_uri}: {what} refused (HTTP {status}, "
                "check MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN)"
            )
        if status >= 400:
            body = _body(response)
            message = str(body.get("message") or response.reason or "")
            if body.get("error_code") == "RESOURCE_DOES_NOT_EXIST" or status == 404:
                raise NotFoundError(f"{self.shown_uri}: {message or what + ' not found'}")
            code = body.get("error_code", f"HTTP {status}")
            raise StoreError(f"tracking server {self.shown_uri}: {what}: {code}: {message}")
        return _body(response) if decode else {}


def _body(response: requests.Response) -> JsonObject:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _cause(exc: Exception) -> str:
    """The innermost reason of a requests error, e.g. 'Connection refused'."""
    text = str(exc)
    for marker in ("] ", "): "):
        if marker in text:
            text = text.rsplit(marker, 1)[-1]
    return text.strip("()'\" ") or type(exc).__name__


def _new_session(settings: ClientSettings, shown_uri: str) -> requests.Session:
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    retry = _announced_retry(settings.max_retries, shown_uri)(
        total=settings.max_retries,
        connect=settings.max_retries,
        read=settings.max_retries,
        status=settings.max_retries,
        status_forcelist=RETRIED_STATUSES,
        backoff_factor=settings.backoff_factor,
        allowed_methods=frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"}),
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if settings.username is not None and settings.password is not None:
        session.auth = (settings.username, settings.password)
    elif settings.token:
        session.headers["Authorization"] = f"Bearer {settings.token}"
    if settings.insecure_tls:
        session.verify = False
    elif settings.server_cert_path:
        session.verify = settings.server_cert_path
    if settings.client_cert_path:
        session.cert = settings.client_cert_path
    return session


def _announced_retry(limit: int, shown_uri: str) -> type[Retry]:
    """urllib3's Retry that says each retry out loud and gives up at once on a refused loopback
    connection. A class per session, as urllib3 copies a Retry through its constructor."""
    from urllib3.exceptions import MaxRetryError
    from urllib3.util.retry import Retry

    class AnnouncedRetry(Retry):
        def increment(
            self,
            method: str | None = None,
            url: str | None = None,
            response: BaseHTTPResponse | None = None,
            error: Exception | None = None,
            _pool: ConnectionPool | None = None,
            _stacktrace: TracebackType | None = None,
        ) -> AnnouncedRetry:
            host = getattr(_pool, "host", None)
            if error is not None and host is not None and _refused(error) and _loopback(host):
                raise MaxRetryError(_pool, url, error)  # type: ignore[arg-type]  # a pool here
            retried = super().increment(method, url, response, error, _pool, _stacktrace)
            why = _cause(error) if error is not None else f"HTTP {getattr(response, 'status', '')}"
            log.warning(
                "tracking server %s: %s; retrying (%d of %d)",
                shown_uri, why, len(retried.history), limit,
            )  # fmt: skip
            return retried

    return AnnouncedRetry


def _refused(error: BaseException) -> bool:
    """Whether the error (or what caused it) is ECONNREFUSED: nothing listens on that port."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or getattr(seen, "errno", None) == (
            errno.ECONNREFUSED
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return "Connection refused" in str(error)


def _loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
