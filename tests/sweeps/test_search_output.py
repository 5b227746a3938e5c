"""What a search shows: a table redrawn in place on a terminal (a real `mlrun` under a
pseudo-terminal, its output played on a small terminal model), plain lines everywhere else."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

from tests.conftest import REPO, child_env, mlrun_command, run_mlrun, write_files

EXAMPLE = REPO / "examples" / "search"
SPACE = ("-P", "lr=loguniform(1e-4,1e-1)", "-P", "dropout=uniform(0,0.5)",
         "-P", "layers=int(1,4)", "-P", "optimizer=choice(adam,sgd)")  # fmt: skip
CONTROL = re.compile(rb"\x1b\[(\d*)([A-Za-z])|[\r\n]|[^\x1b\r\n]+")


def in_terminal(
    argv: list[str], cwd: Path, rows: int, columns: int, interrupt_at: bytes | None = None
) -> tuple[int, bytes]:
    """Run `argv` with stdin, stdout and stderr on one pseudo-terminal of this size; its exit
    code and everything it wrote to the terminal. Ctrl-C (SIGINT) once it wrote `interrupt_at`."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    env = child_env(TERM="xterm")
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    process = subprocess.Popen(argv, cwd=cwd, env=env, stdin=terminal, stdout=terminal,
                               stderr=terminal, start_new_session=True)  # fmt: skip
    os.close(terminal)
    written = bytearray()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], deadline - time.monotonic())
        if not ready:
            break
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: every holder of the terminal has closed it
            break
        if not chunk:
            break
        written += chunk
        if interrupt_at is not None and interrupt_at in written:
            process.send_signal(signal.SIGINT)
            interrupt_at = None
    os.close(controller)
    return process.wait(timeout=30), bytes(written)


def screen(written: bytes, rows: int, columns: int) -> list[str]:
    """The terminal's lines (scrollback included) after `written`: text (wrapped at the
    width), CR, LF, and the cursor moves and erasures a live table uses (ESC[nF, ESC[J,
    ESC[K). As on a real terminal, the cursor cannot move above the visible screen."""
    lines: list[str] = [""]
    row = column = 0
    for match in CONTROL.finditer(written):
        text = match.group(0)
        if text == b"\r":
            column = 0
        elif text == b"\n":
            row += 1
            if row == len(lines):
                lines.append("")
        elif match.group(2) == b"F":
            top = max(0, len(lines) - rows)
            row, column = max(top, row - int(match.group(1) or 1)), 0
        elif match.group(2) == b"J":
            lines[row] = lines[row][:column]
            del lines[row + 1 :]
        elif match.group(2) == b"K":
            lines[row] = lines[row][:column]
        elif match.group(2) is None:
            for char in text.decode(errors="replace"):
                if column == columns:  # the terminal wraps onto the next line
                    row, column = row + 1, 0
                    if row == len(lines):
                        lines.append("")
                line = lines[row].ljust(column)
                lines[row] = line[:column] + char + line[column + 1 :]
                column += 1
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def search_argv(*extra: str) -> list[str]:
    return mlrun_command("sweep", str(EXAMPLE), "--no-env", "--search", "random", "--seed", "5",
                         "--objective", "loss", "--minimize", *SPACE, *extra)  # fmt: skip


def test_on_a_terminal_the_trials_are_a_table_redrawn_in_place(tmp_path: Path) -> None:
    code, written = in_terminal(search_argv("--trials", "4", "-j", "2"), tmp_path, 40, 300)
    shown = screen(written, 40, 300)
    text = "\n".join(shown)
    assert code == 0, text
    assert "Traceback" not in text
    # While the trials ran, the live table said how far the search was and what ran.
    assert b"search: 2/4 told" in written
    assert re.search(rb"\n\d  [^\n]*RUNNING", written.replace(b"\r", b""))
    # What stays on the screen: each trial's own output above, then the final table once and
    # the summary; no line per trial, no leftover of the live table.
    assert not [line for line in shown if re.match(r"mlrun: trial \d/4", line)]
    assert not [line for line in shown if line.startswith("search: ")]
    echoed = [line for line in shown if line.startswith("[")]
    assert sorted(line.split()[0] for line in echoed) == ["[1]", "[2]", "[3]", "[4]"], text
    assert all(line.split()[1] == "loss" for line in echoed)
    headers = [i for i, line in enumerate(shown) if line.split()[:2] == ["#", "run"]]
    assert len(headers) == 1, text
    table = shown[headers[0] :]
    assert table[0].split() == ["#", "run", "lr", "dropout", "layers", "optimizer", "status",
                                "state", "loss"]  # fmt: skip
    assert [line.split()[0] for line in table[1:5]] == ["1", "2", "3", "4"]
    assert all(line.split()[-3:-1] == ["FINISHED", "COMPLETE"] for line in table[1:5])
    assert re.match(r"search \w+: FINISHED, 4 executed; best trial \d", table[5])
    assert len(table) == 6, text


