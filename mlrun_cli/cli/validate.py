"""`mlrun validate`: check a project without running anything."""

from __future__ import annotations

import click


@click.command()
@click.argument("uri", default=".")
@click.option("-e", "--entry-point", default=None, help="Also check that this entry point exists.")
def validate(uri: str, entry_point: str | None) -> None:
    """Check the MLproject at URI (default: .) against the schema and mlrun's own checks.

    Every problem is listed at once as FILE:LINE: KEY.PATH: MESSAGE; the exit code is 2 if
    there is any.
    """
    from mlrun_cli.commands.validate import validate as validate_project
    from mlrun_cli.core.settings import Settings

    report = validate_project(uri, Settings.resolve(), entry_point)
    click.echo(report.summary())
