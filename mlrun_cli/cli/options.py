"""Options shared by several commands, declared once.

The options that fill a RunRequest are click.Option objects that `mlrun run` and `mlrun sweep`
both take (`click.command(params=...)`), so an option's names, type, default and help text
cannot drift apart between the commands; `run_request` turns their parsed values into the
RunRequest. An option that means something else in a sweep (-P takes a list of values there,
--run-name names the parent run) is a separate object with its own help. `mlrun reproduce`
takes none of them: its RunRequest comes from the recorded run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from mlrun_cli.run.plan import RunRequest

F = TypeVar("F", bound=Callable[..., Any])

tracking_uri_option: Callable[[F], F] = click.option(
    "--tracking-uri",
    metavar="URI",
    help=(
        "Store directory, file: URI, http(s):// tracking server or database URI "
        "(default: MLFLOW_TRACKING_URI, else ./mlruns)."
    ),
)
json_option: Callable[[F], F] = click.option(
    "--json", "as_json", is_flag=True, help="Print a versioned JSON document instead of text."
)
reuse_option: Callable[[F], F] = click.option(
    "--reuse",
    type=click.Choice(["skip", "record"]),
    is_flag=False,
    flag_value="skip",
    default=None,
    help="Do not run what an identical earlier FINISHED run did: print its id (--reuse), or "
    "record a run with its metrics (--reuse=record). Default: MLRUN_REUSE.",
)

# -- the options that fill a RunRequest; each parameter name is the field it fills, except
# --no-env (with --env-manager), --no-digest and -A, which run_request converts ----------------

entry_point_option = click.Option(
    ["-e", "--entry-point"],
    default="main",
    show_default=True,
    help="Entry point of the MLproject, or a .py/.sh file of the project.",
)
version_option = click.Option(
    ["-v", "--version", "version"],
    metavar="VERSION",
    help="Git commit, branch or tag to run (git sources).",
)
run_parameters_option = click.Option(
    ["-P", "--param-list", "parameters"],
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter; repeat for more. Undeclared ones are passed as --NAME VALUE.",
)
sweep_parameters_option = click.Option(
    ["-P", "--param-list", "parameters"],
    multiple=True,
    metavar="NAME=VALUES",
    help="Values of a parameter: a,b,c (\\, for a comma), range(start, stop, step), "
    "glob(data/*.csv) or one value. Repeat for more parameters.",
)
experiment_name_option = click.Option(
    ["--experiment-name"],
    metavar="NAME",
    help="Record in this experiment, created if missing (default: MLFLOW_EXPERIMENT_NAME).",
)
experiment_id_option = click.Option(
    ["--experiment-id"],
    metavar="ID",
    help="Record in this existing experiment (default: MLFLOW_EXPERIMENT_ID, else 0).",
)
run_name_option = click.Option(
    ["--run-name"], metavar="NAME", help="Name of the run (default: a random name)."
)
parent_run_name_option = click.Option(
    ["--run-name"],
    metavar="NAME",
    help="Name of the parent run (default: a random name); child N is named NAME-N.",
)
no_env_option = click.Option(
    ["--no-env"], is_flag=True, help="Use the current interpreter (--env-manager local)."
)
rebuild_env_option = click.Option(
    ["--rebuild-env"], is_flag=True, help="Build the environment again even if it is cached."
)
require_clean_option = click.Option(
    ["--require-clean"],
    is_flag=True,
    help="Refuse to run from a git tree with uncommitted changes.",
)
no_digest_option = click.Option(
    ["--no-digest"],
    is_flag=True,
    help="Do not hash the data that path parameters name (huge inputs).",
)
secret_param_option = click.Option(
    ["--secret-param", "secret_params"],
    multiple=True,
    metavar="NAME",
    help="Mask this parameter's value in everything recorded (besides *password*, *token*, "
    "*secret*, *key).",
)
docker_args_option = click.Option(
    ["-A", "--docker-args", "docker_args"],
    multiple=True,
    metavar="KEY=VALUE",
    help="An option for the container, as docker run --KEY VALUE (network, memory, gpus ...).",
)
build_image_option = click.Option(
    ["--build-image"], is_flag=True, help="Bake the project's code into a derived docker image."
)
docker_user_option = click.Option(
    ["--docker-user"], metavar="UID:GID", help="Run the container as this user."
)
backend_config_option = click.Option(
    ["--backend-config"],
    metavar="FILE|JSON",
    help="The job backend's settings: a JSON/YAML file or inline JSON (see schemas/).",
)
detach_option = click.Option(
    ["--detach"], is_flag=True, help="Return once the job is submitted; print the run id."
)
run_id_option = click.Option(
    ["--run-id"], metavar="ID", help="Continue this existing run instead of creating one."
)
storage_dir_option = click.Option(
    ["--storage-dir"],
    metavar="DIR",
    help="Where artifact URIs given to path parameters are downloaded (default: a cache folder).",
)


@cache
def env_manager_option() -> click.Option:
    """One object, made on first use: the choices come from the env managers' registry, which
    the commands that import this module for --tracking-uri or --json do not need."""
    from mlrun_cli.envs import MANAGERS

    return click.Option(
        ["--env-manager"],
        type=click.Choice(tuple(MANAGERS)),
        help="How to provide the environment (default: what the project declares).",
    )


@cache
def backend_option() -> click.Option:
    """One object, made on first use (as env_manager_option): the backends' registry."""
    from mlrun_cli.backends import backend_names

    return click.Option(  # checked by plan_run, so the CLI and the Python API say the same
        ["--backend"],
        metavar="|".join(backend_names()),
        help="Where the entry point runs: here (local; docker for docker_env), or as a job.",
    )


