"""Readable default run names (`brave-otter-417`), as MLflow gives runs without --run-name."""

from __future__ import annotations

import secrets

from mlrun_cli.errors import UsageError
from mlrun_cli.tracking.keys import experiment_name_problem, run_name_problem, text_encoding_problem

_ADJECTIVES = (
    "amber",
    "bold",
    "brave",
    "bright",
    "calm",
    "clever",
    "crisp",
    "eager",
    "fast",
    "gentle",
    "golden",
    "keen",
    "lively",
    "lucid",
    "merry",
    "nimble",
    "proud",
    "quiet",
    "rapid",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "witty",
)
_NOUNS = (
    "badger",
    "beaver",
    "crane",
    "dolphin",
    "eagle",
    "falcon",
    "fox",
    "heron",
    "ibex",
    "koala",
    "lark",
    "lynx",
    "marten",
    "newt",
    "otter",
    "owl",
    "panda",
    "puffin",
    "raven",
    "robin",
    "seal",
    "sparrow",
    "stoat",
    "tern",
    "wren",
)


def random_run_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}-{secrets.randbelow(1000)}"


def check_request_text(
    uri: str, entry_point: str, run_name: str | None, experiment_name: str | None
) -> None:
    """What the run records as names and tags must be storable, checked before it exists:
    the command line can carry bytes that are not UTF-8, which Python keeps as surrogates."""
    checks = [
        ("the project URI", text_encoding_problem(uri)),
        ("-e/--entry-point", text_encoding_problem(entry_point)),
        ("--run-name", run_name_problem(run_name) if run_name is not None else None),
        (
            "--experiment-name",
            experiment_name_problem(experiment_name) if experiment_name is not None else None,
        ),
    ]
    for option, problem in checks:
        if problem is not None:
            raise UsageError(f"{option}: {problem}")
