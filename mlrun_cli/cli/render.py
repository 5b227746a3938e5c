"""Text and JSON rendering of core results; nothing here decides anything."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import click

JSON_FORMAT_VERSION = 1


def echo_json(key: str, value: object) -> None:
    """Every JSON document mlrun prints is an envelope with a format version."""
    click.echo(json.dumps({"format": JSON_FORMAT_VERSION, key: value}, indent=2, sort_keys=True))


def echo_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]
    for row in (headers, *rows):
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        click.echo("  ".join(cells).rstrip())


def timestamp(ms: int | None) -> str:
    if not ms:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))
