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
