"""Reading an MLproject or env file's text, before any YAML: the size cap, the file kinds
that are refused (a directory, a FIFO, a device, a dangling link), and the encoding.

Kept apart from the YAML reader so that a run of an unchanged project, whose parsed document
comes from the validation cache, reads the text without importing yaml.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from mlrun_cli.errors import Problem, SpecError

MAX_SPEC_BYTES_VARIABLE = "MLRUN_MAX_SPEC_BYTES"
DEFAULT_MAX_SPEC_BYTES = 1 << 20


def max_spec_bytes() -> int:
    """The size cap for MLproject and env files; MLRUN_MAX_SPEC_BYTES raises it."""
    raw = os.environ.get(MAX_SPEC_BYTES_VARIABLE, "")
    return int(raw) if raw.strip().isdigit() else DEFAULT_MAX_SPEC_BYTES


def read_spec_text(path: Path, label: str) -> str:
    """The file's text; never blocks on a FIFO or reads a device or a huge file to the end."""
    kind = not_regular_file(path)
    if kind is not None:
        raise SpecError([Problem(label, None, "", f"not a regular file ({kind})")])
    limit = max_spec_bytes()
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise SpecError([Problem(label, None, "", f"cannot read: {exc.strerror}")]) from None
    if len(data) > limit:
        message = (
            f"larger than {limit} bytes; set {MAX_SPEC_BYTES_VARIABLE} to a higher byte count "
            "if the file really is that large"
        )
        raise SpecError([Problem(label, None, "", message)])
    return decode_spec(data, label)


def not_regular_file(path: Path) -> str | None:
    """What `path` is when it is not a regular file (a directory, a FIFO, a dangling link)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "a dangling symlink" if path.is_symlink() else "missing"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a symlink loop"
        return f"cannot be read: {exc.strerror}"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket or other special file"


def decode_spec(data: bytes, label: str) -> str:
    """UTF-8, as MLflow reads an MLproject (a UTF-8 byte-order mark is skipped by YAML)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}"
        raise SpecError([not_yaml_problem(label, reason)]) from None


def not_yaml_problem(label: str, reason: str) -> Problem:
    return Problem(label, None, "", f"not a YAML document ({reason})")