STALLING = {
    # A trial with x > 0.5 stalls while the project holds a file named `stall`.
    "MLproject": """
name: stalling
entry_points:
  main:
    parameters:
      x: float
    command: "python trial.py {x}"
""",
    "trial.py": """import os, sys, time
import mlrun_log
x = float(sys.argv[1])
while x > 0.5 and os.path.exists("stall"):  # until the user fixes what held it
    time.sleep(0.1)
mlrun_log.log_metric("loss", x)
""",
}


def test_ctrl_c_under_the_live_table_leaves_the_final_table_with_the_killed_trial(
    tmp_path: Path,
) -> None:
    project = write_files(tmp_path / "project", STALLING)
    (project / "stall").write_text("")
    argv = mlrun_command("sweep", str(project), "--no-env", "--search", "random", "--seed", "1",
                         "--trials", "6", "-j", "2", "--objective", "loss", "--minimize",
                         "-P", "x=uniform(0,1)")  # fmt: skip
    # With seed 1 the second trial (x=0.72) stalls; the other five end while it runs.
    code, written = in_terminal(argv, tmp_path, 40, 300, interrupt_at=b"search: 5/6 told")
    shown = screen(written, 40, 300)
    text = "\n".join(shown)
    assert code == 130, text
    assert not [line for line in shown if line.startswith("search: ")], text
    headers = [i for i, line in enumerate(shown) if line.split()[:2] == ["#", "run"]]
    assert len(headers) == 1, text
    rows = [line.split() for line in shown[headers[0] + 1 : headers[0] + 7]]
    assert [(row[0], row[3], row[4]) for row in rows] == [
        ("1", "FINISHED", "COMPLETE"), ("2", "KILLED", "-"), *(
            (str(i), "FINISHED", "COMPLETE") for i in range(3, 7))
    ]  # fmt: skip
    assert re.match(r"search \w+: KILLED, 6 executed", shown[headers[0] + 7])


def test_a_table_taller_than_the_terminal_shows_its_newest_rows(tmp_path: Path) -> None:
    code, written = in_terminal(search_argv("--trials", "9"), tmp_path, 8, 300)
    shown = screen(written, 8, 300)
    assert code == 0, "\n".join(shown)
    assert b"earlier trials not shown" in written
    headers = [i for i, line in enumerate(shown) if line.split()[:2] == ["#", "run"]]
    assert len(headers) == 1, "\n".join(shown)
    assert [line.split()[0] for line in shown[headers[0] + 1 : headers[0] + 10]] == [
        str(i) for i in range(1, 10)
    ]


def test_on_a_narrow_terminal_the_table_is_cut_to_its_width_and_still_redrawn(
    tmp_path: Path,
) -> None:
    code, written = in_terminal(search_argv("--trials", "3"), tmp_path, 40, 50)
    shown = screen(written, 40, 50)
    assert code == 0, "\n".join(shown)
    assert b"search: 1/3 told" in written
    assert not [line for line in shown if line.startswith("search: ")], "\n".join(shown)
    assert len([line for line in shown if line.split()[:2] == ["#", "run"]]) == 1


def test_in_a_pipe_each_told_trial_is_a_plain_line(tmp_path: Path) -> None:
    done = run_mlrun(*search_argv("--trials", "3")[3:], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout + done.stderr
    told = re.findall(r"^mlrun: trial (\d)/3 .*: loss=\S+ COMPLETE \(best \S+\)$", done.stderr,
                      re.MULTILINE)  # fmt: skip
    assert told == ["1", "2", "3"]
    assert re.search(r"^search \w+: FINISHED, 3 executed; best trial", done.stdout, re.MULTILINE)
