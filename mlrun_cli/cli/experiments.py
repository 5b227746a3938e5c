"""`mlrun experiments ...`: create, list, rename, delete, restore, describe."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from mlrun_cli.cli.options import json_option, tracking_uri_option
from mlrun_cli.cli.render import echo_json, echo_table, timestamp

F = TypeVar("F", bound=Callable[..., Any])


def _experiment_ref_options(func: F) -> F:
    func = click.option("--experiment-name", "-n", metavar="NAME", help="The experiment's name.")(
        func
    )
    return click.option("--experiment-id", "-x", metavar="ID", help="The experiment's id.")(func)


@click.group()
def experiments() -> None:
    """Manage experiments in the tracking store."""


@experiments.command()
@click.option("--experiment-name", "-n", required=True, metavar="NAME", help="Name to create.")
@click.option("--artifact-location", "-l", metavar="URI", help="Where its runs keep artifacts.")
@tracking_uri_option
def create(experiment_name: str, artifact_location: str | None, tracking_uri: str | None) -> None:
    """Create an experiment; an existing name is an error."""
    from mlrun_cli.commands import experiments as core
    from mlrun_cli.core.settings import Settings

    experiment = core.create(Settings.resolve(tracking_uri), experiment_name, artifact_location)
    click.echo(f"Created experiment '{experiment.name}' with id {experiment.experiment_id}")


@experiments.command(name="list")
@click.option(
    "--view",
    type=click.Choice(["active_only", "deleted_only", "all"]),
    default="active_only",
    show_default=True,
    help="Which experiments to show.",
)
@tracking_uri_option
@json_option
def list_(view: str, tracking_uri: str | None, as_json: bool) -> None:
    """List experiments, oldest first."""
    from mlrun_cli.commands import experiments as core
    from mlrun_cli.core.settings import Settings

    found = core.list_experiments(Settings.resolve(tracking_uri), view)
    if as_json:
        echo_json("experiments", [e.as_json() for e in found])
        return
    headers = ["EXPERIMENT ID", "NAME", "STAGE", "CREATED", "ARTIFACT LOCATION"]
    rows = [
        [
            e.experiment_id,
            e.name,
            e.lifecycle_stage,
            timestamp(e.creation_time),
            e.artifact_location,
        ]
        for e in found
    ]
    echo_table(headers, rows)


@experiments.command()
@_experiment_ref_options
@click.option("--new-name", required=True, metavar="NAME", help="The new name.")
@tracking_uri_option
def rename(
    experiment_id: str | None, experiment_name: str | None, new_name: str, tracking_uri: str | None
) -> None:
    """Rename an active experiment."""
    from mlrun_cli.commands import experiments as core
    from mlrun_cli.core.settings import Settings

    ref = core.ExperimentRef(experiment_id, experiment_name)
    experiment = core.rename(Settings.resolve(tracking_uri), ref, new_name)
    click.echo(f"Renamed experiment {experiment.experiment_id} to '{experiment.name}'")


@experiments.command()
@_experiment_ref_options
@tracking_uri_option
def delete(
    experiment_id: str | None, experiment_name: str | None, tracking_uri: str | None
) -> None:
    """Soft-delete an experiment and its runs (restore brings them back)."""
    from mlrun_cli.commands import experiments as core
    from mlrun_cli.core.settings import Settings

    ref = core.ExperimentRef(experiment_id, experiment_name)
    experiment = core.delete(Settings.resolve(tracking_uri), ref)
    click.echo(f"Experiment with id {experiment.experiment_id} has been deleted.")


@experiments.command()
@_experiment_ref_options
@tracking_uri_option
def restore(
    experiment_id: str | None, experiment_name: str | None, tracking_uri: str | None
) -> None:
    """Restore a deleted experiment and its runs."""
    from mlrun_cli.commands import experiments as core
    from mlrun_cli.core.settings import Settings

    ref = core.ExperimentRef(experiment_id, experiment_name)
    experiment = core.restore(Settings.resolve(tracking_uri), ref)
    click.echo(f"Experiment with id {experiment.experiment_id} has been restored.")


@experiments.command()
@_experiment_ref_options
@tracking_uri_option
@json_option
def describe(
    experiment_id: str | None, experiment_name: str | None, tracking_uri: str | None, as_json: bool
) -> None:
    """Show one experiment: its fields, tags and how many runs it has by status."""
    from mlrun_cli.commands import experiments as core
    from mlrun_cli.core.settings import Settings

    ref = core.ExperimentRef(experiment_id, experiment_name)
    summary = core.describe(Settings.resolve(tracking_uri), ref)
    if as_json:
        echo_json("experiment", summary.as_json())
        return
    e = summary.experiment
    runs = ", ".join(f"{status} {n}" for status, n in summary.run_counts.items()) or "none"
    for label, value in (
        ("experiment_id", e.experiment_id),
        ("name", e.name),
        ("lifecycle_stage", e.lifecycle_stage),
        ("artifact_location", e.artifact_location),
        ("created", timestamp(e.creation_time)),
        ("last_updated", timestamp(e.last_update_time)),
        ("runs", runs),
    ):
        click.echo(f"{label}: {value}")
    for key, value in sorted(e.tags.items()):
        click.echo(f"tag {key}: {value}")
