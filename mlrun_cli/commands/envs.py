"""What `mlrun envs list` and `mlrun envs prune` do: the env cache, its images and the git
checkouts, seen and pruned together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from mlrun_cli.envs.cache import EnvCache, EnvRecord
from mlrun_cli.envs.docker import image_sizes, image_tag, remove_image
from mlrun_cli.sources.git import GitCache


@dataclass(frozen=True)
class PruneReport:
    environments: list[EnvRecord]
    checkouts: int


def prune(environ: Mapping[str, str], older_than_seconds: float | None) -> PruneReport:
    """Environments unused for that long (and the images built for them), and the per-run
    checkouts of git sources; None means everything."""
    removed = EnvCache.from_environment(environ).prune(older_than_seconds)
    for record in removed:
        if record.manager == "docker":
            remove_image(environ, image_tag(record.key))
    checkouts = GitCache.from_environment(environ).prune_checkouts(older_than_seconds)
    return PruneReport(removed, checkouts)


def list_environments(environ: Mapping[str, str]) -> list[EnvRecord]:
    """Every cached environment, most recently used first, with its image's size."""
    records = EnvCache.from_environment(environ).records()
    tags = [image_tag(r.key) for r in records if r.manager == "docker"]
    if not tags:
        return records
    sizes = image_sizes(environ, tags)
    return [replace(r, size_bytes=r.size_bytes + sizes.get(image_tag(r.key), 0)) for r in records]
