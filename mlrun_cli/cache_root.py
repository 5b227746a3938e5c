"""Where mlrun keeps what it can rebuild: MLRUN_CACHE_DIR, else the user cache directory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    override = environ.get("MLRUN_CACHE_DIR")
    if override:
        return Path(override).expanduser().resolve()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mlrun"))


def cache_dir(environ: Mapping[str, str], name: str, override: str) -> Path:
    """A cache's folder: its own variable (MLRUN_ENV_ROOT ...) wins, else `<cache root>/name`."""
    chosen = environ.get(override)
    return Path(chosen).expanduser().resolve() if chosen else cache_root(environ) / name
