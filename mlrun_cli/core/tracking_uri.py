"""The one reading of a tracking URI: which kind of store it names, and its absolute form.

Settings resolve it once per command; the stores and the run-cache lookups ask it which kind a
URI is, so a scheme is classified in one place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mlrun_cli.core.uri import local_path_of
from mlrun_cli.errors import StoreError

DEFAULT_STORE_DIR = "mlruns"
HTTP_SCHEMES = ("http", "https")
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
# Where MLflow's client puts the artifacts of a database store when nothing else is said.
DEFAULT_ARTIFACT_DIR = "mlruns"


def resolve_tracking_uri(uri: str | None, environ: Mapping[str, str], cwd: Path) -> str:
    """The tracking URI in a form that means the same from any directory.

    A file store becomes an absolute `file://` URI and a relative SQLite path an absolute one
    (the entry point runs in the project directory, not where mlrun was invoked).
    """
    uri = uri or environ.get("MLFLOW_TRACKING_URI") or DEFAULT_STORE_DIR
    scheme = uri.partition(":")[0].lower()
    if scheme in HTTP_SCHEMES:
        return uri.rstrip("/")
    if scheme.split("+")[0] in DATABASE_SCHEMES:
        return _absolute_sqlite(uri, cwd) if scheme == "sqlite" else uri
    path = local_path_of(uri)
    if path is None:
        raise StoreError(
            f"tracking URI {uri!r}: scheme '{scheme}' is not supported; use a directory, a "
            "file: URI, an http(s):// tracking server or a database URI (sqlite:, postgresql:, "
            "mysql:, mssql:)"
        )
    return Path(os.path.abspath(cwd / os.path.expanduser(path))).as_uri()


def _absolute_sqlite(uri: str, cwd: Path) -> str:
    """`sqlite:///mlflow.db` is relative to the working directory; `sqlite:////abs` is not."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri.startswith(prefix + "/") or uri == prefix + ":memory:":
        return uri
    return prefix + os.path.abspath(cwd / uri[len(prefix) :])


def file_store_root(tracking_uri: str) -> Path | None:
    """The directory of a file store, or None when the URI names a server or a database."""
    path = local_path_of(tracking_uri)
    return None if path is None else Path(path)
