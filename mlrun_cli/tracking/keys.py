"""MLflow's rules for param, tag and metric keys, and for the names that become paths.

In the file store a key is a path below `params/`, `tags/` or `metrics/`, so a key that
normalises to another name (`a//b`, `./a`), leaves its folder (`..`, a leading `/`) or is
both a file and a folder (`x` and `x/y`) would write somewhere else or fail half-way. The
rules are MLflow's (letters, digits, `_ - . space : /`, unique as a path, 250 characters),
plus what a file system needs: each component short enough for a file name with room for
the temporary name it is written through, and text that can be stored as UTF-8.

Values have MLflow's limits too (6,000 characters for a param, 8,000 for a tag). A tracking
server cuts a longer value without telling the client, and MLflow's own client and file store
cut it with a warning; every mlrun store cuts it the same way, with a warning.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Iterable, Mapping

log = logging.getLogger(__name__)
MAX_KEY_LENGTH = 250  # MLflow's MAX_ENTITY_KEY_LENGTH, for params, tags and metrics
MAX_EXPERIMENT_NAME_LENGTH = 500  # MLflow's
MAX_RUN_NAME_LENGTH = 250  # a run name is stored as the tag mlflow.runName
MAX_PARAM_VALUE_LENGTH = 6000  # MLflow's MAX_PARAM_VAL_LENGTH
MAX_TAG_VALUE_LENGTH = 8000  # MLflow's MAX_TAG_VAL_LENGTH
# File names are limited to 255 bytes; a key component also needs room for the temporary
# name it is written through (`.NAME.<pid>.<token>.tmp`).
MAX_COMPONENT_BYTES = 200
_KEY_CHARACTERS = re.compile(r"[/\w.\- :]*")
_ALLOWED = "letters, digits, _ - . : space and /"


def key_problem(key: str) -> str | None:
    """Why `key` cannot be a param, tag or metric key, or None when it can."""
    if not key:
        return "a key must not be empty"
    text_problem = text_encoding_problem(key)
    if text_problem is not None:
        return text_problem
    if not _KEY_CHARACTERS.fullmatch(key):
        bad = next(c for c in key if not _KEY_CHARACTERS.fullmatch(c))
        return f"the character {bad!r} is not allowed (use {_ALLOWED})"
    normal = posixpath.normpath(key)
    if normal != key or normal == "." or normal.startswith(("..", "/")):
        return (
            "as a path it would name something else (no leading '/', no '.' or '..' parts, no '//')"
        )
    if len(key) > MAX_KEY_LENGTH:
        return f"{len(key)} characters, more than MLflow's limit of {MAX_KEY_LENGTH}"
    for part in key.split("/"):
        if len(part.encode("utf-8")) > MAX_COMPONENT_BYTES:
            return f"the part {part[:20]!r}... is longer than {MAX_COMPONENT_BYTES} bytes"
    return None


def clash_problem(keys: Iterable[str]) -> str | None:
    """Two keys where one is a folder of the other (`x` and `x/y`) cannot both be files."""
    given = set(keys)
    for key in sorted(given):
        parts = key.split("/")
        for end in range(1, len(parts)):
            prefix = "/".join(parts[:end])
            if prefix in given:
                return f"'{prefix}' and '{key}' cannot both be keys ('{prefix}' would be a folder)"
    return None


def text_encoding_problem(text: str) -> str | None:
    """Text the store must keep as UTF-8: no NUL, no undecodable bytes (lone surrogates)."""
    if "\0" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"is not valid UTF-8 (undecodable byte at position {exc.start})"
    return None


def experiment_name_problem(name: str) -> str | None:
    if not name.strip():
        return "an experiment name must not be empty"
    if len(name) > MAX_EXPERIMENT_NAME_LENGTH:
        return f"{len(name)} characters, more than MLflow's limit of {MAX_EXPERIMENT_NAME_LENGTH}"
    return text_encoding_problem(name)


def run_name_problem(name: str) -> str | None:
    if len(name) > MAX_RUN_NAME_LENGTH:
        return f"{len(name)} characters, more than MLflow's limit of {MAX_RUN_NAME_LENGTH}"
    return text_encoding_problem(name)


def params_within_limits(params: Mapping[str, str]) -> dict[str, str]:
    """The params as every MLflow store keeps them: a value cut to 6,000 characters."""
    return _within_limit("param", params, MAX_PARAM_VALUE_LENGTH)


def tags_within_limits(tags: Mapping[str, str]) -> dict[str, str]:
    """The tags as every MLflow store keeps them: a value cut to 8,000 characters."""
    return _within_limit("tag", tags, MAX_TAG_VALUE_LENGTH)


def _within_limit(kind: str, values: Mapping[str, str], limit: int) -> dict[str, str]:
    kept = dict(values)
    for key, value in values.items():
        if len(value) > limit:
            log.warning(
                "%s '%s': its value has %d characters; only the first %d are recorded "
                "(MLflow's limit)",
                kind, key, len(value), limit,
            )  # fmt: skip
            kept[key] = value[:limit]
    return kept
