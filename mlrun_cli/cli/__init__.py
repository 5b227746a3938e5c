"""The command line: parse, call one core function, render, and map errors to exit codes.

`main` is the only place that turns an MlrunError into a message and an exit code. Core
modules are imported inside the commands, so `mlrun --version` and `--help` stay fast.
"""

from __future__ import annotations

import sys

from mlrun_cli import __version__

TYPE_CHECKING = False  # typing and collections are not imported for `--version`
if TYPE_CHECKING:
    from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        sys.stdout.write(f"mlrun {__version__}\n")
        raise SystemExit(0)
    raise SystemExit(run_cli(args))


def run_cli(args: list[str]) -> int:
    """Run one command and return its exit code; never lets a user mistake become a traceback."""
    import click

    from mlrun_cli.cli.app import cli
    from mlrun_cli.cli.logging_setup import configure_logging
    from mlrun_cli.errors import MlrunError, SpecError

    configure_logging()
    try:
        result = cli.main(args=args, prog_name="mlrun", standalone_mode=False)
    except SpecError as exc:
        for line in exc.lines():
            click.echo(line, err=True)
        count = len(exc.problems)
        click.echo(
            f"mlrun: {count} problem{'s' if count != 1 else ''} found; nothing was run", err=True
        )
        return exc.exit_code
    except MlrunError as exc:
        for line in exc.lines():
            click.echo(f"mlrun: error: {line}", err=True)
        for line in exc.details:
            click.echo(f"    {line}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt) as exc:
        click.echo("mlrun: interrupted", err=True)
        # click wraps a KeyboardInterrupt in Abort; mlrun's RunInterrupted carries its code
        return getattr(exc.__cause__ or exc, "exit_code", 130)
    return result if isinstance(result, int) else 0
