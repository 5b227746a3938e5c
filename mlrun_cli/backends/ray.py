"""The Ray backend: a job through Ray's job submission API that runs mlrun on the cluster.

The staged project is the job's `working_dir` (Ray ships it to the node), the config's
`runtime_env` is passed through with mlrun's variables added to its `env_vars`, and
`num_cpus`/`num_gpus`/`memory` reserve resources for the job's entrypoint. The cluster is the
config's `address`, else RAY_ADDRESS; it is recorded on the run, so `runs wait/cancel/gc`
find it again. Ray is imported only here, only when a run uses it.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlrun_cli.backends.jobs import JobSpec, JobState
from mlrun_cli.errors import LaunchError, UsageError
from mlrun_cli.tracking.entities import RunStatus

if TYPE_CHECKING:
    from ray.job_submission import JobSubmissionClient

ADDRESS_TAG = "mlrun.ray.address"
AGENT_WAIT_SECONDS = 60.0  # how long a just-started head may take to accept jobs
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
        return {ADDRESS_TAG: self.address}

    @property
    def client(self) -> JobSubmissionClient:
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            try:
                self._client = JobSubmissionClient(self.address)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise LaunchError(
                    f"cannot reach the Ray cluster at {self.address}: {exc}"
                ) from None
        return self._client

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
            except (ConnectionError, RuntimeError, ValueError) as exc:
                # A head that has just started answers before its job agent is up.
                if "try again later" in str(exc) and time.monotonic() < deadline:
                    time.sleep(1.0)
                    continue
                message = f"the Ray cluster at {self.address} refused the job: {exc}"
                raise LaunchError(message) from None

    def state(self, job_id: str) -> JobState | None:
        try:
            info = self.client.get_job_info(job_id)
        except RuntimeError:
            return None  # the cluster does not know the job (any more)
        word = str(getattr(info.status, "value", info.status))
        final, status = _STATUSES.get(word, (False, RunStatus.RUNNING))
        reason = word if not info.message else f"{word} ({info.message})"
        exit_code = getattr(info, "driver_exit_code", None)
        return JobState(word, final, status, reason, exit_code)

    def cancel(self, job_id: str) -> None:
        try:
            self.client.stop_job(job_id)
        except RuntimeError as exc:
            raise LaunchError(f"cannot stop Ray job {job_id}: {exc}") from None
