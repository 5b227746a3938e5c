"""The docker backend: the entry point in a container of its docker_env, through the docker SDK.

Never a shell string on the host: the container is created with the command as an argv, its
stdout and stderr are streamed into the terminal and the run's logs, a stop signal means
`docker stop` (SIGTERM, a grace period, then SIGKILL), and the container is removed whatever
happens. The project is mounted at MLflow's path, the store at its own path (so the run's
file: URIs hold inside too), and mlrun_log's folder read-only.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from mlrun_cli.backends.base import RUNTIME_DIR, LaunchRequest, Outcome
from mlrun_cli.backends.streams import StopRequest, handling_signals, start_pump
from mlrun_cli.envs.base import ContainerSpec
from mlrun_cli.envs.docker import CODE_DIR, docker_client, docker_reason
from mlrun_cli.errors import LaunchError

if TYPE_CHECKING:
    from docker.models.containers import Container

CONTAINER_RUNTIME = "/mlrun/runtime"  # where mlrun_log's folder is mounted
T = TypeVar("T")


class DockerBackend:
    name = "docker"

    def launch(self, request: LaunchRequest) -> Outcome:
        spec = request.prepared.container
        if spec is None:
            raise LaunchError("the docker backend needs a docker_env environment")
        container = _engine_step(lambda: _create(spec, request), "create the container", spec)
        stop = request.stop or StopRequest()
        started = time.time()
        try:
            with handling_signals(stop):
                returncode = _follow(container, request, stop)
        finally:
            container.remove(force=True)
        killed_by = returncode - 128 if returncode > 128 and stop.signum is None else None
        return Outcome(
            returncode=returncode,
            started=started,
            ended=time.time(),
            killed_by=killed_by if killed_by in (signal.SIGKILL, signal.SIGTERM) else None,
            interrupted_by=stop.signum,
        )


def _create(spec: ContainerSpec, request: LaunchRequest) -> Container:
    mounts = [(str(path), str(path), "rw") for path in request.shared_paths]
    mounts.append((str(RUNTIME_DIR), CONTAINER_RUNTIME, "ro"))
    if not spec.code_in_image:
        mounts.append((str(request.project_dir), CODE_DIR, "rw"))
    env = {
        **spec.environment,
        **request.run_env,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": CONTAINER_RUNTIME,
    }
    client = docker_client(request.environ)
    return client.containers.create(
        spec.image,
        command=["/bin/sh", "-c", request.command],
        working_dir=CODE_DIR,
        environment=env,
        volumes={host: {"bind": inside, "mode": mode} for host, inside, mode in
                 (*mounts, *spec.mounts)},
        user=spec.user,
        detach=True,
        **spec.options,
    )  # fmt: skip


def _follow(container: Container, request: LaunchRequest, stop: StopRequest) -> int:
    """Start the container, stream its output, and wait for its exit code."""
    spec = request.prepared.container
    _engine_step(container.start, "start the container", spec)
    pumps = [
        start_pump(
            _chunks(container.logs(stdout=True, stderr=False, stream=True, follow=True)),
            request.stdout_log,
            request.echo_stdout,
            request.redact,
        ),
        start_pump(
            _chunks(container.logs(stdout=False, stderr=True, stream=True, follow=True)),
            request.stderr_log,
            request.echo_stderr,
            request.redact,
        ),
    ]
    returncode = _wait(container, stop, request.grace_seconds)
    for pump in pumps:
        pump.join(timeout=5.0)
    return returncode


def _engine_step(step: Callable[[], T], what: str, spec: ContainerSpec | None) -> T:
    """An engine refusal (no GPU driver, a bad option) as one line, not the SDK's traceback."""
    import docker

    try:
        return step()
    except docker.errors.APIError as exc:
        hint = ""
        if spec is not None and "device_requests" in spec.options:
            hint = "; -A gpus needs an engine with GPU support (the NVIDIA container toolkit)"
        raise LaunchError(f"docker could not {what}: {docker_reason(exc)}{hint}") from None


def _wait(container: Container, stop: StopRequest, grace: float) -> int:
    result: dict[str, int] = {}
    waiter = threading.Thread(
        target=lambda: result.update(StatusCode=int(container.wait().get("StatusCode", 1))),
        daemon=True,
    )
    waiter.start()
    while waiter.is_alive():
        if stop.take(0.1):
            if stop.forced:
                container.kill()
            else:
                container.stop(timeout=int(grace))  # SIGTERM, then SIGKILL after the grace
    waiter.join()
    return result.get("StatusCode", 1)


def _chunks(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The docker stream, ending quietly when the container is removed under it."""
    try:
        yield from chunks
    except Exception:  # the SDK raises its own and urllib3's types when the stream breaks
        return
