"""`mlrun doctor`: report the damaged entries of the store; --fix quarantines them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from mlrun_cli.cli.options import json_option, tracking_uri_option
from mlrun_cli.cli.render import echo_json

if TYPE_CHECKING:
    from mlrun_cli.commands.doctor import DoctorReport, Finding


@click.command()
@click.option(
    "--fix",
    is_flag=True,
    help="Move damaged entries to <store>/.damaged.trash/ (nothing is deleted) and drop torn "
    "metric lines, so that MLflow's own client reads the store again.",
)
@tracking_uri_option
@json_option
def doctor(fix: bool, tracking_uri: str | None, as_json: bool) -> int:
    """Find runs, experiments, params, tags and metrics that cannot be read (an empty,
    half-written, zero-filled or non-UTF-8 file, a torn metric line).

    Exits 0 when the store is healthy or was fixed, 4 when damage remains.
    """
    from mlrun_cli.commands.doctor import doctor as examine_store
    from mlrun_cli.core.settings import Settings

    report = examine_store(Settings.resolve(tracking_uri).store_root, fix)
    if as_json:
        findings = [
            {**f.as_json(), "quarantined": str(report.quarantined[f.label])}
            if f.label in report.quarantined
            else f.as_json()
            for f in report.findings
        ]
        echo_json("doctor", {"store": str(report.store), "fixed": fix, "damaged": findings})
    else:
        for finding in report.findings:
            click.echo(_finding_line(report, finding))
        count = len(report.findings)
        entries = f"{count} damaged entr{'ies' if count != 1 else 'y'}"
        if not count:
            click.echo(f"{report.store}: no damaged entries")
        else:
            click.echo(f"{entries} quarantined" if fix else f"{entries}; --fix quarantines them")
    return 4 if report.findings and not fix else 0


def _finding_line(report: DoctorReport, finding: Finding) -> str:
    line = f"{finding.label}: {finding.reason}"
    if finding.label in report.quarantined:
        where = report.quarantined[finding.label].relative_to(report.store.parent)
        kept = "torn lines dropped, original kept" if finding.keep_readable_lines else "moved"
        line += f"; {kept} in {where}"
    return line
