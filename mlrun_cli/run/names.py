"""Readable default run names (`brave-otter-417`), as MLflow gives runs without --run-name."""

from __future__ import annotations

import secrets

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
