"""What every environment manager provides, so the runner treats them all alike."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from mlrun_cli.spec import Project


@dataclass(frozen=True)
class PreparedEnv:
    """A ready environment: how to change the child's environment to run inside it."""

    manager: str
    python: str | None  # the interpreter `python` resolves to inside it, when known
    python_version: str | None
    env_vars: Mapping[str, str] = field(default_factory=dict)
    key: str | None = None  # build-cache key, for managers that build


class EnvManager(Protocol):
    name: str

    def check(self, project: Project) -> None:
        """Raise EnvUnavailableError now, before a run exists, if this cannot work."""

    def prepare(self, project: Project, base_env: Mapping[str, str]) -> PreparedEnv:
        """Build or reuse the environment."""
