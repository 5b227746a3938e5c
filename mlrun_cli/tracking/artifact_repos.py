"""Where a remote store's runs keep their artifacts, by the scheme of the run's artifact_uri.

- a local path or `file:` URI (a server or database on this machine): written in place;
- `mlflow-artifacts:` (a server started with --serve-artifacts): through its artifact proxy;
- anything else (s3:, gs:, ...): through MLflow's own artifact repositories when the full
  `mlflow` package is importable, otherwise a clear error naming the scheme.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from mlrun_cli.core.uri import local_path_of
from mlrun_cli.errors import StoreError
from mlrun_cli.tracking.http_client import ClientSettings, HttpClient
from mlrun_cli.tracking.stored_run import files_below


class ArtifactRepository(Protocol):
    @property
    def local_dir(self) -> Path | None:
        """The folder to write into directly, or None when files are staged and uploaded."""
        ...

    def upload(self, source: Path, relative: str) -> None: ...

    def read(self, relative: str) -> bytes | None: ...

    def list(self) -> list[tuple[str, int]]: ...


def artifact_repository(artifact_uri: str, server: HttpClient | None) -> ArtifactRepository:
    local = local_path_of(artifact_uri)
    if local is not None:
        return LocalArtifacts(Path(local))
    parts = urlsplit(artifact_uri)
    if parts.scheme == "mlflow-artifacts":
        if parts.netloc:
            settings = server.settings if server else ClientSettings()
            scheme = urlsplit(server.base_uri).scheme if server else "http"
            server = HttpClient(f"{scheme}://{parts.netloc}", settings)
        if server is None:
            raise StoreError(f"artifact URI {artifact_uri} needs a tracking server to upload to")
        return ProxyArtifacts(server, parts.path.strip("/"))
    return MlflowArtifacts(artifact_uri)


class LocalArtifacts:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def local_dir(self) -> Path | None:
        return self.directory

    def upload(self, source: Path, relative: str) -> None:
        target = self.directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)

    def read(self, relative: str) -> bytes | None:
        try:
            return (self.directory / relative).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def list(self) -> list[tuple[str, int]]:
        return [(key, path.stat().st_size) for key, path in files_below(self.directory)]


class ProxyArtifacts:
    """The server's /api/2.0/mlflow-artifacts/artifacts/<path> endpoints."""

    def __init__(self, server: HttpClient, prefix: str) -> None:
        self.server = server
        self.prefix = prefix

    @property
    def local_dir(self) -> Path | None:
        return None

    def upload(self, source: Path, relative: str) -> None:
        self.server.put_artifact(f"{self.prefix}/{relative}", source.read_bytes())

    def read(self, relative: str) -> bytes | None:
        return self.server.get_artifact(f"{self.prefix}/{relative}")

    def list(self) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        pending = [""]
        while pending:
            folder = pending.pop()
            path = f"{self.prefix}/{folder}".rstrip("/")
            for entry in self.server.list_artifacts(path):
                relative = f"{folder}/{entry['path']}".lstrip("/")
                if entry.get("is_dir"):
                    pending.append(relative)
                else:
                    found.append((relative, int(entry.get("file_size", 0))))
        return sorted(found)


class MlflowArtifacts:
    """Cloud and other schemes, through MLflow's artifact repositories (imported on use)."""

    def __init__(self, artifact_uri: str) -> None:
        self.artifact_uri = artifact_uri
        self.scheme = urlsplit(artifact_uri).scheme

    @property
    def local_dir(self) -> Path | None:
        return None

    def _repository(self) -> Any:  # MLflow's ArtifactRepository: untyped, imported lazily
        try:
            from mlflow.store.artifact.artifact_repository_registry import (
                get_artifact_repository,
            )
        except ImportError:
            raise StoreError(
                f"artifact location {self.artifact_uri}: mlrun uploads '{self.scheme}:' artifacts "
                "through MLflow's artifact repositories; pip install 'mlrun-cli[mlflow]' (or "
                "start the server with --serve-artifacts)"
            ) from None
        return get_artifact_repository(self.artifact_uri)

    def upload(self, source: Path, relative: str) -> None:
        folder = str(Path(relative).parent)
        with tempfile.TemporaryDirectory() as scratch:
            named = Path(scratch) / Path(relative).name
            shutil.copyfile(source, named)
            self._repository().log_artifact(str(named), None if folder == "." else folder)

    def read(self, relative: str) -> bytes | None:
        with tempfile.TemporaryDirectory() as scratch:
            try:
                path = self._repository().download_artifacts(relative, scratch)
            except Exception:  # MLflow raises a different class per cloud for a missing file
                return None
            return Path(path).read_bytes()

    def list(self) -> list[tuple[str, int]]:
        repository = self._repository()
        found: list[tuple[str, int]] = []
        pending: list[str | None] = [None]
        while pending:
            for entry in repository.list_artifacts(pending.pop()):
                if entry.is_dir:
                    pending.append(entry.path)
                else:
                    found.append((entry.path, int(entry.file_size or 0)))
        return sorted(found)
