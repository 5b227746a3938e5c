"""docker_env: the project's image (pulled when missing), or one built from its Dockerfile,
optionally with the project's code baked in (--build-image); all through the docker SDK.

Built images are tagged `mlrun-env:<key>`, the key a hash of what went into them (the
Dockerfile and its build context, or the base image and the project's files), and recorded
in the env cache like every other environment, so a second run builds nothing.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import tarfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from mlrun_cli.envs.base import (
    BuildProgress,
    ContainerSpec,
    DockerOptions,
    EnvContext,
    EnvPlan,
    PreparedEnv,
)
from mlrun_cli.envs.cache import CachedEnv, EnvCache, EnvInputs
from mlrun_cli.errors import EnvBuildError, EnvUnavailableError
from mlrun_cli.project.spec import DockerEnv, Project
from mlrun_cli.project.volumes import parse_volume

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger(__name__)
CODE_DIR = "/mlflow/projects/code/"  # MLflow's path for the project inside the container
LABEL = "org.mlrun.env"
_SKIPPED = frozenset({".git", "mlruns", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache"})


def _gpus(value: str) -> list[Any]:
    from docker.types import DeviceRequest

    count = -1 if value == "all" else int(value)
    return [DeviceRequest(count=count, capabilities=[["gpu"]])]


# -A key=value -> (docker SDK keyword, converter), as `docker run --key value` means it.
DOCKER_ARGS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "network": ("network_mode", str),
    "memory": ("mem_limit", str),
    "memory-swap": ("memswap_limit", str),
    "cpus": ("nano_cpus", lambda v: int(float(v) * 1e9)),
    "shm-size": ("shm_size", str),
    "ipc": ("ipc_mode", str),
    "gpus": ("device_requests", _gpus),
    "privileged": ("privileged", lambda v: v.lower() in ("", "1", "true", "yes")),
    "cap-add": ("cap_add", lambda v: v.split(",")),
    "hostname": ("hostname", str),
}


@dataclass(frozen=True)
class DockerPlan(EnvPlan):
    docker: DockerEnv
    project: Project
    options: DockerOptions
    mounts: tuple[tuple[str, str, str], ...]
    environment: Mapping[str, str]
    user: str

    @property
    def path_map(self) -> tuple[tuple[str, str], ...]:
        """The project at MLflow's path, and the declared volumes."""
        volumes = tuple((host, inside) for host, inside, _ in self.mounts)
        return ((str(self.project.directory), CODE_DIR), *volumes)


def image_tag(key: str) -> str:
    """The tag of the image built for the environment with this key."""
    return f"mlrun-env:{key}"


def docker_client(environ: Mapping[str, str]) -> DockerClient:
    """A client of a reachable engine, or a one-line error saying how to point at one."""
    try:
        import docker
    except ImportError:
        raise EnvUnavailableError(
            "docker_env needs the docker package: pip install 'mlrun-cli[docker]'"
        ) from None
    where = environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    try:
        client = docker.from_env(environment=dict(environ))
        client.ping()
    except docker.errors.DockerException as exc:
        reason = str(exc).splitlines()[0][:160]
        raise EnvUnavailableError(
            f"no Docker engine reachable at {where} ({reason}); start one, or set DOCKER_HOST "
            "to its socket (for example DOCKER_HOST=unix:///path/to/docker.sock)"
        ) from None
    return client


def parse_docker_args(args: tuple[tuple[str, str], ...]) -> DockerOptions:
    options: dict[str, object] = {}
    for key, value in args:
        if key not in DOCKER_ARGS:
            known = ", ".join(sorted(DOCKER_ARGS))
            raise EnvUnavailableError(f"-A {key}: not a docker option mlrun passes on ({known})")
        keyword, convert = DOCKER_ARGS[key]
        try:
            options[keyword] = convert(value)
        except ValueError:
            raise EnvUnavailableError(f"-A {key}={value}: not a valid value") from None
    return cast(DockerOptions, options)  # keys and value types come from DOCKER_ARGS


