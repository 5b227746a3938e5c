"""Options shared by several commands, declared once."""

from __future__ import annotations

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
