"""Every folder where mlrun keeps what it can rebuild, and their pruning.

All of them live under MLRUN_CACHE_DIR, else the user cache directory; two have an override
of their own (MLRUN_ENV_ROOT for built environments, MLRUN_SOURCE_ROOT for git clones and
archives). Deleting any of them costs time, never data, except the outbox: it holds what could
not reach a tracking server yet, so prune never touches it and only `mlrun sync` empties it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlrun_cli.envs.cache import EnvRecord


def cache_root(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    override = environ.get("MLRUN_CACHE_DIR")
    if override:
        return Path(override).expanduser().resolve()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("mlrun"))


def _cache_dir(environ: Mapping[str, str], name: str, override: str) -> Path:
    chosen = environ.get(override)
    return Path(chosen).expanduser().resolve() if chosen else cache_root(environ) / name


def env_cache_dir(environ: Mapping[str, str]) -> Path:
    """Built environments, one folder per key."""
    return _cache_dir(environ, "envs", "MLRUN_ENV_ROOT")


def source_cache_dir(environ: Mapping[str, str]) -> Path:
    """Git clones with their per-run checkouts, and extracted zip archives."""
    return _cache_dir(environ, "sources", "MLRUN_SOURCE_ROOT")


def validation_stamp_dir(environ: Mapping[str, str] | None = None) -> Path:
    """One empty file per MLproject content already found valid by this mlrun version."""
    return cache_root(environ) / "validated"


def staging_dir(environ: Mapping[str, str]) -> Path:
    """Artifacts of runs recorded on a tracking server, one folder per run until uploaded."""
    return cache_root(environ) / "staging"


def outbox_dir(environ: Mapping[str, str]) -> Path:
    """What a finished run could not deliver to its tracking server; `mlrun sync` replays it."""
    return cache_root(environ) / "outbox"


@dataclass(frozen=True)
class PruneReport:
    environments: list[EnvRecord]
    checkouts: int


def prune(environ: Mapping[str, str], older_than_seconds: float | None) -> PruneReport:
    """`mlrun envs prune`: environments unused for that long (and the images built for them),
    and the per-run checkouts of git sources; None means everything."""
    from mlrun_cli.envs.cache import EnvCache
    from mlrun_cli.sources.git import GitCache

    removed = EnvCache.from_environment(environ).prune(older_than_seconds)
    for record in removed:
        if record.manager == "docker":
            from mlrun_cli.envs.docker import remove_image

            remove_image(environ, f"mlrun-env:{record.key}")
    checkouts = GitCache.from_environment(environ).prune_checkouts(older_than_seconds)
    return PruneReport(removed, checkouts)


def list_environments(environ: Mapping[str, str]) -> list[EnvRecord]:
    """`mlrun envs list`: every cached environment, most recently used first."""
    from mlrun_cli.envs.cache import EnvCache

    return EnvCache.from_environment(environ).records()