def parse_volumes(volumes: tuple[str, ...], project_dir: Path) -> tuple[tuple[str, str, str], ...]:
    """`host:container[:mode]`; a host path that does not exist is an error, not a new dir."""
    mounts = []
    for volume in volumes:
        try:
            parsed = parse_volume(volume, project_dir)
        except ValueError as exc:
            raise EnvUnavailableError(f"docker_env volume {volume!r}: {exc}") from None
        mounts.append((str(parsed.host), parsed.inside, parsed.mode))
    return tuple(mounts)


def docker_reason(exc: Exception) -> str:
    """The engine's own explanation, whole (never cut inside a quoted name), on one line."""
    explanation = getattr(exc, "explanation", None)
    text = str(explanation or exc).strip()
    return " ".join(text.split()) or type(exc).__name__


def resolve_environment(
    items: tuple[tuple[str, str | None], ...], environ: Mapping[str, str]
) -> dict[str, str]:
    resolved = {}
    for name, value in items:
        if value is None:
            if name not in environ:
                raise EnvUnavailableError(
                    f"docker_env environment copies {name} from the host, where it is not set"
                )
            value = environ[name]
        resolved[name] = value
    return resolved


class DockerEnvManager:
    name = "docker"

    def __init__(self, cache: EnvCache, context: EnvContext) -> None:
        self.cache = cache
        self.context = context

    def plan(self, project: Project) -> DockerPlan:
        docker_env = project.env.docker
        if docker_env is None:
            raise EnvUnavailableError("--env-manager docker needs a docker_env in MLproject")
        client = docker_client(self.context.environ)
        if docker_env.dockerfile is None and docker_env.image is not None:
            _ensure_image(client, docker_env.image)
        mounts = parse_volumes(docker_env.volumes, project.directory)
        return DockerPlan(
            manager=self.name,
            description=f"docker image {docker_env.image or docker_env.dockerfile}",
            docker=docker_env,
            project=project,
            options=parse_docker_args(self.context.docker_args),
            mounts=mounts,
            environment=resolve_environment(docker_env.environment, self.context.environ),
            user=self.context.docker_user or f"{os.getuid()}:{os.getgid()}",
        )

    def prepare(self, plan: EnvPlan, progress: BuildProgress, rebuild: bool) -> PreparedEnv:
        assert isinstance(plan, DockerPlan)  # a manager only receives its own plans
        client = docker_client(self.context.environ)
        image, key, built = plan.docker.image or "", None, None
        if plan.docker.dockerfile is not None:
            built = self._built(client, plan, _dockerfile_build(plan), progress, rebuild)
            image, key = built.info["image"], built.key
        if self.context.build_image:
            built = self._built(client, plan, _code_build(client, plan, image), progress, rebuild)
            image, key = built.info["image"], built.key
        spec = ContainerSpec(
            image=image,
            image_id=client.images.get(image).id or "",
            code_in_image=self.context.build_image,
            mounts=plan.mounts,
            environment=plan.environment,
            user=plan.user,
            options=plan.options,
        )
        return PreparedEnv(
            manager=self.name,
            python=None,
            python_version=None,
            key=key,
            engine="docker",
            build_log=built.build_log if built is not None and built.built_now else None,
            reason=built.reason if built is not None and built.built_now else None,
            container=spec,
        )

    def _built(
        self, client: Any, plan: DockerPlan, build: _Build, progress: BuildProgress, rebuild: bool
    ) -> CachedEnv:
        inputs = EnvInputs(
            manager="docker",
            manager_version=str(client.version().get("Version", "")),
            python="",
            env_fingerprint=build.fingerprint,
            project=str(plan.project.directory),
            env_file=build.label,
        )
        if not rebuild and (hit := self.cache.lookup(inputs.key())) is not None:
            if _has_image(client, str(hit.info.get("image"))):
                log.info("reusing image %s (unchanged %s)", hit.info["image"], build.label)
                return hit
            rebuild = True  # the image was removed from the engine since
        return self.cache.get_or_build(
            inputs,
            lambda prefix, log_path: build.run(client, prefix, log_path, inputs.key()),
            rebuild,
            lambda reason: progress.building(f"building {build.label} image: {reason}"),
        )


