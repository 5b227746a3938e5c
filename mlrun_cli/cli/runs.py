"""`mlrun runs ...`: list (MLflow's filter syntax), describe, compare, delete, restore, gc."""

from __future__ import annotations

import csv
import sys
from typing import Any

import click

from mlrun_cli.cli.differences import difference_cells
from mlrun_cli.cli.options import json_option, tracking_uri_option
from mlrun_cli.cli.render import echo_json, echo_table, timestamp
from mlrun_cli.tracking.tags import DURATION_TAG, REASON_TAG

STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
MAX_VALUE_COLUMNS = 8


@click.group()
def runs() -> None:
    """Query and manage recorded runs."""


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f}s" if seconds < 60 else f"{seconds / 60:.1f}m"


def _value(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


@runs.command(name="list")
@click.option(
    "--experiment-name",
    "-n",
    "names",
    multiple=True,
    metavar="NAME",
    help="Only this experiment (repeatable; default: all active ones).",
)
@click.option(
    "--experiment-id",
    "-x",
    "ids",
    multiple=True,
    metavar="ID",
    help="Only this experiment id (repeatable).",
)
@click.option(
    "--filter",
    "filter_string",
    metavar="EXPR",
    help="MLflow's filter syntax: \"metrics.acc > 0.9 and params.lr = '0.1'\".",
)
@click.option(
    "--order-by",
    multiple=True,
    metavar="KEY [ASC|DESC]",
    help='Sort by this key, e.g. "metrics.acc DESC" (repeatable).',
)
@click.option(
    "--max-results", type=int, default=1000, show_default=True, help="At most this many runs."
)
@click.option("--status", type=click.Choice(STATUSES), help="Only runs with this status.")
@click.option(
    "--view",
    type=click.Choice(["active_only", "deleted_only", "all"]),
    default="active_only",
    show_default=True,
    help="Active, deleted or all runs.",
)
@click.option("--csv", "as_csv", is_flag=True, help="CSV with every param and metric.")
@tracking_uri_option
@json_option
def list_(
    names: tuple[str, ...],
    ids: tuple[str, ...],
    filter_string: str | None,
    order_by: tuple[str, ...],
    max_results: int,
    status: str | None,
    view: str,
    as_csv: bool,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """List runs, newest first: id, name, experiment (when several), status, start, total time
    (env build included), the entry point's own time, and the params and metrics that differ."""
    from mlrun_cli.commands.runs import RunQuery, list_runs
    from mlrun_cli.core.settings import Settings

    query = RunQuery(ids, names, filter_string, order_by, max_results, status, view)
    listing = list_runs(Settings.resolve(tracking_uri), query)
    if as_json:
        echo_json("runs", [_run_json(r, listing.experiment_names) for r in listing.runs])
    elif as_csv:
        _write_csv(listing)
    else:
        _print_table(listing, every_key=filter_string is not None)


def _run_json(run: Any, names: dict[str, str]) -> dict[str, Any]:
    info = run.info
    return {
        "run_id": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "experiment_name": names.get(info.experiment_id),
        "status": info.status.name,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "params": run.params,
        "metrics": run.metrics,
        "tags": run.tags,
    }


def _print_table(listing: Any, every_key: bool) -> None:
    columns = _value_columns(listing, every_key)[:MAX_VALUE_COLUMNS]
    several = len({r.info.experiment_id for r in listing.runs}) > 1
    headers = ["RUN ID", "NAME", *(["EXPERIMENT"] if several else []), "STATUS", "START"]
    headers += ["TOTAL", "ENTRY POINT"] + [f"{s}.{k}" for s, k in columns]
    rows = [
        [
            r.info.run_id[:8],
            r.info.run_name,
            *([listing.experiment_names.get(r.info.experiment_id, r.info.experiment_id)]
              if several else []),
            r.info.status.name,
            timestamp(r.info.start_time),
            _duration(r.duration_seconds),
            _duration(_entry_point_seconds(r.tags)),
        ]
        + [_value(getattr(r, section).get(key)) for section, key in columns]
        for r in listing.runs
    ]  # fmt: skip
    echo_table(headers, rows)


def _value_columns(listing: Any, every_key: bool) -> list[tuple[str, str]]:
    """The params and metrics that differ, first; a filtered listing (often one run, or runs
    alike in what was filtered on) shows every other one after them, so that filtering never
    hides the values a plain listing shows."""
    params, metrics = listing.differing_keys()
    columns = [("params", k) for k in params] + [("metrics", k) for k in metrics]
    if every_key:
        every = [(s, k) for s in ("params", "metrics") for k in _keys(listing.runs, s)]
        columns += [column for column in every if column not in columns]
    return columns


def _keys(runs: Any, section: str) -> list[str]:
    return sorted({key for run in runs for key in getattr(run, section)})


def _entry_point_seconds(tags: dict[str, str]) -> float | None:
    """How long the entry point itself ran (the run's total also counts the env build)."""
    try:
        return float(tags[DURATION_TAG])
    except (KeyError, ValueError):
        return None


def _write_csv(listing: Any) -> None:
    params = _keys(listing.runs, "params")
    metrics = _keys(listing.runs, "metrics")
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(
        [
            "run_id",
            "run_name",
            "experiment_id",
            "status",
            "start_time",
            "end_time",
            *(f"params.{k}" for k in params),
            *(f"metrics.{k}" for k in metrics),
        ]
    )
    for r in listing.runs:
        writer.writerow(
            [
                r.info.run_id,
                r.info.run_name,
                r.info.experiment_id,
                r.info.status.name,
                r.info.start_time,
                r.info.end_time or "",
                *(r.params.get(k, "") for k in params),
                *(r.metrics.get(k, "") for k in metrics),
            ]
        )


@runs.command()
@click.argument("run_id")
@tracking_uri_option
@json_option
def describe(run_id: str, tracking_uri: str | None, as_json: bool) -> None:
    """Show one run (a unique prefix of its id is enough)."""
    from mlrun_cli.commands.runs import describe as describe_run
    from mlrun_cli.core.settings import Settings

    details = describe_run(Settings.resolve(tracking_uri), run_id)
    document = details.as_json()
    if as_json:
        echo_json("run", document)
        return
    for label in ("run_id", "run_name", "experiment_name", "status", "lifecycle_stage", "user_id"):
        click.echo(f"{label}: {document[label]}")
    for problem in document["damage"]:
        click.echo(f"damaged: {problem} (see `mlrun doctor`)")
    click.echo(f"start: {timestamp(document['start_time'])}")
    entry_point = _duration(_entry_point_seconds(document["tags"]))
    click.echo(f"duration: {_duration(document['duration_seconds'])} (entry point: {entry_point})")
    for section in ("params", "metrics", "tags"):
        click.echo(f"{section}:")
        for key, value in sorted(document[section].items()):
            shown = _value(value).replace("\n", " ")
            click.echo(f"  {key}: {shown[:200]}")
    click.echo("artifacts:")
    for artifact in document["artifacts"]:
        click.echo(f"  {artifact['path']} ({artifact['size']} bytes)")
    provenance = document["provenance"]
    if provenance:
        source = provenance.get("source", {})
        env = provenance.get("environment", {})
        click.echo("provenance:")
        click.echo(f"  source: {source.get('uri')} ({source.get('kind')})")
        click.echo(
            f"  commit: {source.get('commit') or '-'}{' (dirty)' if source.get('dirty') else ''}"
        )
        click.echo(f"  environment: {env.get('manager')} {env.get('key') or ''}".rstrip())
        click.echo(f"  command: {provenance.get('command')}")


@runs.command()
@click.argument("left")
@click.argument("right")
@tracking_uri_option
@json_option
def compare(left: str, right: str, tracking_uri: str | None, as_json: bool) -> None:
    """Show only what differs between two runs (ids or unique prefixes)."""
    from mlrun_cli.commands.runs import compare as compare_runs
    from mlrun_cli.core.settings import Settings

    result = compare_runs(Settings.resolve(tracking_uri), left, right)
    a, b = result.left.info.run_id, result.right.info.run_id
    if as_json:
        echo_json(
            "comparison",
            {
                "left": a,
                "right": b,
                "differences": [
                    {"section": d.section, "key": d.key, "left": d.left, "right": d.right}
                    for d in result.differences
                ],
            },
        )
        return
    if not result.differences:
        click.echo(f"runs {a[:8]} and {b[:8]} do not differ")
        return
    rows = [[d.section, d.key, *difference_cells(d.left, d.right)] for d in result.differences]
    echo_table(["SECTION", "KEY", a[:8], b[:8]], rows)


@runs.command()
@click.argument("run_id")
@tracking_uri_option
def delete(run_id: str, tracking_uri: str | None) -> None:
    """Soft-delete a run (MLflow semantics: lifecycle_stage deleted, deleted_time)."""
    from mlrun_cli.commands.runs import set_lifecycle
    from mlrun_cli.core.settings import Settings
    from mlrun_cli.tracking.entities import DELETED

    run = set_lifecycle(Settings.resolve(tracking_uri), run_id, DELETED)
    click.echo(f"Run {run.info.run_id} has been deleted.")


@runs.command()
@click.argument("run_id")
@tracking_uri_option
def restore(run_id: str, tracking_uri: str | None) -> None:
    """Restore a deleted run."""
    from mlrun_cli.commands.runs import set_lifecycle
    from mlrun_cli.core.settings import Settings
    from mlrun_cli.tracking.entities import ACTIVE

    run = set_lifecycle(Settings.resolve(tracking_uri), run_id, ACTIVE)
    click.echo(f"Run {run.info.run_id} has been restored.")


@runs.command()
@tracking_uri_option
def gc(tracking_uri: str | None) -> None:
    """Mark KILLED the runs stuck RUNNING whose mlrun process on this host is gone (killing
    what is left of their entry points), and settle submitted runs whose job ended unrecorded
    from the engine's state (Slurm, Ray)."""
    from mlrun_cli.commands.runs import gc as collect
    from mlrun_cli.core.settings import Settings
    from mlrun_cli.jobs.control import reconcile_jobs

    settings = Settings.resolve(tracking_uri)
    stuck = collect(settings)
    for item in stuck:
        info = item.run.info
        ended = "; its leftover processes were killed" if item.group_ended else ""
        what = "marked KILLED" if item.marked_killed else f"had ended {info.status.name}"
        click.echo(f"Run {info.run_id} ({info.run_name}) {what}{ended}")
    settled = reconcile_jobs(settings)
    for run in settled:
        reason = run.tags.get(REASON_TAG, "")
        click.echo(f"Run {run.info.run_id} ({run.info.run_name}) marked "
                   f"{run.info.status.name}: {reason}")  # fmt: skip
    found = len(stuck) + len(settled)
    click.echo(f"{found} stuck run{'s' if found != 1 else ''} found")


@runs.command()
@click.argument("run_ids", nargs=-1, required=True)
@tracking_uri_option
@json_option
def wait(run_ids: tuple[str, ...], tracking_uri: str | None, as_json: bool) -> int:
    """Wait until each run ends; exit with the first failed run's exit code, as `mlrun run`."""
    from mlrun_cli.core.settings import Settings
    from mlrun_cli.jobs.control import wait_runs

    waited = wait_runs(Settings.resolve(tracking_uri), run_ids)
    if as_json:
        echo_json("runs", [{"run_id": w.run.info.run_id, "status": w.run.info.status.name,
                            "exit_code": w.exit_code} for w in waited])  # fmt: skip
    else:
        for w in waited:
            click.echo(f"{w.run.info.run_id} {w.run.info.status.name} (exit code {w.exit_code})")
    return next((w.exit_code for w in waited if w.exit_code != 0), 0)


@runs.command()
@click.argument("run_id")
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing what the run writes until it ends."
)
@tracking_uri_option
def logs(run_id: str, follow: bool, tracking_uri: str | None) -> None:
    """Print the captured stdout (and stderr, on stderr) of a run on any backend."""
    from mlrun_cli.core.settings import Settings
    from mlrun_cli.jobs.control import follow_logs

    follow_logs(Settings.resolve(tracking_uri), run_id, follow, sys.stdout.buffer,
                sys.stderr.buffer)  # fmt: skip


@runs.command()
@click.argument("run_id")
@tracking_uri_option
def cancel(run_id: str, tracking_uri: str | None) -> None:
    """Cancel a submitted run's job (scancel, Ray stop_job); the run ends KILLED."""
    from mlrun_cli.core.settings import Settings
    from mlrun_cli.jobs.control import cancel_run

    run = cancel_run(Settings.resolve(tracking_uri), run_id)
    click.echo(f"Run {run.info.run_id} {run.info.status.name}")
