"""`mlrun envs ...`: what the environment cache holds, and cleaning it."""

from __future__ import annotations

import re

import click

from mlrun_cli.cli.options import json_option
from mlrun_cli.cli.render import echo_json, echo_table, timestamp

# `m` is minutes (as in `sleep` and systemd); a month is `mo`, so `1m` is never read as one.
_UNITS = {
    "s": 1, "min": 60, "m": 60, "h": 3600, "d": 86400, "w": 604800, "mo": 2592000, "y": 31536000
}  # fmt: skip


class Duration(click.ParamType):  # type: ignore[type-arg]  # generic only in click >= 8.2
    """`30d`, `12h`, `90m`, `45s`, `2w`, `3mo`, `1y` -> seconds."""

    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        match = re.fullmatch(r"(\d+(?:\.\d+)?)(mo|min|[smhdwy])", str(value).strip())
        if not match:
            self.fail(
                f"{value!r} is not a duration like 30d, 12h, 90m (minutes) or 3mo (months)",
                param,
                ctx,
            )
        return float(match.group(1)) * _UNITS[match.group(2)]


def human_size(size: int) -> str:
    amount = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GB"


@click.group()
def envs() -> None:
    """Inspect and clean the cache of built environments (MLRUN_ENV_ROOT overrides where)."""


@envs.command(name="list")
@json_option
def list_(as_json: bool) -> None:
    """List cached environments, most recently used first."""
    import os

    from mlrun_cli.commands.envs import list_environments

    records = list_environments(os.environ)
    if as_json:
        echo_json("envs", [r.as_json() for r in records])
        return
    headers = ["KEY", "MANAGER", "PYTHON", "SIZE", "CREATED", "LAST USED", "PROJECT"]
    rows = [
        [
            r.key,
            r.manager,
            r.python or "-",
            human_size(r.size_bytes),
            timestamp(r.created),
            timestamp(r.last_used),
            r.project,
        ]
        for r in records
    ]
    echo_table(headers, rows)


@envs.command()
@click.option(
    "--older-than",
    type=Duration(),
    default="30d",
    show_default=True,
    help="Remove environments not used for this long: s, m (minutes), h, d, w, mo (30 days), "
    "y; e.g. 30d, 12h, 90m, 3mo.",
)
@click.option("--all", "remove_all", is_flag=True, help="Remove every cached environment.")
def prune(older_than: float, remove_all: bool) -> None:
    """Remove environments (and git source checkouts) unused for a while, or all of them."""
    import os

    from mlrun_cli.commands.envs import prune as prune_caches

    report = prune_caches(os.environ, None if remove_all else older_than)
    removed, checkouts = report.environments, report.checkouts
    freed = human_size(sum(r.size_bytes for r in removed))
    message = f"Removed {len(removed)} environment{'s' if len(removed) != 1 else ''} ({freed})"
    if checkouts:
        message += f" and {checkouts} source checkout{'s' if checkouts != 1 else ''}"
    click.echo(message)
