"""`mlrun sync`: send what finished runs could not deliver to their tracking servers."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from mlrun_cli.core.caches import outbox_dir
from mlrun_cli.core.credentials import display_uri
from mlrun_cli.core.settings import Settings
from mlrun_cli.errors import StoreError
from mlrun_cli.tracking import outbox
from mlrun_cli.tracking.rest_store import RestStore, sync_entry
from mlrun_cli.tracking.store import open_store


@dataclass(frozen=True)
class SyncReport:
    sent: list[tuple[str, str]]  # (run id, tracking URI)
    kept: list[tuple[str, str]]  # (run id, why it is still waiting)

    def as_json(self) -> dict[str, object]:
        return {
            "sent": [{"run_id": run, "tracking_uri": uri} for run, uri in self.sent],
            "kept": [{"run_id": run, "reason": why} for run, why in self.kept],
        }


def sync(settings: Settings) -> SyncReport:
    """Replay every outbox entry to the store it was meant for; credentials come from here.

    An entry that still cannot be delivered stays, untouched past what the server accepted.
    """
    sent, kept = [], []
    for entry in outbox.entries(outbox_dir(settings.environ)):
        target = dataclasses.replace(settings, tracking_uri=_with_credentials(entry, settings))
        store = open_store(target)
        if not isinstance(store, RestStore):
            kept.append((entry.run_id, f"{entry.tracking_uri} is not a remote store"))
            continue
        try:
            sync_entry(store, entry)
        except StoreError as exc:
            kept.append((entry.run_id, exc.message))
            continue
        sent.append((entry.run_id, display_uri(entry.tracking_uri)))
    return SyncReport(sent, kept)


def _with_credentials(entry: outbox.OutboxEntry, settings: Settings) -> str:
    """The entry's server, with the user:password@ of this invocation's URI when it names the
    same server (the outbox never stores them)."""
    if display_uri(settings.tracking_uri) == entry.tracking_uri:
        return settings.tracking_uri
    return entry.tracking_uri
