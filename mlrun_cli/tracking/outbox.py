"""What a finished run could not deliver to its tracking server, kept until `mlrun sync`.

One folder per run under the outbox directory (see caches.outbox_dir):

    <run_id>/entry.json    {"format": 1, "tracking_uri", "run_id", "artifact_uri", "calls": [...]}
    <run_id>/artifacts/    the staged artifact files, at their relative paths

A call is one REST request (method, endpoint, JSON payload) of the kinds a runner makes after
the entry point ended: tags, params, the final status, dataset inputs. Each is idempotent (a tag
or status set twice is set once; a param with the same value is accepted again), and replaying
removes each call and file as soon as the server has it, so `mlrun sync` can be interrupted and
run again, and running it twice changes nothing. Credentials are never written here: sync reads
them from its own environment.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlrun_cli.core.atomic import write_atomic
from mlrun_cli.core.credentials import display_uri

log = logging.getLogger(__name__)
OUTBOX_FORMAT = 1
ENTRY = "entry.json"
ARTIFACTS = "artifacts"
UNSENT = "mlrun_log.jsonl"


@dataclass(frozen=True)
class PendingCall:
    method: str
    endpoint: str
    payload: Mapping[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"method": self.method, "endpoint": self.endpoint, "payload": dict(self.payload)}


@dataclass(frozen=True)
class OutboxEntry:
    directory: Path
    tracking_uri: str
    run_id: str
    artifact_uri: str
    calls: tuple[PendingCall, ...]

    @property
    def artifact_dir(self) -> Path:
        return self.directory / ARTIFACTS

    def save(self) -> None:
        document = {
            "format": OUTBOX_FORMAT,
            "tracking_uri": self.tracking_uri,
            "run_id": self.run_id,
            "artifact_uri": self.artifact_uri,
            "calls": [call.as_json() for call in self.calls],
        }
        write_atomic(self.directory / ENTRY, json.dumps(document, indent=2))

    def without_first_call(self) -> OutboxEntry:
        entry = OutboxEntry(
            self.directory, self.tracking_uri, self.run_id, self.artifact_uri, self.calls[1:]
        )
        entry.save()
        return entry


def keep(
    outbox: Path,
    tracking_uri: str,
    run_id: str,
    artifact_uri: str,
    calls: Sequence[PendingCall],
    staged: Path | None,
) -> OutboxEntry:
    """Move the undelivered calls and staged files of one run into the outbox; the URI is kept
    without its user:password@ part (sync takes credentials from its own invocation)."""
    directory = outbox / run_id
    directory.mkdir(parents=True, exist_ok=True)
    if staged is not None and staged.is_dir():
        shutil.copytree(staged, directory / ARTIFACTS, dirs_exist_ok=True)
        shutil.rmtree(staged, ignore_errors=True)
    previous = read_entry(directory)
    earlier = previous.calls if previous else ()
    shown = display_uri(tracking_uri)
    entry = OutboxEntry(directory, shown, run_id, artifact_uri, (*earlier, *calls))
    entry.save()
    return entry


def read_entry(directory: Path) -> OutboxEntry | None:
    try:
        document = json.loads((directory / ENTRY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    calls = tuple(
        PendingCall(c["method"], c["endpoint"], c["payload"]) for c in document.get("calls", [])
    )
    return OutboxEntry(
        directory,
        str(document["tracking_uri"]),
        str(document["run_id"]),
        str(document["artifact_uri"]),
        calls,
    )


def entries(outbox: Path) -> list[OutboxEntry]:
    if not outbox.is_dir():
        return []
    found = (read_entry(directory) for directory in sorted(outbox.iterdir()))
    return [entry for entry in found if entry is not None]


def unsent_file(staging: Path, run_id: str) -> Path:
    """Where the entry point's mlrun_log appends the batches it could not send before it exited
    (MLRUN_LOG_UNSENT), one JSON call a line; in a folder of its own so docker can mount it."""
    return staging / f"{run_id}.unsent" / UNSENT


def take_unsent(path: Path) -> list[PendingCall]:
    """The calls the entry point handed over, and their file removed. A line cut short (the
    entry point killed while writing it) is no whole batch: it is named in a warning, not sent."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    shutil.rmtree(path.parent, ignore_errors=True)
    calls = []
    for number, line in enumerate(lines, 1):
        try:
            call = json.loads(line)
            calls.append(PendingCall(call["method"], call["endpoint"], call["payload"]))
        except (ValueError, KeyError, TypeError):
            log.warning("%s:%d: not a whole batch of the entry point's; skipped", path, number)
    return calls
