"""Credentials in tracking URIs and MLflow's client variables: what messages must not show and
what an entry point's output is masked for. Kept apart from the HTTP client so that a local
run, which masks but never talks to a server, does not import it."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote, urlsplit, urlunsplit


def display_uri(uri: str) -> str:
    """The URI without any user:password@ part, for messages."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def credential_values(environ: Mapping[str, str], uri: str) -> tuple[str, ...]:
    """Every credential an entry point can see, for masking its output: MLflow's password and
    token variables and the URI's password (as written and decoded, as a program may print
    either)."""
    password = urlsplit(uri).password if "@" in urlsplit(uri).netloc else None
    found = (
        environ.get("MLFLOW_TRACKING_PASSWORD"),
        environ.get("MLFLOW_TRACKING_TOKEN"),
        password,
        unquote(password) if password else None,
    )
    return tuple(dict.fromkeys(value for value in found if value))
