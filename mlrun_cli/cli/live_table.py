"""A search's trials as a table redrawn in place on a terminal (`mlrun sweep --search`).

Whatever else is written while the table is shown (the trials' echo, mlrun's warnings) goes
above it: under one lock the table is erased, the lines written, and the table drawn again.
Each drawn line is cut to the terminal's width and the rows to its height, so the cursor moves
back over exactly what was drawn. At the end the table is erased: the command prints the final
table in its place. In CI and pipes none of this runs (see `wanted`).
"""

from __future__ import annotations

import shutil
import sys
import threading
from typing import IO, TextIO, cast

from mlrun_cli.sweeps.trials import RUNNING, TrialUpdate

ERASE_BELOW = "\x1b[J"


def wanted(as_json: bool, quiet: bool) -> bool:
    """Redrawn on a terminal only; --json and -q keep their plain output."""
    return sys.stdout.isatty() and not as_json and not quiet


def _cursor_up(lines: int) -> str:
    """To the first column of the line `lines` above (the start of the drawn table)."""
    return f"\x1b[{lines}F" if lines else "\r"


class LiveTable:
    def __init__(self, terminal: TextIO, searched: tuple[str, ...], objective: str) -> None:
        self.terminal = terminal
        self.searched = searched
        self.objective = objective
        self.rows: dict[int, TrialUpdate] = {}
        self.latest: TrialUpdate | None = None
        self.drawn = 0  # lines of the table now on the screen
        self.partial = ""  # text written above that has no line end yet
        self.lock = threading.Lock()

    def update(self, update: TrialUpdate) -> None:
        """A trial started or ended: its row changes, and the count above the table."""
        with self.lock:
            self.rows[update.index] = update
            self.latest = update
            self._write("")

    def write_above(self, text: str) -> None:
        """Whole lines go above the table; a partial line waits for its end."""
        with self.lock:
            *lines, self.partial = (self.partial + text).split("\n")
            if lines:
                self._write("".join(line + "\n" for line in lines))

    def close(self) -> None:
        """Erase the table (and show what is left of a partial line)."""
        with self.lock:
            rest = self.partial + "\n" if self.partial else ""
            self.partial = ""
            self.terminal.write(_cursor_up(self.drawn) + ERASE_BELOW + rest)
            self.terminal.flush()
            self.drawn = 0

    def bytes_above(self) -> IO[bytes]:
        """A byte sink (write and flush, all an echo uses) whose lines go above the table."""
        return cast(IO[bytes], _Bytes(self))

    def text_above(self) -> TextIO:
        """A text stream (for sys.stderr while the table is shown) whose lines go above it."""
        return cast(TextIO, _Text(self))

    def _write(self, above: str) -> None:
        lines = self._lines()
        self.terminal.write(
            _cursor_up(self.drawn) + ERASE_BELOW + above + "".join(f"{line}\n" for line in lines)
        )
        self.terminal.flush()
        self.drawn = len(lines)

    def _lines(self) -> list[str]:
        if self.latest is None:
            return []
        size = shutil.get_terminal_size()
        latest = self.latest
        running = sum(row.state == RUNNING for row in self.rows.values())
        best = "-" if latest.best is None else f"{latest.best:.6g}"
        summary = (
            f"search: {latest.told}/{latest.trials} told, {running} running, "
            f"best {self.objective} {best}"
        )
        headers = ["#", *self.searched, "state", self.objective]
        rows = [
            [
                str(row.index),
                *(row.params.get(name, "") for name in self.searched),
                row.state,
                "-" if row.value is None else f"{row.value:.6g}",
            ]
            for _, row in sorted(self.rows.items())
        ]
        room = max(1, size.lines - 3)  # the summary, the header, and the cursor's line
        hidden = len(rows) - room
        if hidden > 0:  # the newest rows: a table taller than the screen cannot be redrawn
            rows = rows[hidden:]
            summary += f" ({hidden} earlier trials not shown)"
        widths = [max(len(c) for c in column) for column in zip(headers, *rows, strict=True)]
        table = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in (headers, *rows)
        ]
        return [line[: max(1, size.columns - 1)] for line in (summary, *table)]


class _Bytes:
    def __init__(self, table: LiveTable) -> None:
        self.table = table

    def write(self, data: bytes) -> int:
        self.table.write_above(data.decode(errors="replace"))
        return len(data)

    def flush(self) -> None:
        """Lines are written as they come."""


class _Text:
    def __init__(self, table: LiveTable) -> None:
        self.table = table
        self.buffer = _Bytes(table)

    def write(self, text: str) -> int:
        self.table.write_above(text)
        return len(text)

    def flush(self) -> None:
        """Lines are written as they come."""

    def isatty(self) -> bool:
        return False  # no spinner of its own over the table: an env build logs lines
