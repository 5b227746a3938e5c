"""Options shared by several commands, declared once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import click

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


def chosen_env_manager(no_env: bool, env_manager: str | None) -> str | None:
    """`--no-env` is `--env-manager local`; with any other manager it is a usage error."""
    if no_env and env_manager not in (None, "local"):
        from mlrun_cli.errors import UsageError

        raise UsageError(f"--no-env contradicts --env-manager {env_manager}")
    return "local" if no_env else env_manager


def quiet_logging(quiet: bool) -> None:
    """`-q`: only the entry point's own output, and mlrun's warnings."""
    if quiet:
        logging.getLogger("mlrun_cli").setLevel(logging.WARNING)
