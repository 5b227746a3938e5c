"""The node's side of a submitted run: `mlrun run --run-id ID` continues a run the submitter
created (SCHEDULED), instead of creating one, as MLflow's own `--run-id` does."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlrun_cli.errors import ConflictError
from mlrun_cli.tracking.entities import FINAL_STATUSES, Experiment, RunInfo, RunStatus
from mlrun_cli.tracking.store import Store
from mlrun_cli.tracking.tags import HOST_TAG, PLATFORM_TAG, RUNNER_TAG_PREFIX

# What only the node knows; everything else the submitter recorded stays as it wrote it.
_NODE_TAGS = (HOST_TAG, PLATFORM_TAG, RUNNER_TAG_PREFIX)


def claim_run(
    store: Store, run_id: str, tags: Mapping[str, str]
) -> tuple[RunInfo, Experiment, dict[str, str]]:
    """The run, now RUNNING, its experiment, and the params the submitter already logged."""
    recorded = store.get_run(run_id)
    if recorded.info.status in FINAL_STATUSES:
        raise ConflictError(
            f"--run-id {run_id}: the run is already {recorded.info.status.name}; --run-id "
            "continues a SCHEDULED or RUNNING run"
        )
    experiment = store.get_experiment(recorded.info.experiment_id)
    existing = recorded.tags
    store.set_tags(
        recorded.info,
        {k: v for k, v in tags.items() if k not in existing or k.startswith(_NODE_TAGS)},
    )
    return store.set_run_status(recorded.info, RunStatus.RUNNING), experiment, recorded.params


def keep_submitted_source(submitted: str | None, record: dict[str, Any]) -> dict[str, Any]:
    """The node ran a staged copy; the record keeps the source the user submitted."""
    if submitted is None:
        return record
    try:
        source = json.loads(submitted).get("source")
    except (ValueError, AttributeError):
        return record
    return {**record, "source": source} if source else record
