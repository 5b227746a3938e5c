"""The Ray backend: a job through Ray's job submission API that runs mlrun on the cluster.

The staged project is the job's `working_dir` (Ray ships it to the node), the config's
`runtime_env` is passed through with mlrun's variables added to its `env_vars`, and
`num_cpus`/`num_gpus`/`memory` reserve resources for the job's entrypoint. The cluster is the
config's `address`, else RAY_ADDRESS; it is recorded on the run, so `runs wait/cancel/gc`
find it again, and it is the one the client talks to (Ray's own client would let RAY_ADDRESS
override it). Ray is imported only here, only when a run uses it; its log records go through
mlrun's log, warnings only, so mlrun's output stays mlrun's.
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mlrun_cli.backends.jobs import EngineUnreachable, JobSpec, JobState
from mlrun_cli.backends.streams import masked
from mlrun_cli.core.credentials import credential_values
from mlrun_cli.errors import LaunchError, UsageError
from mlrun_cli.tracking.entities import RunStatus
from mlrun_cli.tracking.tags import ADDRESS_TAG, UNREACHABLE_AFTER_TAG

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

log = logging.getLogger(__name__)

AGENT_WAIT_SECONDS = 60.0  # how long a just-started head may take to accept jobs
# Ray's client takes these over the address it is given; mlrun's recorded address wins.
_ADDRESS_VARIABLES = ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS")
# A stopped job's entrypoint got Ray's stop signal (RAY_JOB_STOP_SIGNAL, SIGTERM by default).
STOPPED_EXIT_CODE = 128 + signal.SIGTERM
REASON_LIMIT = 300  # characters of the engine's message kept in the reason tag
CAUSE_LIMIT = 120  # characters of the client's error kept when the cluster cannot be reached
_STATUSES = {
    "PENDING": (False, RunStatus.SCHEDULED),
    "RUNNING": (False, RunStatus.RUNNING),
    "SUCCEEDED": (True, RunStatus.FINISHED),
    "STOPPED": (True, RunStatus.KILLED),
    "FAILED": (True, RunStatus.FAILED),
}


class RayBackend:
    name = "ray"

    def __init__(self, config: Mapping[str, Any], environ: Mapping[str, str]) -> None:
        self.config = config
        self.environ = environ
        address = config.get("address") or environ.get("RAY_ADDRESS")
        if not address:
            raise UsageError(
                '--backend ray: no cluster address; put "address" in --backend-config or set '
                "RAY_ADDRESS (e.g. http://127.0.0.1:8265)"
            )
        self.address = str(address)
        self._client: JobSubmissionClient | None = None

    @classmethod
    def from_tags(cls, tags: Mapping[str, str], environ: Mapping[str, str]) -> RayBackend:
        return cls({"address": tags.get(ADDRESS_TAG, "")}, environ)

    def run_tags(self) -> dict[str, str]:
        tags = {ADDRESS_TAG: self.address}
        if "unreachable_after" in self.config:
            tags[UNREACHABLE_AFTER_TAG] = str(self.config["unreachable_after"])
        return tags

    @property
    def client(self) -> JobSubmissionClient:
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            _quiet_ray_logging()
            try:
                with _without_variables(_ADDRESS_VARIABLES):
                    self._client = JobSubmissionClient(self.address)
            except (OSError, RuntimeError, ValueError) as exc:
                raise self._unreachable(exc) from None
        return self._client

    def _unreachable(self, exc: BaseException) -> EngineUnreachable:
        """One line naming the address: Ray's and requests' messages run to many lines."""
        lines = str(exc).strip().splitlines()
        cause = lines[0] if lines else type(exc).__name__
        if len(cause) > CAUSE_LIMIT:
            cause = cause[: CAUSE_LIMIT - 3] + "..."
        return EngineUnreachable(f"cannot reach the Ray cluster at {self.address} ({cause})")

    def submit(self, spec: JobSpec) -> str:
        runtime_env = dict(self.config.get("runtime_env", {}))
        runtime_env["working_dir"] = str(spec.workdir)
        runtime_env["env_vars"] = {**runtime_env.get("env_vars", {}), **spec.env}
        resources = {
            f"entrypoint_{key}": self.config[key]
            for key in ("num_cpus", "num_gpus", "memory")
            if key in self.config
        }
        deadline = time.monotonic() + AGENT_WAIT_SECONDS
        while True:
            try:
                job_id: str = self.client.submit_job(
                    entrypoint=shlex.join(spec.argv),
                    submission_id=spec.name,
                    runtime_env=runtime_env,
                    metadata={"mlrun_run_id": spec.run_id},
                    **resources,
                )
                return job_id
            except (OSError, RuntimeError, ValueError) as exc:
                # A head that has just started answers before its job agent is up.
                if "try again later" in str(exc) and time.monotonic() < deadline:
                    time.sleep(1.0)
                    continue
                message = f"the Ray cluster at {self.address} refused the job: {exc}"
                raise LaunchError(message) from None

    def state(self, job_id: str) -> JobState | None:
        try:
            info = self.client.get_job_info(job_id)
        except OSError as exc:
            raise self._unreachable(exc) from None
        except RuntimeError as exc:
            if "status code 404" in str(exc):
                return None  # the cluster does not know the job (any more)
            raise self._unreachable(exc) from None
        word = str(getattr(info.status, "value", info.status))
        final, status = _STATUSES.get(word, (False, RunStatus.RUNNING))
        secrets = _credentials(self.environ, getattr(info, "runtime_env", None))
        summary, engine_log = (masked(part, secrets) for part in _split_message(info.message or ""))
        reason = f"{word} ({summary})" if summary else word
        exit_code = getattr(info, "driver_exit_code", None)
        if word == "STOPPED" and not exit_code:
            exit_code = STOPPED_EXIT_CODE
        return JobState(word, final, status, reason, exit_code, engine_log)

    def cancel(self, job_id: str) -> None:
        try:
            self.client.stop_job(job_id)
        except OSError as exc:
            raise self._unreachable(exc) from None
        except RuntimeError as exc:
            raise LaunchError(f"cannot stop Ray job {job_id}: {exc}") from None


def _credentials(environ: Mapping[str, str], runtime_env: object) -> tuple[str, ...]:
    """The credentials the job could print: mlrun's own and those its runtime_env carried
    (`runs gc` in another shell may not have the variables the submitter had). Ray's message
    holds the job's output from before the node's masking, or from a node that never ran."""
    job_env = runtime_env.get("env_vars") if isinstance(runtime_env, dict) else None
    env = {**environ, **(job_env if isinstance(job_env, dict) else {})}
    return credential_values(env, env.get("MLFLOW_TRACKING_URI", ""))


def _split_message(message: str) -> tuple[str, str]:
    """Ray's job message as a one-line summary and the log it carries: a failed job's message
    holds up to 20,000 characters of its log after the first line."""
    first, _, rest = message.strip().partition("\n")
    summary = first.split(", last available logs", 1)[0].rstrip(":. ")
    if len(summary) > REASON_LIMIT:
        summary = summary[: REASON_LIMIT - 3] + "..."
    return summary, rest.strip()


@contextmanager
def _without_variables(names: tuple[str, ...]) -> Iterator[None]:
    """Ray's client reads its address from these variables over its argument: hide them
    while it is built, so the address mlrun records is the one used."""
    saved = {name: os.environ.pop(name) for name in names if name in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


class _ToMlrunLog(logging.Handler):
    """Ray's log records as mlrun's own (warnings and errors; its INFO lines about package
    uploads are not the user's business)."""

    def emit(self, record: logging.LogRecord) -> None:
        log.log(record.levelno, "ray: %s", record.getMessage())


def _quiet_ray_logging() -> None:
    ray_log = logging.getLogger("ray")
    if not any(isinstance(handler, _ToMlrunLog) for handler in ray_log.handlers):
        for handler in list(ray_log.handlers):
            ray_log.removeHandler(handler)
        ray_log.addHandler(_ToMlrunLog(logging.WARNING))
        ray_log.propagate = False
