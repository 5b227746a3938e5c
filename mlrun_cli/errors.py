"""One error tree for everything a user can get wrong, each kind with its own exit code.

The core raises these; the CLI catches `MlrunError` in exactly one place, prints `lines()` and
exits with `exit_code`. Exit codes (documented in the README):
2 usage and validation, 3 environment, 4 tracking store, 5 source, 1 anything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class MlrunError(Exception):
    """Base of every error a user can cause; carries its exit code as class data."""

    exit_code = 1

    def __init__(self, message: str, details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = tuple(details)  # supporting lines (a log's end), shown indented

    def lines(self) -> list[str]:
        """The message as the one-line-per-problem text the CLI prints."""
        return self.message.splitlines() or [self.message]


class UsageError(MlrunError):
    """Options or arguments that do not fit together."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One mistake in a file, located so that an editor can jump to it."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class SpecError(MlrunError):
    """An MLproject (or env file) that is broken; lists every problem found, sorted by line."""

    exit_code = 2

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: (p.file, p.line or 0, p.path)))
        super().__init__("\n".join(str(p) for p in self.problems))


class EntryPointError(MlrunError):
    """`-e NAME` names neither an entry point nor a runnable .py/.sh file."""

    exit_code = 2


class ParameterError(MlrunError):
    """A `-P` value that is malformed, missing or does not fit its declared type."""

    exit_code = 2


class EnvUnavailableError(MlrunError):
    """The project needs an environment mlrun cannot build here; the message says what to pass."""

    exit_code = 2


class EnvBuildError(MlrunError):
    """Building the environment itself failed; `log_path` keeps what the build printed."""

    exit_code = 3

    def __init__(
        self, message: str, details: Sequence[str] = (), log_path: Path | None = None
    ) -> None:
        super().__init__(message, details)
        self.log_path = log_path


class StoreError(MlrunError):
    """The tracking store is missing, unreadable, not writable or inconsistent."""

    exit_code = 4


class NotFoundError(StoreError):
    """An experiment or run that the user named does not exist."""

    exit_code = 2


class ConflictError(StoreError):
    """A name that is already taken, or a change the object's state does not allow."""

    exit_code = 2


class SourceError(MlrunError):
    """The project URI cannot be turned into a local project directory."""

    exit_code = 5


class LaunchError(MlrunError):
    """The entry point's process could not be started at all."""

    exit_code = 1


class RunFailedError(MlrunError):
    """`mlrun_cli.projects.run(synchronous=True)`: the run ended FAILED or KILLED (as MLflow's
    ExecutionException); the CLI reports the same through its exit code instead."""

    exit_code = 1

    def __init__(self, run_id: str, status: str) -> None:
        super().__init__(f"run {run_id} ended {status}")
        self.run_id = run_id
        self.status = status
