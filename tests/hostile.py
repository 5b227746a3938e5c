"""What every refusal of a hostile or malformed input must look like, checked in one place.

A refusal exits with its documented code, says what is wrong in one line (or, for a broken
file, the per-problem lines of SpecError and their summary), never shows a traceback, writes
nothing anywhere (not even a store) and never leaves a run RUNNING.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mlrun_cli.cli import run_cli
from tests.conftest import CliResult
from tests.conftest import _runner as runner

_SUMMARY = re.compile(r"^mlrun: \d+ problems? found; nothing was run$")
_PROBLEM = re.compile(r"^[^:\n]+(:\d+)?: .+$")
DEADLINE_S = 5.0


def tree(root: Path) -> dict[str, tuple[bool, int]]:
    """Every path below `root` with whether it is a directory and its size."""
    found: dict[str, tuple[bool, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            is_dir = path.is_dir() and not path.is_symlink()
            found[str(path.relative_to(root))] = (is_dir, 0 if is_dir else path.lstat().st_size)
    return found


def running_runs(root: Path) -> list[Path]:
    return [
        meta
        for meta in root.rglob("meta.yaml")
        if re.search(r"^status: 1$", meta.read_text(errors="replace"), flags=re.M)
    ]


def assert_one_message(stderr: str) -> None:
    """One `mlrun: error:` line, or SpecError's located problems and their summary."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert lines, "nothing said on stderr"
    if _SUMMARY.match(lines[-1]):
        assert len(lines) >= 2, stderr
        assert all(_PROBLEM.match(line) for line in lines[:-1]), stderr
        return
    errors = [line for line in lines if line.startswith("mlrun: error:")]
    assert len(errors) == 1 and len(lines) == 1, stderr


@dataclass(frozen=True)
class Sandbox:
    """A case's own folder: `work` is where mlrun runs, the rest must stay untouched."""

    root: Path

    @property
    def work(self) -> Path:
        return self.root / "work"

    def project(self, files: Mapping[str, str | bytes], name: str = "project") -> Path:
        directory = self.work / name
        for relative, content in files.items():
            path = directory / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content)
        directory.mkdir(parents=True, exist_ok=True)
        return directory


def check_refused(
    sandbox: Sandbox,
    invoke: Callable[[], CliResult],
    codes: tuple[int, ...] = (2,),
) -> CliResult:
    """Run `invoke` and check everything a refusal promises; returns the result."""
    before = tree(sandbox.root)
    started = time.monotonic()
    result = invoke()
    elapsed = time.monotonic() - started
    assert result.exit_code in codes, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stdout
    assert_one_message(result.stderr)
    assert tree(sandbox.root) == before, "a refused input wrote files"
    assert not running_runs(sandbox.root)
    assert elapsed < DEADLINE_S, f"took {elapsed:.1f} s"
    return result


def check_handled(
    sandbox: Sandbox, invoke: Callable[[], CliResult], codes: tuple[int, ...] = (0, 2)
) -> CliResult:
    """For generated input that may be valid: a documented exit code, no traceback, no run
    left RUNNING, and on a refusal one message and nothing written."""
    before = tree(sandbox.root)
    started = time.monotonic()
    result = invoke()
    elapsed = time.monotonic() - started
    assert result.exit_code in codes, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    if result.exit_code != 0:
        assert_one_message(result.stderr)
        assert tree(sandbox.root) == before, "a refused input wrote files"
    assert not running_runs(sandbox.root)
    assert elapsed < DEADLINE_S, f"took {elapsed:.1f} s"
    return result


class HostileCli:
    """The in-process CLI, run from a fresh sandbox per case (hypothesis runs many cases in
    one test function, so tmp_path alone is shared)."""

    def __init__(self, base: Path, chdir: Callable[[Path], None]) -> None:
        self.base = base
        self.chdir = chdir
        self.count = 0

    def sandbox(self) -> Sandbox:
        self.count += 1
        box = Sandbox(self.base / f"case-{self.count}")
        box.work.mkdir(parents=True)
        return box

    def __call__(self, sandbox: Sandbox, *args: str) -> CliResult:
        self.chdir(sandbox.work)
        with runner().isolation() as streams:
            code = run_cli(list(args))
            sys.stdout.flush()
            sys.stderr.flush()
            out, err = streams[0].getvalue(), streams[1].getvalue()
        return CliResult(code, out.decode(errors="replace"), err.decode(errors="replace"))
