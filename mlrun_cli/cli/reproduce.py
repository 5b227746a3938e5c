"""`mlrun reproduce`: run a recorded run again from its record, and compare its metrics."""

from __future__ import annotations

import sys

import click

from mlrun_cli.cli.options import json_option, tracking_uri_option
from mlrun_cli.cli.render import echo_json, echo_table


@click.command()
@click.argument("run_id")
@click.option("--dry-run", is_flag=True, help="Print what would be done, and do nothing.")
@click.option(
    "--rtol",
    type=float,
    default=1e-6,
    show_default=True,
    help="Largest relative difference for a metric to count as reproduced.",
)
@click.option(
    "--allow-data-drift",
    is_flag=True,
    help="Run even when an input's content changed since the original run (a warning).",
)
@tracking_uri_option
@json_option
def reproduce(
    run_id: str,
    dry_run: bool,
    rtol: float,
    allow_data_drift: bool,
    tracking_uri: str | None,
    as_json: bool,
) -> int:
    """Run RUN_ID again from its record: its commit and recorded diff, its locked packages,
    its parameters, and the same input data; then compare the metrics. Paths inside the
    original project are read and written in the new checkout, never in your working tree.

    Exits 1 when a metric differs by more than --rtol; 2 when an input changed (unless
    --allow-data-drift); 5 when the commit cannot be reached.
    """
    from mlrun_cli.cli.progress import TerminalProgress
    from mlrun_cli.core.settings import Settings
    from mlrun_cli.run.pipeline import RunOutput
    from mlrun_cli.run.reproduce import (
        ReproduceRequest,
        describe_plan,
        execute_reproduce,
        plan_reproduce,
    )

    settings = Settings.resolve(tracking_uri)
    plan = plan_reproduce(ReproduceRequest(run_id, rtol, allow_data_drift), settings)
    if dry_run:
        for line in describe_plan(plan):
            click.echo(line)
        return 0
    stdout = sys.stderr.buffer if as_json else sys.stdout.buffer
    progress = TerminalProgress()
    try:
        result = execute_reproduce(plan, settings, RunOutput(stdout, sys.stderr.buffer, progress))
    finally:
        progress.close()
    if as_json:
        echo_json("reproduce", result.as_json())
        return result.exit_code
    rows = [
        [
            m.name,
            _number(m.original),
            _number(m.reproduced),
            "yes" if m.matches else "NO",
        ]
        for m in result.metrics
    ]
    echo_table(["metric", "original", "reproduced", "match"], rows)
    verdict = "reproduced" if result.exit_code == 0 else "NOT reproduced"
    click.echo(
        f"run {result.run.run.run_id} ({result.run.run.status.name}) of run "
        f"{result.original_run_id}: {verdict} (rtol {rtol:g})"
    )
    return result.exit_code


def _number(value: float | None) -> str:
    return "-" if value is None else repr(value)
