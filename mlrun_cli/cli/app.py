"""The `mlrun` command group."""

from __future__ import annotations

import click

from mlrun_cli import __version__
from mlrun_cli.cli.envs import envs
from mlrun_cli.cli.experiments import experiments
from mlrun_cli.cli.run import run
from mlrun_cli.cli.runs import runs
from mlrun_cli.cli.sync import sync
from mlrun_cli.cli.ui import ui
from mlrun_cli.cli.validate import validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mlrun", message="%(prog)s %(version)s")
def cli() -> None:
    """Run MLflow MLproject files fast, and record every run in an MLflow-compatible store.

    Runs are recorded in ./mlruns (or --tracking-uri, or MLFLOW_TRACKING_URI), which MLflow's
    own client and UI read.
    """


cli.add_command(run)
cli.add_command(validate)
cli.add_command(experiments)
cli.add_command(envs)
cli.add_command(runs)
cli.add_command(ui)
cli.add_command(sync)
