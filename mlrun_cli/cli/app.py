"""The `mlrun` command group; each command's module is imported only when it is used."""

from __future__ import annotations

from importlib import import_module

import click

from mlrun_cli import __version__

# name -> module of mlrun_cli.cli that defines the click command of that name
COMMANDS = {
    "run": "run",
    "validate": "validate",
    "experiments": "experiments",
    "envs": "envs",
    "runs": "runs",
    "ui": "ui",
    "doctor": "doctor",
    "sweep": "sweep",
    "reproduce": "reproduce",
    "sync": "sync",
}


class LazyGroup(click.Group):
    """`mlrun run` imports the run command alone, not the runs, envs and experiments ones."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*COMMANDS, *(name for name in super().list_commands(ctx) if name not in COMMANDS)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module = import_module(f"mlrun_cli.cli.{COMMANDS[cmd_name]}")
            self.add_command(getattr(module, cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mlrun", message="%(prog)s %(version)s")
def cli() -> None:
    """Run MLflow MLproject files fast, and record every run in an MLflow-compatible store.

    Runs are recorded in ./mlruns (or --tracking-uri, or MLFLOW_TRACKING_URI), which MLflow's
    own client and UI read.
    """
