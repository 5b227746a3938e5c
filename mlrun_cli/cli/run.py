"""`mlrun run`: the options of `mlflow run`, so `mlflow` can be swapped for `mlrun`."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import click

from mlrun_cli.cli.options import (
    json_option,
    quiet_logging,
    reuse_option,
    run_options,
    run_request,
    tracking_uri_option,
)
from mlrun_cli.cli.render import echo_json

if TYPE_CHECKING:
    from mlrun_cli.core.settings import Settings
    from mlrun_cli.run.plan import RunPlan
    from mlrun_cli.run.run_key import Reuse, RunKey


@click.command(params=run_options())
@click.argument("uri")
@click.option("-q", "--quiet", is_flag=True, help="Only the entry point's own output.")
@reuse_option
@tracking_uri_option
@json_option
def run(
    uri: str,
    quiet: bool,
    reuse: str | None,
    tracking_uri: str | None,
    as_json: bool,
    **options: Any,  # the values of run_options(), of several types
) -> int:
    """Run an entry point of the project at URI and record the run.

    Exits with the entry point's own exit code; 130 after Ctrl-C; 2 for invalid input.
    With --json the entry point's stdout goes to stderr, so stdout holds only the JSON.
    """
    from mlrun_cli.cli.progress import TerminalProgress
    from mlrun_cli.core.settings import Settings
    from mlrun_cli.jobs.dispatch import execute
    from mlrun_cli.run.pipeline import RunOutput, plan_run

    request = run_request(uri, options)
    quiet_logging(quiet)
    settings = Settings.resolve(tracking_uri)
    plan = plan_run(request, settings)
    key, reused = _reuse(plan, settings, reuse, request.digest_inputs)
    if reused is not None:
        return _report_reuse(reused, as_json)
    stdout = sys.stderr.buffer if as_json else sys.stdout.buffer
    progress = TerminalProgress()
    try:
        result = execute(plan, settings, RunOutput(stdout, sys.stderr.buffer, progress), key)
    finally:
        progress.close()
    if request.detach:
        if as_json:
            echo_json("run", {"run_id": result.run.run_id, "job_id": result.job_id,
                              "backend": request.backend,
                              "status": result.run.status.name})  # fmt: skip
        else:
            click.echo(result.run.run_id)
        return 0
    run = result.run
    total = ((run.end_time or run.start_time) - run.start_time) / 1000
    summary = (
        f"run {run.run_id} {run.status.name}: entry point {result.outcome.duration:.2f}s, "
        f"total {total:.2f}s with the environment (exit code {result.outcome.returncode})"
    )
    logging.getLogger("mlrun_cli").log(
        logging.INFO if result.exit_code == 0 else logging.WARNING, summary
    )
    if as_json:
        echo_json("run", result.as_json())
    return result.exit_code


def _reuse(
    plan: RunPlan, settings: Settings, option: str | None, digest_inputs: bool
) -> tuple[RunKey | None, Reuse | None]:
    from mlrun_cli.errors import UsageError
    from mlrun_cli.run.run_key import reuse_earlier, reuse_mode

    mode = reuse_mode(option, settings.environ)
    if mode is None:
        return None, None
    if not digest_inputs:
        raise UsageError("--reuse needs the input digests; drop --no-digest")
    return reuse_earlier(plan, settings, mode)


def _report_reuse(reused: Reuse, as_json: bool) -> int:
    earlier = reused.earlier.info.run_id
    recorded = reused.recorded.run_id if reused.recorded is not None else None
    message = f"identical to FINISHED run {earlier}; not run again"
    if recorded is not None:
        message += f" (recorded as run {recorded})"
    logging.getLogger("mlrun_cli").info(message)
    if as_json:
        echo_json("run", {"run_id": recorded or earlier, "reused_from": earlier,
                          "status": "FINISHED", "exit_code": 0})  # fmt: skip
    else:
        click.echo(recorded or earlier)  # the run of this command: the record, if one is made
    return 0
