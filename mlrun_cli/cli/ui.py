"""`mlrun ui`: open the runs in MLflow's UI."""

from __future__ import annotations

import click

from mlrun_cli.cli.options import tracking_uri_option


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=5000, show_default=True, help="Port to listen on.")
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Server worker processes (MLflow's default is 4; one is enough for one person).",
)
@tracking_uri_option
def ui(host: str, port: int, workers: int, tracking_uri: str | None) -> None:
    """Serve the store with MLflow's UI (needs the full `mlflow` package)."""
    from mlrun_cli.commands.ui import ui_command
    from mlrun_cli.core.processes import replace_process
    from mlrun_cli.core.settings import Settings

    argv, env = ui_command(Settings.resolve(tracking_uri), host, port, workers)
    click.echo(f"mlrun: MLflow UI on http://{host}:{port} (Ctrl-C stops it)", err=True)
    replace_process(argv, env)
