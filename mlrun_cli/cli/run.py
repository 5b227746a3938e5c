"""`mlrun run`: the options of `mlflow run`, so `mlflow` can be swapped for `mlrun`."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

import click

from mlrun_cli.backends import ALL_BACKENDS
from mlrun_cli.cli.options import (
    chosen_env_manager,
    json_option,
    quiet_logging,
    reuse_option,
    tracking_uri_option,
)
from mlrun_cli.cli.render import echo_json
from mlrun_cli.envs import MANAGERS

if TYPE_CHECKING:
    from mlrun_cli.core.settings import Settings
    from mlrun_cli.run.plan import RunPlan
    from mlrun_cli.run.run_key import Reuse, RunKey


@click.command()
@click.argument("uri")
@click.option(
    "-e",
    "--entry-point",
    default="main",
    show_default=True,
    help="Entry point of the MLproject, or a .py/.sh file of the project.",
)
@click.option(
    "-v",
    "--version",
    "version",
    metavar="VERSION",
    help="Git commit, branch or tag to run (git sources).",
)
@click.option(
    "-P",
    "--param-list",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter; repeat for more. Undeclared ones are passed as --NAME VALUE.",
)
@click.option(
    "--experiment-name",
    metavar="NAME",
    help="Record in this experiment, created if missing (default: MLFLOW_EXPERIMENT_NAME).",
)
@click.option(
    "--experiment-id",
    metavar="ID",
    help="Record in this existing experiment (default: MLFLOW_EXPERIMENT_ID, else 0).",
)
@click.option("--run-name", metavar="NAME", help="Name of the run (default: a random name).")
@click.option(
    "--env-manager",
    type=click.Choice(tuple(MANAGERS)),
    help="How to provide the environment (default: what the project declares).",
)
@click.option("--no-env", is_flag=True, help="Use the current interpreter (--env-manager local).")
@click.option(
    "--rebuild-env", is_flag=True, help="Build the environment again even if it is cached."
)
@click.option(
    "--require-clean", is_flag=True, help="Refuse to run from a git tree with uncommitted changes."
)
@click.option(
    "--no-digest",
    is_flag=True,
    help="Do not hash the data that path parameters name (huge inputs).",
)
@click.option(
    "--secret-param",
    "secret_params",
    multiple=True,
    metavar="NAME",
    help="Mask this parameter's value in everything recorded (besides *password*, *token*, "
    "*secret*, *key).",
)
@click.option(
    "-A",
    "--docker-args",
    "docker_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="An option for the container, as docker run --KEY VALUE (network, memory, gpus ...).",
)
@click.option(
    "--build-image", is_flag=True, help="Bake the project's code into a derived docker image."
)
@click.option("--docker-user", metavar="UID:GID", help="Run the container as this user.")
@click.option(
    "--backend",
    type=click.Choice(ALL_BACKENDS),
    help="Where the entry point runs: here (local; docker for docker_env), or as a job.",
)
@click.option(
    "--backend-config",
    metavar="FILE|JSON",
    help="The job backend's settings: a JSON/YAML file or inline JSON (see schemas/).",
)
@click.option("--detach", is_flag=True, help="Return once the job is submitted; print the run id.")
@click.option("--run-id", metavar="ID", help="Continue this existing run instead of creating one.")
@click.option(
    "--storage-dir",
    metavar="DIR",
    help="Where artifact URIs given to path parameters are downloaded (default: a cache folder).",
)
@click.option("-q", "--quiet", is_flag=True, help="Only the entry point's own output.")
@reuse_option
@tracking_uri_option
@json_option
def run(
    uri: str,
    entry_point: str,
    version: str | None,
    params: tuple[str, ...],
    experiment_name: str | None,
    experiment_id: str | None,
    run_name: str | None,
    env_manager: str | None,
    no_env: bool,
    rebuild_env: bool,
    require_clean: bool,
    no_digest: bool,
    secret_params: tuple[str, ...],
    docker_args: tuple[str, ...],
    build_image: bool,
    docker_user: str | None,
    backend: str | None,
    backend_config: str | None,
    detach: bool,
    run_id: str | None,
    storage_dir: str | None,
    quiet: bool,
    reuse: str | None,
    tracking_uri: str | None,
    as_json: bool,
) -> int:
    """Run an entry point of the project at URI and record the run.

    Exits with the entry point's own exit code; 130 after Ctrl-C; 2 for invalid input.
    With --json the entry point's stdout goes to stderr, so stdout holds only the JSON.
    """
    from mlrun_cli.cli.progress import TerminalProgress
    from mlrun_cli.core.settings import Settings
    from mlrun_cli.jobs.dispatch import execute
    from mlrun_cli.run.pipeline import RunOutput, plan_run
    from mlrun_cli.run.plan import RunRequest

    manager = chosen_env_manager(no_env, env_manager)
    quiet_logging(quiet)
    request = RunRequest(
        uri=uri,
        entry_point=entry_point,
        parameters=params,
        env_manager=manager,
        experiment_name=experiment_name,
        experiment_id=experiment_id,
        run_name=run_name,
        version=version,
        rebuild_env=rebuild_env,
        require_clean=require_clean,
        digest_inputs=not no_digest,
        secret_params=secret_params,
        docker_args=[_key_value(item) for item in docker_args],
        build_image=build_image,
        docker_user=docker_user,
        backend=backend,
        backend_config=backend_config,
        detach=detach,
        run_id=run_id,
        storage_dir=storage_dir,
    )

    settings = Settings.resolve(tracking_uri)
    plan = plan_run(request, settings)
    key, reused = _reuse(plan, settings, reuse, no_digest)
    if reused is not None:
        return _report_reuse(reused, as_json)
    stdout = sys.stderr.buffer if as_json else sys.stdout.buffer
    progress = TerminalProgress()
    try:
        result = execute(plan, settings, RunOutput(stdout, sys.stderr.buffer, progress), key)
    finally:
        progress.close()
    if detach:
        if as_json:
            echo_json("run", {"run_id": result.run.run_id, "job_id": result.job_id,
                              "backend": backend, "status": result.run.status.name})  # fmt: skip
        else:
            click.echo(result.run.run_id)
        return 0
    run = result.run
    total = ((run.end_time or run.start_time) - run.start_time) / 1000
    summary = (
        f"run {run.run_id} {run.status.name}: entry point {result.outcome.duration:.2f}s, "
        f"total {total:.2f}s with the environment (exit code {result.outcome.returncode})"
    )
    logging.getLogger("mlrun_cli").log(
        logging.INFO if result.exit_code == 0 else logging.WARNING, summary
    )
    if as_json:
        echo_json("run", result.as_json())
    return result.exit_code


def _key_value(item: str) -> tuple[str, str]:
    """`-A network=host` -> ("network", "host"); a bare `-A privileged` means true."""
    key, _, value = item.partition("=")
    return key.strip(), value


def _reuse(
    plan: RunPlan, settings: Settings, option: str | None, no_digest: bool
) -> tuple[RunKey | None, Reuse | None]:
    from mlrun_cli.errors import UsageError
    from mlrun_cli.run.run_key import reuse_earlier, reuse_mode

    mode = reuse_mode(option, settings.environ)
    if mode is None:
        return None, None
    if no_digest:
        raise UsageError("--reuse needs the input digests; drop --no-digest")
    return reuse_earlier(plan, settings, mode)


def _report_reuse(reused: Reuse, as_json: bool) -> int:
    earlier = reused.earlier.info.run_id
    recorded = reused.recorded.run_id if reused.recorded is not None else None
    message = f"identical to FINISHED run {earlier}; not run again"
    if recorded is not None:
        message += f" (recorded as run {recorded})"
    logging.getLogger("mlrun_cli").info(message)
    if as_json:
        echo_json("run", {"run_id": recorded or earlier, "reused_from": earlier,
                          "status": "FINISHED", "exit_code": 0})  # fmt: skip
    else:
        click.echo(earlier)
    return 0
