"""`mlrun sync`: replay what finished runs could not deliver to their tracking servers."""

from __future__ import annotations

import click

from mlrun_cli.cli.options import json_option
from mlrun_cli.cli.render import echo_json


@click.command()
@json_option
def sync(as_json: bool) -> None:
    """Send runs' final status, tags and artifacts kept in the outbox to their servers.

    A run whose server went away mid-run keeps them in the outbox (under the user cache
    directory). Running sync again after it succeeded changes nothing.
    """
    from mlrun_cli.commands.sync import sync as sync_outbox
    from mlrun_cli.core.settings import Settings
    from mlrun_cli.errors import StoreError

    report = sync_outbox(Settings.resolve())
    if as_json:
        echo_json("sync", report.as_json())
    else:
        for run_id, uri in report.sent:
            click.echo(f"run {run_id}: sent to {uri}")
        if not report.sent and not report.kept:
            click.echo("nothing to send: the outbox is empty")
    if report.kept:
        reasons = "; ".join(f"run {run_id}: {why}" for run_id, why in report.kept)
        raise StoreError(f"{len(report.kept)} run(s) still waiting in the outbox ({reasons})")
