"""`mlrun sweep`: an entry point over a grid of parameter values."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from mlrun_cli.core.settings import Settings
    from mlrun_cli.sweeps.search import SearchResult
    from mlrun_cli.sweeps.search_plan import SearchPlan, SearchRequest


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
    help="Where the children run: local, or slurm (one job array); a search also takes ray "
    "(a Ray job per trial).",
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
@click.option(
    "--search",
    "sampler",
    metavar="tpe|random|grid",
    help="Search instead of running the whole grid: the sampler chooses each trial from the "
    "results so far. -P then takes spaces: loguniform(a,b), uniform(a,b), int(a,b), "
    "choice(x,y), lists or one value. Needs Optuna (mlrun-cli[search]).",
)
@click.option("--trials", type=int, metavar="N", help="Trials a search runs.")
@click.option(
    "--objective", metavar="METRIC", help="The metric a search optimises (its last value)."
)
@click.option(
    "--minimize/--maximize", "minimize", default=None, help="Which way the objective is better."
)
@click.option("--seed", type=int, metavar="S", help="The sampler's seed: the same trials again.")
@click.option(
    "--prune",
    metavar="median|hyperband",
    help="Stop trials whose objective falls behind, step by step (local trials, file store).",
)
@click.option(
    "--enqueue",
    "enqueue",
    multiple=True,
    metavar="NAME=V,NAME=V",
    help="A point the search tries first; repeatable.",
)
@click.option(
    "--resume",
    metavar="PARENT_RUN_ID",
    help="Continue the search of this parent run (its trials so far count) up to --trials.",
)
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
    sampler: str | None,
    trials: int | None,
    objective: str | None,
    minimize: bool | None,
    seed: int | None,
    prune: str | None,
    enqueue: tuple[str, ...],
    resume: str | None,
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
    from mlrun_cli.sweeps.search_plan import SearchRequest
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
    if sampler is not None or resume is not None:
        search = SearchRequest(
            sweep=request,
            sampler=sampler,
            trials=trials,
            objective=objective,
            direction=None if minimize is None else ("minimize" if minimize else "maximize"),
            seed=seed,
            prune=prune,
            enqueue=enqueue,
            resume=resume,
        )
        return _search(search, settings, as_json, quiet)
    _refuse_search_options(trials=trials, objective=objective, minimize=minimize, seed=seed,
                           prune=prune, enqueue=enqueue)  # fmt: skip
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


def _refuse_search_options(**given: object) -> None:
    """The search's options mean nothing to a grid sweep: say so rather than ignore them."""
    from mlrun_cli.errors import UsageError

    for name, value in given.items():
        if value not in (None, ()):
            option = "--minimize/--maximize" if name == "minimize" else f"--{name}"
            raise UsageError(f"{option} goes with --search (or --resume)")


def _search(request: SearchRequest, settings: Settings, as_json: bool, quiet: bool) -> int:
    from mlrun_cli.cli import live_table
    from mlrun_cli.sweeps.search_plan import plan_search

    plan = plan_search(request, settings)
    if live_table.wanted(as_json, quiet):
        result = _live_search(plan, settings)
    else:
        result = _plain_search(plan, settings, as_json)
    if as_json:
        echo_json("search", result.as_json())
        return result.exit_code
    objective = result.objective
    headers = ["#", "run", *result.searched, "status", "state", objective]
    rows = [
        [
            str(row.index),
            (row.run_id or "-")[:8],
            *row.params.values(),
            row.status,
            row.state or "-",
            _metric(row.value),
        ]
        for row in result.rows
    ]
    echo_table(headers, rows)
    best = result.best
    if best is None:
        status = f"search {result.parent_run_id}: {result.status.name}"
        click.echo(f"{status}, no trial logged {objective}")
    else:
        params = " ".join(f"{k}={v}" for k, v in best.params.items())
        click.echo(
            f"search {result.parent_run_id}: {result.status.name}, {result.executed} executed; "
            f"best trial {best.index} (run {best.run_id}): {objective}={best.value:.6g} {params}"
        )
    return result.exit_code


def _plain_search(plan: SearchPlan, settings: Settings, as_json: bool) -> SearchResult:
    """A line per told trial (CI, pipes, -q, --json: whatever reads it, reads lines)."""
    from mlrun_cli.cli.progress import TerminalProgress
    from mlrun_cli.sweeps.plan import SweepOutput
    from mlrun_cli.sweeps.search import execute_search

    progress = TerminalProgress()
    stdout = sys.stderr.buffer if as_json else sys.stdout.buffer
    try:
        return execute_search(plan, settings, SweepOutput(stdout, sys.stderr.buffer, progress))
    finally:
        progress.close()


# The loggers of a search's lines per trial (started, command, ended, told), left out under
# the live table; the env's build progress (the "mlrun_cli" logger's) still shows above it.
PER_TRIAL_LOGGERS = ("mlrun_cli.run", "mlrun_cli.sweeps", "mlrun_cli.jobs", "mlrun_cli.backends")


def _live_search(plan: SearchPlan, settings: Settings) -> SearchResult:
    """On a terminal: the trials as a table redrawn in place, the trials' output, mlrun's
    warnings and the env's build progress above it, mlrun's info lines per trial left out;
    the final table is printed where it was."""
    import contextlib
    import logging

    from mlrun_cli.cli.live_table import LiveTable
    from mlrun_cli.cli.progress import TerminalProgress
    from mlrun_cli.sweeps.plan import SweepOutput
    from mlrun_cli.sweeps.search import execute_search

    searched = tuple(d.name for d in plan.space.searched)
    table = LiveTable(sys.stdout, searched, plan.definition.objective)
    stderr_tty = sys.stderr.isatty()
    stderr = table.bytes_above() if stderr_tty else sys.stderr.buffer
    with contextlib.ExitStack() as stack:
        if stderr_tty:
            stack.enter_context(contextlib.redirect_stderr(table.text_above()))
        for name in PER_TRIAL_LOGGERS:
            logger = logging.getLogger(name)
            stack.callback(logger.setLevel, logger.level)
            logger.setLevel(max(logging.WARNING, logger.getEffectiveLevel()))
        stack.callback(table.close)
        progress = TerminalProgress()  # under the redirect: no spinner over the table
        stack.callback(progress.close)
        output = SweepOutput(table.bytes_above(), stderr, progress)
        return execute_search(plan, settings, output, watch=table.update)
