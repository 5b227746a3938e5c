"""`mlrun sweep`: an entry point over a grid of parameter values."""

from __future__ import annotations

import sys
from typing import Any

import click

from mlrun_cli.cli.options import (
    json_option,
    quiet_logging,
    reuse_option,
    run_request,
    sweep_options,
    tracking_uri_option,
)
from mlrun_cli.cli.render import echo_json, echo_table


@click.command(params=sweep_options())
@click.argument("uri")
@click.option("--zip", "zipped", is_flag=True, help="Pair the lists instead of crossing them.")
@click.option("--max-runs", default=1000, show_default=True, help="Refuse a grid with more points.")
@click.option(
    "-j", "--jobs", default=1, show_default=True,
    help="Children run at once (on Slurm, the job array's %N throttle); children that write "
    "the same output path take turns.",
)  # fmt: skip
@click.option(
    "--fail-fast",
    is_flag=True,
    help="Start no child after the first failure (on Slurm: cancel the rest of the array; "
    "its pending and running children end KILLED).",
)
@click.option(
    "--backend",
    default="local",
    show_default=True,
    metavar="NAME",
    help="Where the children run: local, or slurm (one job array; ray is not available yet).",
)
@reuse_option
@click.option(
    "--metric", "metrics", multiple=True, metavar="NAME", help="A metric column of the table."
)
@click.option(
    "--order-by",
    metavar="KEY [ASC|DESC]",
    help="Sort the table: metrics.NAME or params.NAME, then ASC (default) or DESC.",
)
@click.option("-q", "--quiet", is_flag=True, help="Only the children's output and the table.")
@tracking_uri_option
@json_option
def sweep(
    uri: str,
    zipped: bool,
    max_runs: int,
    jobs: int,
    fail_fast: bool,
    backend: str,
    reuse: str | None,
    metrics: tuple[str, ...],
    order_by: str | None,
    quiet: bool,
    tracking_uri: str | None,
    as_json: bool,
    **options: Any,  # the values of sweep_options(), of several types
) -> int:
    """Run an entry point for every point of a grid: a parent run with one child per point.

    Each child's output is shown with its number in front and kept whole in its own logs.
    Exits 0 only when every child finished; 130 after Ctrl-C (every child KILLED). With
    --backend slurm the children are the tasks of one job array, and Ctrl-C cancels it.
    """
    from mlrun_cli.cli.progress import TerminalProgress
    from mlrun_cli.core.settings import Settings
    from mlrun_cli.run.run_key import reuse_mode
    from mlrun_cli.sweeps.plan import SweepOutput, SweepRequest
    from mlrun_cli.sweeps.sweep import execute_sweep, plan_sweep

    run = run_request(uri, options)
    quiet_logging(quiet)
    settings = Settings.resolve(tracking_uri)
    request = SweepRequest(
        run=run,
        zipped=zipped,
        max_runs=max_runs,
        jobs=jobs,
        fail_fast=fail_fast,
        backend=backend,
        reuse=reuse_mode(reuse, settings.environ),
        metrics=metrics,
        order_by=order_by,
    )
    plan = plan_sweep(request, settings)
    progress = TerminalProgress()
    stdout = sys.stderr.buffer if as_json else sys.stdout.buffer
    try:
        result = execute_sweep(plan, settings, SweepOutput(stdout, sys.stderr.buffer, progress))
    finally:
        progress.close()
    if as_json:
        echo_json("sweep", result.as_json())
        return result.exit_code
    headers = ["#", "run", *result.varying, "status", "duration", *result.metrics]
    rows = [
        [
            str(row.index),
            (row.run_id or "-")[:8] + (" (reused)" if row.reused_from else ""),
            *(row.values.get(name, "") for name in result.varying),
            row.status,
            "-" if row.duration is None else f"{row.duration:.2f}s",
            *(_metric(row.metrics.get(name)) for name in result.metrics),
        ]
        for row in result.rows
    ]
    echo_table(headers, rows)
    parent = result.parent_run_id or "none (every point was run before)"
    click.echo(f"sweep {parent}: {result.status.name}, {result.executed} executed")
    return result.exit_code


def _metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"
