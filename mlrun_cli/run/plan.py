"""What `mlrun run` is asked (a RunRequest, as the CLI parsed it) and what it decided before
writing anything (a RunPlan). Both are plain data, so the run key, the sweep and the job
submission read a plan without depending on the pipeline that executes it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlrun_cli.backends.base import Backend
from mlrun_cli.envs import EnvManager, EnvPlan, PreparedEnv
from mlrun_cli.project.params import ResolvedCommand
from mlrun_cli.project.spec import EntryPoint, Project
from mlrun_cli.sources.resolve import ProjectSource

if TYPE_CHECKING:  # imported by a job's run only
    from mlrun_cli.backends.jobs import JobPlan


@dataclass(frozen=True)
class RunRequest:
    uri: str
    entry_point: str = "main"
    parameters: Sequence[str] = ()  # raw `-P name=value` items
    env_manager: str | None = None
    experiment_name: str | None = None
    experiment_id: str | None = None
    run_name: str | None = None
    version: str | None = None
    rebuild_env: bool = False
    require_clean: bool = False
    digest_inputs: bool = True
    secret_params: Sequence[str] = ()  # more parameter names to mask, beyond the patterns
    build_image: bool = False
    docker_args: Sequence[tuple[str, str]] = ()
    docker_user: str | None = None
    backend: str | None = None  # None: local, or docker for a docker_env project
    backend_config: str | None = None  # a file or inline JSON, checked against the schema
    detach: bool = False
    run_id: str | None = None  # continue this existing run (a job's node side)
    storage_dir: str | None = None  # where artifact URIs given to `path` parameters go


@dataclass(frozen=True)
class RunPlan:
    """Everything decided before anything is written."""

    source: ProjectSource
    project: Project
    entry: EntryPoint
    command: ResolvedCommand
    manager: EnvManager
    env_plan: EnvPlan
    backend: Backend
    rebuild_env: bool
    digest_inputs: bool
    experiment_name: str | None
    experiment_id: str | None
    run_name: str
    extra_tags: Mapping[str, str] = field(default_factory=dict)  # a sweep's parent, reuse ...
    prepared_env: PreparedEnv | None = None  # an env already prepared for several runs
    job: JobPlan | None = None  # the run is submitted to a cluster engine
    run_id: str | None = None  # --run-id: continue this existing run (a job's node side)