def run_options() -> list[click.Parameter]:
    """`mlrun run`'s RunRequest options, in --help order. A new list each time: click.command
    appends the command's decorated parameters to the list it is given."""
    return [
        entry_point_option,
        version_option,
        run_parameters_option,
        experiment_name_option,
        experiment_id_option,
        run_name_option,
        env_manager_option(),
        no_env_option,
        rebuild_env_option,
        require_clean_option,
        no_digest_option,
        secret_param_option,
        docker_args_option,
        build_image_option,
        docker_user_option,
        backend_option(),
        backend_config_option,
        detach_option,
        run_id_option,
        storage_dir_option,
    ]


def sweep_options() -> list[click.Parameter]:
    """`mlrun sweep`'s RunRequest options, in --help order (a new list, as run_options)."""
    return [
        entry_point_option,
        sweep_parameters_option,
        version_option,
        experiment_name_option,
        experiment_id_option,
        parent_run_name_option,
        env_manager_option(),
        no_env_option,
        rebuild_env_option,
        no_digest_option,
        backend_config_option,
    ]


def run_request(uri: str, values: Mapping[str, Any]) -> RunRequest:
    """The RunRequest that the parsed values of run_options or sweep_options describe; a field
    whose option the command does not take keeps the RunRequest default. `Any`: click's
    parsed values differ in type from option to option."""
    from mlrun_cli.run.plan import RunRequest

    given = dict(values)
    env_manager = _chosen_env_manager(given.pop("no_env", False), given.pop("env_manager", None))
    if "no_digest" in given:
        given["digest_inputs"] = not given.pop("no_digest")
    if "docker_args" in given:
        given["docker_args"] = tuple(_key_value(item) for item in given["docker_args"])
    return RunRequest(uri=uri, env_manager=env_manager, **given)


def _key_value(item: str) -> tuple[str, str]:
    """`-A network=host` -> ("network", "host"); a bare `-A privileged` means true."""
    key, _, value = item.partition("=")
    return key.strip(), value


def _chosen_env_manager(no_env: bool, env_manager: str | None) -> str | None:
    """`--no-env` is `--env-manager local`; with any other manager it is a usage error."""
    if no_env and env_manager not in (None, "local"):
        from mlrun_cli.errors import UsageError

        raise UsageError(f"--no-env contradicts --env-manager {env_manager}")
    return "local" if no_env else env_manager


def quiet_logging(quiet: bool) -> None:
    """`-q`: only the entry point's own output, and mlrun's warnings."""
    if quiet:
        logging.getLogger("mlrun_cli").setLevel(logging.WARNING)
