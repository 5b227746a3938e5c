"""What every environment manager provides, so the runner treats them all alike.

`plan` runs before the run exists: it reads and checks the env files and finds the interpreter,
and writes nothing. `prepare` builds or reuses; its failures happen inside the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypedDict

if TYPE_CHECKING:
    from docker.types import DeviceRequest

    from mlrun_cli.project.spec import Project


class BuildProgress(Protocol):
    """Told when a build starts and ends; the CLI shows a spinner or log lines."""

    def building(self, message: str) -> None: ...

    def built(self, message: str) -> None: ...


class SilentProgress:
    def building(self, message: str) -> None:
        """Nothing to show."""

    def built(self, message: str) -> None:
        """Nothing to show."""


@dataclass(frozen=True)
class EnvPlan:
    """Decided before the run: which manager, and the inputs that identify the env."""

    manager: str
    description: str

    @property
    def path_map(self) -> tuple[tuple[str, str], ...]:
        """Host folders the entry point sees elsewhere, as (host, inside): none, by default."""
        return ()


class DockerOptions(TypedDict, total=False):
    """The docker SDK's keywords that `-A key=value` may set (as `docker run --key value`)."""

    network_mode: str
    mem_limit: str
    memswap_limit: str
    nano_cpus: int
    shm_size: str
    ipc_mode: str
    device_requests: list[DeviceRequest]
    privileged: bool
    cap_add: list[str]
    hostname: str


@dataclass(frozen=True)
class ContainerSpec:
    """A docker env: the container the entry point runs in, besides the command."""

    image: str
    image_id: str
    code_in_image: bool  # --build-image: the project is in the image, not mounted
    mounts: tuple[tuple[str, str, str], ...]  # (host, inside, "rw" | "ro"): declared volumes
    environment: Mapping[str, str]
    user: str
    options: DockerOptions


@dataclass(frozen=True)
class PreparedEnv:
    """A ready environment: how to change the child's environment to run inside it."""

    manager: str
    python: str | None  # the interpreter `python` resolves to inside it, when known
    python_version: str | None
    env_vars: Mapping[str, str] = field(default_factory=dict)
    path_prepend: tuple[str, ...] = ()
    key: str | None = None  # build-cache key, for managers that build
    engine: str | None = None  # what actually built it, where a manager has several ways
    lock_file: Path | None = None  # what is installed, as requirement lines
    build_log: Path | None = None  # set when this run built the env
    reason: str | None = None  # why it was built
    container: ContainerSpec | None = None  # docker: the entry point runs in this container

    def apply(self, base: Mapping[str, str]) -> dict[str, str]:
        """The child's environment variables inside this env."""
        env = {**base, **self.env_vars}
        if self.path_prepend:
            env["PATH"] = ":".join([*self.path_prepend, base.get("PATH", "")])
        env.pop("PYTHONHOME", None)
        return env


@dataclass(frozen=True)
class EnvContext:
    """What every manager is constructed with: the surroundings and the user's options."""

    environ: Mapping[str, str]
    display_base: Path  # paths in messages are shown relative to it
    strict: bool = False  # the manager was asked for by name: no fallbacks
    build_image: bool = False  # docker: bake the project into a derived image
    docker_args: tuple[tuple[str, str], ...] = ()  # docker: -A key=value
    docker_user: str | None = None  # docker: --docker-user (default: the invoking uid:gid)


class EnvManager(Protocol):
    name: str

    def plan(self, project: Project) -> EnvPlan:
        """Check everything that can be checked without building; raise before a run exists."""
        ...

    def prepare(self, plan: EnvPlan, progress: BuildProgress, rebuild: bool) -> PreparedEnv:
        """Build or reuse the environment."""
        ...
