"""Every folder where mlrun keeps what it can rebuild, each named once (pruning is in
commands.envs).

All of them live under MLRUN_CACHE_DIR, else the user cache directory; two have an override
of their own (MLRUN_ENV_ROOT for built environments, MLRUN_SOURCE_ROOT for git clones and
archives). Deleting any of them costs time, never data, except the outbox: it holds what could
not reach a tracking server yet, so prune never touches it and only `mlrun sync` empties it.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    override = environ.get("MLRUN_CACHE_DIR")
    if override:
        return Path(override).expanduser().resolve()
    homeless = Path(tempfile.gettempdir()) / f"mlrun-cache-{os.getuid()}"
    path = _user_cache_dir(environ)
    if path is None or not path.is_absolute():  # no home: never a folder named "~"
        return homeless
    return path


def _user_cache_dir(environ: Mapping[str, str]) -> Path | None:
    """mlrun's folder in the user's cache. On Linux by the XDG rule, read from `environ` (as
    every other setting is) without importing platformdirs, which costs a plain run 3 ms;
    elsewhere platformdirs' answer for the platform."""
    if sys.platform.startswith("linux"):
        xdg = environ.get("XDG_CACHE_HOME", "").strip()
        if not os.path.isabs(xdg):  # unset, or relative: the XDG spec ignores it
            xdg = os.path.expanduser("~/.cache")
        return Path(xdg) / "mlrun"
    from platformdirs import user_cache_dir

    try:
        return Path(user_cache_dir("mlrun"))
    except RuntimeError:  # platformdirs refuses when neither HOME nor a passwd home is known
        return None


def _cache_dir(environ: Mapping[str, str], name: str, override: str) -> Path:
    chosen = environ.get(override)
    return Path(chosen).expanduser().resolve() if chosen else cache_root(environ) / name


def env_cache_dir(environ: Mapping[str, str]) -> Path:
    """Built environments, one folder per key."""
    return _cache_dir(environ, "envs", "MLRUN_ENV_ROOT")


def source_cache_dir(environ: Mapping[str, str]) -> Path:
    """Git clones with their per-run checkouts, and extracted zip archives."""
    return _cache_dir(environ, "sources", "MLRUN_SOURCE_ROOT")


def staging_dir(environ: Mapping[str, str]) -> Path:
    """Project snapshots of runs submitted to a cluster (Slurm, Ray), one folder per run; the
    nodes must see it (a shared home), else pass `staging_dir` in --backend-config."""
    return _cache_dir(environ, "staging", "MLRUN_STAGING_DIR")


_fallbacks: dict[Path, Path] = {}


def writable_cache_dir(path: Path, purpose: str) -> Path:
    """`path` when it can be created and written (checked without writing anything);
    otherwise a temporary folder, said once per process: a cache that cannot be used costs
    the time to rebuild, never the run."""
    if path in _fallbacks:
        return _fallbacks[path]
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        return path
    reason = "not a folder" if existing.exists() and not existing.is_dir() else "not writable"
    fallback = Path(tempfile.mkdtemp(prefix=f"mlrun-{purpose}-cache-"))
    log.warning(
        "the %s cache %s is not usable (%s); using %s for this run instead",
        purpose,
        path,
        reason,
        fallback,
    )
    _fallbacks[path] = fallback
    return fallback


def validation_stamp_dir(environ: Mapping[str, str] | None = None) -> Path:
    """One empty file per MLproject content already found valid by this mlrun version."""
    return cache_root(environ) / "validated"


def digest_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The digest of each input file already read, by path, size and modification time."""
    return cache_root(environ) / "digests"


def reproduce_dir(environ: Mapping[str, str]) -> Path:
    """Outside git, `mlrun reproduce` writes the pinned env file and fresh output folders here."""
    return cache_root(environ) / "reproduce"


def artifact_input_dir(environ: Mapping[str, str]) -> Path:
    """Artifact URIs given to `path` parameters, downloaded before their run (storage_dir)."""
    return cache_root(environ) / "artifact-inputs"


def artifact_staging_dir(environ: Mapping[str, str]) -> Path:
    """Artifacts of runs recorded on a tracking server, one folder per run until uploaded."""
    return cache_root(environ) / "artifact-staging"


def outbox_dir(environ: Mapping[str, str]) -> Path:
    """What a finished run could not deliver to its tracking server; `mlrun sync` replays it."""
    return cache_root(environ) / "outbox"
