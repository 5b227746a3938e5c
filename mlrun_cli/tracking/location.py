"""Which store a command talks to: `--tracking-uri`, then MLFLOW_TRACKING_URI, then ./mlruns."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlrun_cli.errors import StoreError

DEFAULT_STORE_DIR = "mlruns"


def store_root(uri: str | None, environ: Mapping[str, str], cwd: Path) -> Path:
    """The absolute directory of the file store named by `uri` (or the environment)."""
    uri = uri or environ.get("MLFLOW_TRACKING_URI") or DEFAULT_STORE_DIR
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise StoreError(f"tracking URI {uri!r}: file URIs must name a local path")
        path = unquote(parsed.path)
    elif len(parsed.scheme) > 1:
        raise StoreError(
            f"tracking URI {uri!r}: scheme '{parsed.scheme}' is not supported yet; "
            "use a directory path or a file: URI"
        )
    else:
        path = uri
    return Path(os.path.abspath(cwd / os.path.expanduser(path)))
