"""Where a prepared entry point executes: one module per backend, one registry.

Built-in backends register exactly as a new one would (Slurm, Ray, Kubernetes): a module with
a class that implements `Backend`, and a line here. Modules are imported only when chosen, so
a local run never imports the docker SDK.
"""

from __future__ import annotations

from importlib import import_module

from mlrun_cli.backends.base import Backend
from mlrun_cli.errors import UsageError

# name -> (module, class). Backends that run the command on this host (the class takes no
# arguments), then job backends that submit it to a cluster engine (the class is built from a
# validated config and the environment; see backends.jobs).
BACKENDS: dict[str, tuple[str, str]] = {
    "local": ("mlrun_cli.backends.local", "LocalBackend"),
    "docker": ("mlrun_cli.backends.docker", "DockerBackend"),
}
JOB_BACKENDS: dict[str, tuple[str, str]] = {
    "slurm": ("mlrun_cli.backends.slurm", "SlurmBackend"),
    "ray": ("mlrun_cli.backends.ray", "RayBackend"),
}


def backend_names() -> tuple[str, ...]:
    """Every backend --backend accepts, host backends first."""
    return (*BACKENDS, *JOB_BACKENDS)


def select_backend(name: str) -> Backend:
    if name not in BACKENDS:
        known = ", ".join(backend_names())
        raise UsageError(f"--backend {name}: not a backend of this mlrun ({known})")
    module, class_name = BACKENDS[name]
    backend: Backend = getattr(import_module(module), class_name)()
    return backend