@dataclass(frozen=True)
class _Build:
    label: str  # what is built, for messages: "Dockerfile", "project code image"
    fingerprint: str
    context: Callable[[], dict[str, Any]]  # docker API build() keywords: path or fileobj

    def run(self, client: Any, prefix: Path, log_path: Path, key: str) -> dict[str, Any]:
        tag = image_tag(key)
        prefix.mkdir(parents=True)
        with open(log_path, "a", encoding="utf-8") as out:
            for chunk in client.api.build(
                # forcerm: the container of a failed step is removed too, not only on success
                tag=tag,
                rm=True,
                forcerm=True,
                decode=True,
                labels={LABEL: key},
                **self.context(),
            ):
                out.write(str(chunk.get("stream", "")))
                if "error" in chunk:
                    out.write(f"{chunk['error']}\n")
                    out.flush()
                    tail = log_path.read_text(encoding="utf-8").splitlines()[-12:]
                    raise EnvBuildError(f"building the {self.label} image failed:", tail)
        (prefix / "image").write_text(tag)
        return {"image": tag, "engine": "docker"}


def _dockerfile_build(plan: DockerPlan) -> _Build:
    dockerfile = plan.docker.dockerfile or "Dockerfile"
    directory = plan.project.directory
    digest = hashlib.sha256((directory / dockerfile).read_bytes())
    digest.update(_tree_digest(directory).encode())
    return _Build(
        label=dockerfile,
        fingerprint=digest.hexdigest(),
        context=lambda: {"path": str(directory), "dockerfile": dockerfile},
    )


def _code_build(client: Any, plan: DockerPlan, base: str) -> _Build:
    """FROM the base image, the project's files at MLflow's path (--build-image)."""
    base_id = client.images.get(base).id
    directory = plan.project.directory
    fingerprint = hashlib.sha256(f"{base_id}\n{_tree_digest(directory)}".encode()).hexdigest()

    def context() -> dict[str, Any]:
        dockerfile = f"FROM {base_id}\nCOPY . {CODE_DIR}\nWORKDIR {CODE_DIR}\n"
        return {"fileobj": _tar(directory, dockerfile), "custom_context": True}

    return _Build(label="project code", fingerprint=fingerprint, context=context)


def _tar(directory: Path, dockerfile: str) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for relative, path in _project_files(directory):
            archive.add(path, arcname=relative)
        data = dockerfile.encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _project_files(directory: Path) -> Iterator[tuple[str, Path]]:
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            yield path.relative_to(directory).as_posix(), path


def _tree_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for relative, path in _project_files(directory):
        if path.is_file():
            digest.update(f"{relative}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def _has_image(client: Any, name: str) -> bool:
    import docker

    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def _ensure_image(client: Any, image: str) -> None:
    """The image is here, or pulled now; else a one-line error before anything runs."""
    import docker

    if _has_image(client, image):
        return
    try:
        client.images.pull(image)
    except docker.errors.DockerException as exc:
        raise EnvUnavailableError(
            f"docker image {image!r} is not on this engine and cannot be pulled "
            f"({docker_reason(exc)})"
        ) from None


def image_sizes(environ: Mapping[str, str], tags: list[str]) -> dict[str, int]:
    """For `mlrun envs list`: the size of each built image the engine still has (the cache
    entry itself holds only a few bytes); none when no engine is reachable."""
    try:
        client = docker_client(environ)
    except EnvUnavailableError:
        return {}
    import docker

    sizes = {}
    for tag in tags:
        try:
            sizes[tag] = int(client.images.get(tag).attrs.get("Size", 0))
        except docker.errors.DockerException:
            continue
    return sizes


def remove_image(environ: Mapping[str, str], tag: str) -> None:
    """For `mlrun envs prune`: a built image goes with its cache entry (when reachable)."""
    try:
        client = docker_client(environ)
        client.images.remove(tag, force=True)
    except Exception as exc:  # pruning goes on; the image may be gone or the engine down
        log.warning("could not remove image %s: %s", tag, str(exc).splitlines()[0][:120])
