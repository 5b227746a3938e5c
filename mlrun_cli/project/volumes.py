"""docker_env volumes, `HOST:CONTAINER[:MODE]`, read one way by `validate` and by `run`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Volume:
    host: Path  # absolute: a relative host path is relative to the project
    inside: str
    mode: str


def parse_volume(volume: str, project_dir: Path) -> Volume:
    """Raises ValueError saying what is wrong: the shape, or a host path that does not exist
    (docker would create an empty root-owned directory there, which hides the mistake)."""
    parts = volume.split(":")
    if len(parts) not in (2, 3):
        raise ValueError("expected HOST:CONTAINER[:ro]")
    host = Path(os.path.expanduser(parts[0]))
    host = host if host.is_absolute() else project_dir / host
    if not host.exists():
        raise ValueError(f"the host path {host} does not exist")
    return Volume(host, parts[1], parts[2] if len(parts) == 3 else "rw")
