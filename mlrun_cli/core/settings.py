"""Everything a command needs from its surroundings, resolved once and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlrun_cli.core.tracking_uri import file_store_root, resolve_tracking_uri
from mlrun_cli.errors import StoreError


@dataclass(frozen=True)
class Settings:
    cwd: Path  # where mlrun was invoked: user-given relative paths start here
    environ: Mapping[str, str]
    tracking_uri: str  # absolute: see resolve_tracking_uri
    user: str

    @property
    def store_root(self) -> Path:
        """The file store's directory; commands that only work on one say so for other URIs."""
        root = file_store_root(self.tracking_uri)
        if root is None:
            raise StoreError(f"{self.tracking_uri} is not a file store (a directory or file: URI)")
        return root

    @classmethod
    def resolve(
        cls,
        tracking_uri: str | None = None,
        cwd: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Options win over environment variables, which win over defaults."""
        environ = dict(os.environ if environ is None else environ)
        cwd = Path(os.path.abspath(cwd or os.getcwd()))
        return cls(cwd, environ, resolve_tracking_uri(tracking_uri, environ, cwd), _user())


def _user() -> str:
    """The login name, as MLflow records it in mlflow.user (`getpass.getuser()`'s answer,
    without importing getpass and termios on every start)."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):
        return "unknown"
