"""Turns the URI given to `mlrun run` into a local project directory."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlrun_cli.errors import SourceError

_GIT_LIKE = re.compile(r"^(git@|git\+|ssh://|https?://)|\.git(#.*)?$|\.zip(#.*)?$")


@dataclass(frozen=True)
class ProjectSource:
    directory: Path
    source_name: str  # what the run records as mlflow.source.name


def resolve_source(uri: str, invocation_dir: Path, version: str | None = None) -> ProjectSource:
    """A local directory (plain path or file: URI). Remote sources are refused, loudly."""
    if _GIT_LIKE.search(uri) or "#" in uri:
        raise SourceError(
            f"{uri}: git and archive sources are not supported by this mlrun yet; "
            "clone the repository and pass its local directory"
        )
    if version is not None:
        raise SourceError(
            f"--version {version}: checking out a version is not supported by this mlrun yet; "
            "check it out yourself and run the local directory"
        )
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        raw = unquote(parsed.path)
    elif len(parsed.scheme) > 1:
        raise SourceError(f"{uri}: unsupported URI scheme '{parsed.scheme}'")
    else:
        raw = uri
    directory = Path(os.path.abspath(invocation_dir / os.path.expanduser(raw)))
    if not directory.exists():
        raise SourceError(f"{uri}: no such directory ({directory})")
    if not directory.is_dir():
        raise SourceError(
            f"{uri}: not a directory; pass the project directory that holds MLproject"
        )
    return ProjectSource(directory=directory, source_name=str(directory))
