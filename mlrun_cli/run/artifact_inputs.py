"""`path` parameters that name artifacts elsewhere, downloaded before the run exists.

As MLflow's `path` parameters take them: `runs:/<run_id>/<path>` is read from the configured
store (file, server or database, wherever that run keeps its artifacts), `mlflow-artifacts:`
from the tracking server's artifact proxy, `http(s)://` with a plain GET; other schemes (s3:,
gs:, ...) go through MLflow's artifact repositories when `mlflow` is installed, and are
refused otherwise. The command gets the local copy, digested as any local input; the run
records the URI as the parameter's value, as MLflow does.

Copies are content-addressed below the storage folder (`storage_dir`, else the cache's
`artifact-inputs`): `<digest of the content>/<name>`. The same content is the same path, even
from another run's URI, so the run key (and `reuse`) see an unchanged input as unchanged; and
a copy an entry point is reading is never replaced under it.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from mlrun_cli.core.caches import artifact_input_dir
from mlrun_cli.core.credentials import display_uri
from mlrun_cli.core.settings import Settings
from mlrun_cli.core.tracking_uri import HTTP_SCHEMES
from mlrun_cli.errors import NotFoundError
from mlrun_cli.project.param_types import RemoteFetch
from mlrun_cli.run.provenance import digest_path
from mlrun_cli.tracking.store import open_store

if TYPE_CHECKING:  # imported when an input is fetched, not by every run
    from mlrun_cli.tracking.artifact_repos import ArtifactRepository
    from mlrun_cli.tracking.http_client import HttpClient

_HTTP_TIMEOUT_SECONDS = 60.0
_CHUNK = 1 << 20


def artifact_fetcher(settings: Settings, storage_dir: str | None) -> RemoteFetch:
    """What `resolve_command` calls for a remote `path` value."""
    root = (
        Path(os.path.abspath(settings.cwd / os.path.expanduser(storage_dir)))
        if storage_dir
        else artifact_input_dir(settings.environ)
    )

    def fetch(uri: str) -> str:
        return str(download(uri, root, settings))

    return fetch


def download(uri: str, root: Path, settings: Settings) -> Path:
    """The local copy of the artifact at `uri` (a file or a folder), fetched now."""
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as scratch:
        fetched = _fetch_into(uri, Path(scratch), settings)
        content = digest_path(fetched)[0]
        final = root / content[:32] / fetched.name
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                fetched.rename(final)
            except OSError:
                if not final.exists():  # another run put the same content there first
                    raise
    return final


def _fetch_into(uri: str, scratch: Path, settings: Settings) -> Path:
    from mlrun_cli.tracking.artifact_repos import artifact_repository

    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "runs":
        run_id, _, relative = parts.path.lstrip("/").partition("/")
        if not run_id:
            raise ValueError(f"{uri}: expected runs:/<run_id>/<path>")
        store = open_store(settings)
        try:
            run = store.get_run(run_id)
        except NotFoundError as exc:
            raise ValueError(f"{uri}: {exc.message}") from None
        repository = artifact_repository(run.info.artifact_uri, _server(settings))
        return _copy(repository, relative.strip("/"), scratch, uri)
    if scheme == "mlflow-artifacts":
        server = _server(settings)
        if not parts.netloc and server is None:
            raise ValueError(
                f"{uri}: an mlflow-artifacts: URI without a host needs an http(s) tracking URI"
            )
        parent, name = posixpath.split(parts.path.rstrip("/"))
        repository = artifact_repository(urlunsplit(parts._replace(path=parent)), server)
        return _copy(repository, name, scratch, uri)
    if scheme in HTTP_SCHEMES:
        return _http_get(uri, scratch)
    return _through_mlflow(uri, scheme, scratch)


def _copy(repository: ArtifactRepository, relative: str, scratch: Path, uri: str) -> Path:
    """A file, or every file below a folder, of the repository into `scratch`."""
    listed = [path for path, _ in repository.list()]
    name = posixpath.basename(relative) or "artifacts"
    if relative in listed:
        return _write(scratch / name, repository, relative, uri)
    prefix = f"{relative}/" if relative else ""
    below = [path for path in listed if path.startswith(prefix)]
    if not below:
        raise ValueError(f"{uri}: no such artifact")
    for path in below:
        _write(scratch / name / path[len(prefix) :], repository, path, uri)
    return scratch / name


def _write(target: Path, repository: ArtifactRepository, relative: str, uri: str) -> Path:
    data = repository.read(relative)
    if data is None:
        raise ValueError(f"{uri}: {relative} could not be read")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return target


def _http_get(uri: str, scratch: Path) -> Path:
    import requests

    shown = display_uri(uri)
    name = posixpath.basename(urlsplit(uri).path.rstrip("/")) or "download"
    target = scratch / name
    try:
        with requests.get(uri, stream=True, timeout=_HTTP_TIMEOUT_SECONDS) as response:
            if response.status_code != 200:
                raise ValueError(f"{shown}: HTTP {response.status_code} {response.reason}")
            with open(target, "wb") as out:
                for chunk in response.iter_content(_CHUNK):
                    out.write(chunk)
    except requests.exceptions.RequestException as exc:
        raise ValueError(f"{shown}: {type(exc).__name__}") from None
    return target


def _through_mlflow(uri: str, scheme: str, scratch: Path) -> Path:
    """Cloud schemes need their SDKs, which MLflow's artifact repositories wrap."""
    try:
        from mlflow.artifacts import download_artifacts
    except ImportError:
        raise ValueError(
            f"{display_uri(uri)}: '{scheme}:' inputs are read through MLflow's artifact "
            "repositories; pip install 'mlrun-cli[mlflow]' (and the scheme's SDK)"
        ) from None
    try:
        fetched = download_artifacts(artifact_uri=uri, dst_path=str(scratch / "mlflow"))
    except Exception as exc:  # MLflow raises a different class per scheme and SDK
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{display_uri(uri)}: {first}") from None
    path = Path(fetched)
    if path.parent != scratch:
        shutil.move(str(path), str(scratch / path.name))
        path = scratch / path.name
    return path


def _server(settings: Settings) -> HttpClient | None:
    """The tracking server, for artifacts it proxies (with the same credentials)."""
    if settings.tracking_uri.partition(":")[0].lower() not in HTTP_SCHEMES:
        return None
    from mlrun_cli.tracking.http_client import ClientSettings, HttpClient

    return HttpClient(settings.tracking_uri, ClientSettings.from_environ(settings.environ))
