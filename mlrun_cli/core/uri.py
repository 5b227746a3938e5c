"""The one reading of `file:` URIs, shared by sources, parameters and stores.

A `file:` URI names a local path once its percent-escapes are decoded (`file:///a%20b` is
`/a b`); a plain path is a local path as it is; anything with a scheme of two or more letters
is remote (a one-letter scheme is a Windows drive, and so a path).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse


def is_file_uri(text: str) -> bool:
    return text[:5].lower() == "file:"


def local_path_of(text: str) -> str | None:
    """The local path `text` names (a plain path or a `file:` URI), or None when it is remote.

    A `file:` URI naming another host is remote too: its path is not on this machine.
    """
    parsed = urlparse(text)
    if parsed.scheme == "file":
        return unquote(parsed.path) if parsed.netloc in ("", "localhost") else None
    if len(parsed.scheme) > 1:
        return None
    return text


def path_of_file_uri(uri: str) -> Path:
    """The path of a `file:` URI (or of a plain path) that is known to be local."""
    local = local_path_of(uri)
    return Path(local if local is not None else uri)
