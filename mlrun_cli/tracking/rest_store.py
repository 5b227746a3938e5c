"""The store of a tracking server (or database) spoken to in MLflow's REST vocabulary.

Every call is one of MLflow's `/api/2.0/mlflow/...` endpoints with its JSON payload; the
transport either sends it over HTTP (a tracking server) or hands it to MLflow's own store
classes in this process (database_store.py). Searches go to the server, which evaluates the
filter and the order, page by page.

Artifacts: when the run's artifact location is on this machine they are written in place;
otherwise they are staged under the user cache directory (the backends stream the logs there)
and uploaded by `publish` at the end of the run. Once the server stops answering during a run,
every later write for that run is kept, in order, and `publish` moves them with the staged files
into the outbox that `mlrun sync` replays: the entry point is never stopped by a lost server.
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mlrun_cli.errors import ConflictError, NotFoundError, StoreError
from mlrun_cli.tracking import outbox
from mlrun_cli.tracking.artifact_repos import ArtifactRepository, artifact_repository
from mlrun_cli.tracking.entities import ACTIVE, DELETED, Experiment, RunInfo, RunStatus
from mlrun_cli.tracking.http_client import HttpClient, ServerUnreachableError
from mlrun_cli.tracking.keys import params_within_limits, tags_within_limits
from mlrun_cli.tracking.outbox import PendingCall
from mlrun_cli.tracking.remote_run import (
    JsonObject,
    RemoteRun,
    as_key_values,
    experiment_from_json,
    run_info_from_json,
)
from mlrun_cli.tracking.stored_run import files_below
from mlrun_cli.tracking.tags import DATA_CONTEXT_TAG, RUN_NAME_TAG

if TYPE_CHECKING:
    from mlrun_cli.core.settings import Settings

log = logging.getLogger(__name__)
# MLflow's limits for one runs/log-batch request.
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_PER_BATCH = 100
MAX_TAGS_PER_BATCH = 100
SEARCH_PAGE = 1000
_VIEWS = {"active_only": "ACTIVE_ONLY", "deleted_only": "DELETED_ONLY", "all": "ALL"}


class Transport(Protocol):
    @property
    def location(self) -> str:
        """The store as messages name it, without credentials."""
        ...

    @property
    def server(self) -> HttpClient | None:
        """The HTTP client of a tracking server (for its artifact proxy), if there is one."""
        ...

    def call(
        self, method: str, endpoint: str, payload: Mapping[str, Any] | None = None
    ) -> JsonObject: ...


class HttpTransport:
    def __init__(self, client: HttpClient) -> None:
        self.client = client

    @property
    def location(self) -> str:
        return self.client.shown_uri

    @property
    def server(self) -> HttpClient | None:
        return self.client

    def call(
        self, method: str, endpoint: str, payload: Mapping[str, Any] | None = None
    ) -> JsonObject:
        return self.client.call(method, endpoint, payload)


def open_rest_store(settings: Settings) -> RestStore:
    from mlrun_cli.core.caches import artifact_staging_dir, outbox_dir
    from mlrun_cli.tracking.http_client import ClientSettings

    client = HttpClient(settings.tracking_uri, ClientSettings.from_environ(settings.environ))
    return RestStore(
        HttpTransport(client),
        settings.tracking_uri,
        artifact_staging_dir(settings.environ),
        outbox_dir(settings.environ),
    )


class RestStore:
    """The Store protocol over MLflow's REST endpoints. Constructing it sends nothing."""

    def __init__(self, transport: Transport, uri: str, staging: Path, outbox_root: Path) -> None:
        self.transport = transport
        self.uri = uri
        self.staging = staging
        self.outbox_root = outbox_root
        self._deferred: dict[str, list[PendingCall]] = {}
        self._repositories: dict[str, ArtifactRepository] = {}

    @property
    def location(self) -> str:
        return self.transport.location

    def _call(self, method: str, endpoint: str, payload: Mapping[str, Any]) -> JsonObject:
        return self.transport.call(method, endpoint, payload)

    # -- the store itself -------------------------------------------------------------------

    def ensure(self) -> None:
        """Prove the server answers and accepts our credentials, before a run exists."""
        self._call("POST", "experiments/search", {"max_results": 1})

    def check_readable(self) -> None:
        self.ensure()

    def exists(self) -> bool:
        return True

    # -- experiments ------------------------------------------------------------------------

    def get_experiment(self, experiment_id: str) -> Experiment:
        try:
            answer = self._call("GET", "experiments/get", {"experiment_id": experiment_id})
        except NotFoundError:
            message = f"no experiment with id {experiment_id} in {self.location}"
            raise NotFoundError(message) from None
        return experiment_from_json(answer["experiment"])

    def find_experiment(self, name: str) -> Experiment | None:
        try:
            answer = self._call("GET", "experiments/get-by-name", {"experiment_name": name})
        except NotFoundError:
            return None
        return experiment_from_json(answer["experiment"])

    def list_experiments(self, view: str = "active_only") -> list[Experiment]:
        found: list[Experiment] = []
        for page in self._pages("experiments/search", {"view_type": _VIEWS.get(view, "ALL")}):
            found.extend(experiment_from_json(e) for e in page.get("experiments", []))
        return sorted(found, key=lambda e: (e.creation_time or 0, e.experiment_id))

    def create_experiment(self, name: str, artifact_location: str | None = None) -> Experiment:
        if not name or not name.strip():
            raise ConflictError("an experiment name must not be empty")
        existing = self.find_experiment(name)
        if existing is not None:
            state = ", deleted" if existing.lifecycle_stage == DELETED else ""
            raise ConflictError(
                f"experiment '{name}' already exists{state} (id {existing.experiment_id})"
            )
        payload: dict[str, Any] = {"name": name}
        if artifact_location:
            payload["artifact_location"] = artifact_location
        answer = self._call("POST", "experiments/create", payload)
        return self.get_experiment(str(answer["experiment_id"]))

    def get_or_create_experiment(self, name: str) -> Experiment:
        existing = self.find_experiment(name)
        if existing is None:
            try:
                created = self.create_experiment(name)
                # a mistyped name would otherwise silently start a new experiment
                log.info("created experiment '%s' (id %s)", name, created.experiment_id)
                return created
            except ConflictError:  # created by someone else meanwhile
                existing = self.find_experiment(name)
                if existing is None:
                    raise
        if existing.lifecycle_stage != ACTIVE:
            raise ConflictError(
                f"experiment '{name}' (id {existing.experiment_id}) is deleted; restore it with "
                f"`mlrun experiments restore --experiment-id {existing.experiment_id}`"
            )
        return existing

    def rename_experiment(self, experiment_id: str, new_name: str) -> Experiment:
        if not new_name or not new_name.strip():
            raise ConflictError("an experiment name must not be empty")
        clash = self.find_experiment(new_name)
        if clash is not None:
            taken = f"experiment '{new_name}' already exists (id {clash.experiment_id})"
            raise ConflictError(taken)
        payload = {"experiment_id": experiment_id, "new_name": new_name}
        self._call("POST", "experiments/update", payload)
        return self.get_experiment(experiment_id)

    def delete_experiment(self, experiment_id: str) -> Experiment:
        if experiment_id == "0":
            raise ConflictError("the Default experiment (id 0) cannot be deleted")
        if self.get_experiment(experiment_id).lifecycle_stage != ACTIVE:
            raise ConflictError(f"experiment {experiment_id} is already deleted")
        self._call("POST", "experiments/delete", {"experiment_id": experiment_id})
        return self.get_experiment(experiment_id)

    def restore_experiment(self, experiment_id: str) -> Experiment:
        if self.get_experiment(experiment_id).lifecycle_stage == ACTIVE:
            raise ConflictError(f"experiment {experiment_id} is not deleted")
        self._call("POST", "experiments/restore", {"experiment_id": experiment_id})
        return self.get_experiment(experiment_id)

    # -- runs -------------------------------------------------------------------------------

    def create_run(
        self, experiment: Experiment, run_name: str, user: str, tags: Mapping[str, str]
    ) -> RunInfo:
        from mlrun_cli.tracking.file_store import now_ms

        if experiment.lifecycle_stage != ACTIVE:
            raise ConflictError(f"experiment {experiment.experiment_id} is deleted")
        all_tags = tags_within_limits({RUN_NAME_TAG: run_name, **tags})
        first = dict(list(all_tags.items())[:MAX_TAGS_PER_BATCH])
        payload = {
            "experiment_id": experiment.experiment_id,
            "user_id": user,
            "run_name": run_name,
            "start_time": now_ms(),
            "tags": as_key_values(first),
        }
        answer = self._call("POST", "runs/create", payload)
        info = run_info_from_json(answer["run"]["info"])
        rest = {k: v for k, v in all_tags.items() if k not in first}
        if rest:
            self.set_tags(info, rest)
        return info

    def _write(self, info: RunInfo, endpoint: str, payload: Mapping[str, Any]) -> None:
        """A write for a run that exists: kept for the outbox once the server stops answering."""
        deferred = self._deferred.get(info.run_id)
        if deferred is None:
            try:
                self._call("POST", endpoint, payload)
                return
            except ServerUnreachableError as exc:
                log.warning("%s; keeping the run's updates to send later", exc.message)
                deferred = self._deferred[info.run_id] = []
        deferred.append(PendingCall("POST", endpoint, payload))

    def log_params(self, info: RunInfo, params: Mapping[str, str]) -> None:
        items = list(params_within_limits(params).items())
        for start in range(0, len(items), MAX_PARAMS_PER_BATCH):
            chunk = dict(items[start : start + MAX_PARAMS_PER_BATCH])
            payload = {"run_id": info.run_id, "params": as_key_values(chunk)}
            self._write(info, "runs/log-batch", payload)

    def set_tags(self, info: RunInfo, tags: Mapping[str, str]) -> None:
        items = list(tags_within_limits(tags).items())
        for start in range(0, len(items), MAX_TAGS_PER_BATCH):
            chunk = dict(items[start : start + MAX_TAGS_PER_BATCH])
            payload = {"run_id": info.run_id, "tags": as_key_values(chunk)}
            self._write(info, "runs/log-batch", payload)

    def finish_run(self, info: RunInfo, status: RunStatus, end_time: int) -> RunInfo:
        payload = {"run_id": info.run_id, "status": status.name, "end_time": end_time}
        self._write(info, "runs/update", payload)
        return RunInfo(**{**info.__dict__, "status": status, "end_time": end_time})

    def set_run_status(self, info: RunInfo, status: RunStatus) -> RunInfo:
        self._write(info, "runs/update", {"run_id": info.run_id, "status": status.name})
        return RunInfo(**{**info.__dict__, "status": status})

    def log_metrics(self, info: RunInfo, metrics: Mapping[str, float], timestamp: int) -> None:
        items = [
            {"key": key, "value": json_number(value), "timestamp": timestamp, "step": 0}
            for key, value in metrics.items()
        ]
        for start in range(0, len(items), MAX_METRICS_PER_BATCH):
            payload = {
                "run_id": info.run_id,
                "metrics": items[start : start + MAX_METRICS_PER_BATCH],
            }
            self._write(info, "runs/log-batch", payload)

    def log_dataset_input(
        self, info: RunInfo, dataset: Mapping[str, str | None], context: str
    ) -> None:
        fields = {key: value for key, value in dataset.items() if value is not None}
        payload = {
            "run_id": info.run_id,
            "datasets": [
                {"tags": [{"key": DATA_CONTEXT_TAG, "value": context}], "dataset": fields}
            ],
        }
        self._write(info, "runs/log-inputs", payload)

    def get_run(self, run_id: str) -> RemoteRun:
        try:
            answer = self._call("GET", "runs/get", {"run_id": run_id})
        except NotFoundError:
            raise NotFoundError(f"no run {run_id} in {self.location}") from None
        return RemoteRun(answer["run"])

    def metric_history(self, info: RunInfo, key: str) -> list[tuple[int, float, int]]:
        points: list[tuple[int, float, int]] = []
        request: dict[str, Any] = {"run_id": info.run_id, "metric_key": key}
        while True:
            page = self._call("GET", "metrics/get-history", {**request, "max_results": 25000})
            points.extend(
                (int(m.get("timestamp", 0)), float(m["value"]), int(m.get("step", 0)))
                for m in page.get("metrics", [])
            )
            if not page.get("next_page_token"):
                return points
            request["page_token"] = page["next_page_token"]

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        order_by: Sequence[str],
        view: str,
        max_results: int,
    ) -> list[RemoteRun]:
        payload: dict[str, Any] = {
            "experiment_ids": list(experiment_ids),
            "run_view_type": _VIEWS.get(view, "ALL"),
            "order_by": list(order_by),
        }
        if filter_string:
            payload["filter"] = filter_string
        found: list[RemoteRun] = []
        if not experiment_ids:
            return found
        for page in self._pages("runs/search", payload, max_results):
            found.extend(RemoteRun(r) for r in page.get("runs", []))
        return found[:max_results]

    def stored_runs(
        self, experiment_ids: Sequence[str], view: str = "active_only"
    ) -> list[RemoteRun]:
        return self.search_runs(experiment_ids, None, (), view, 10**9)

    def runs_with_prefix(self, prefix: str) -> list[RemoteRun]:
        """A run by its full id (one request), or by a prefix (searched in every experiment)."""
        prefix = prefix.lower()
        if not prefix or not all(c in "0123456789abcdef" for c in prefix):
            return []
        if len(prefix) == 32:
            try:
                return [self.get_run(prefix)]
            except NotFoundError:
                return []
        experiments = [e.experiment_id for e in self.list_experiments("all")]
        runs = self.stored_runs(experiments, "all")
        return [run for run in runs if run.info.run_id.startswith(prefix)]

    def list_runs(self, experiment: Experiment) -> list[RunInfo]:
        runs = self.stored_runs([experiment.experiment_id], "all")
        return sorted((r.info for r in runs), key=lambda info: info.start_time, reverse=True)

    def set_run_lifecycle(self, info: RunInfo, stage: str) -> None:
        endpoint = "runs/delete" if stage == DELETED else "runs/restore"
        self._call("POST", endpoint, {"run_id": info.run_id})

    def _pages(
        self, endpoint: str, payload: Mapping[str, Any], limit: int = 10**9
    ) -> Iterator[JsonObject]:
        token: str | None = None
        seen = 0
        while seen < limit:
            page_size = min(SEARCH_PAGE, limit - seen)
            request = {**payload, "max_results": page_size}
            if token:
                request["page_token"] = token
            page = self._call("POST", endpoint, request)
            yield page
            seen += page_size
            token = page.get("next_page_token")
            if not token:
                return

    # -- artifacts --------------------------------------------------------------------------

    def repository(self, info: RunInfo) -> ArtifactRepository:
        repository = self._repositories.get(info.artifact_uri)
        if repository is None:
            repository = artifact_repository(info.artifact_uri, self.transport.server)
            self._repositories[info.artifact_uri] = repository
        return repository

    def artifact_dir(self, info: RunInfo) -> Path:
        """In place for a local artifact location; else a staging folder, uploaded by publish."""
        return self.repository(info).local_dir or self.staging / info.run_id

    def add_artifact(self, info: RunInfo, source: Path, relative: str) -> None:
        target = self.artifact_dir(info) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)

    def write_artifact(self, info: RunInfo, relative: str, text: str) -> None:
        from mlrun_cli.core.atomic import write_atomic

        write_atomic(self.artifact_dir(info) / relative, text)

    def publish(self, info: RunInfo) -> None:
        """Send what the entry point could not, upload the staged artifacts; what cannot reach
        the server goes to the outbox."""
        self._send_unsent(info)
        repository = self.repository(info)
        staged = self.staging / info.run_id
        if repository.local_dir is None and staged.is_dir() and info.run_id not in self._deferred:
            try:
                for relative, path in files_below(staged):
                    try:
                        repository.upload(path, relative)
                    except FileNotFoundError:  # another mlrun ending the run sent it first
                        continue
                    path.unlink(missing_ok=True)
                shutil.rmtree(staged, ignore_errors=True)
            except ServerUnreachableError as exc:
                log.warning("%s; keeping the run's artifacts to send later", exc.message)
                self._deferred.setdefault(info.run_id, [])
        calls = self._deferred.pop(info.run_id, None)
        if calls is None:
            return
        entry = outbox.keep(
            self.outbox_root,
            self.uri,
            info.run_id,
            info.artifact_uri,
            calls,
            staged if repository.local_dir is None else None,
        )
        log.warning(
            "run %s: %d updates and its artifacts could not reach %s; they are kept in %s; "
            "run `mlrun sync` to send them",
            info.run_id,
            len(calls),
            self.location,
            entry.directory,
        )

    def _send_unsent(self, info: RunInfo) -> None:
        """The entry point's batches that missed the server: sent now, or kept for the outbox."""
        for call in outbox.take_unsent(outbox.unsent_file(self.staging, info.run_id)):
            try:
                self._write(info, call.endpoint, call.payload)
            except StoreError as exc:  # refused: sending it again cannot succeed
                log.warning("%s; dropped a batch the entry point could not send earlier", exc)

    def read_artifact(self, info: RunInfo, relative: str) -> str | None:
        data = self.repository(info).read(relative)
        return None if data is None else data.decode("utf-8", errors="replace")

    def list_artifacts(self, info: RunInfo) -> list[tuple[str, int]]:
        try:
            return self.repository(info).list()
        except NotFoundError:
            return []

    # -- the entry point's side -------------------------------------------------------------

    def child_environment(self, info: RunInfo, experiment: Experiment) -> dict[str, str]:
        """The same URI: credentials travel in the child's (unchanged) environment, not here;
        mlrun_log writes what it could not send to MLRUN_LOG_UNSENT, which publish sends."""
        return {
            "MLRUN_LOG_UNSENT": str(outbox.unsent_file(self.staging, info.run_id)),
            "MLFLOW_RUN_ID": info.run_id,
            "MLFLOW_EXPERIMENT_ID": experiment.experiment_id,
            "MLFLOW_EXPERIMENT_NAME": experiment.name,
            "MLFLOW_TRACKING_URI": self.uri,
        }

    def host_paths(self, info: RunInfo) -> tuple[Path, ...]:
        """Folders the entry point writes through: made here, as docker would make them root's."""
        local = self.repository(info).local_dir
        unsent = outbox.unsent_file(self.staging, info.run_id).parent
        unsent.mkdir(parents=True, exist_ok=True)
        return (unsent,) if local is None else (local, unsent)


def json_number(value: float) -> float | str:
    """NaN and infinities as MLflow's client sends them, as strings: JSON has no such tokens, and
    the server reads the token NaN as 0.0 and drops Infinity with the rest of its batch."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def sync_entry(store: RestStore, entry: outbox.OutboxEntry) -> None:
    """Replay one outbox entry; each call and file is dropped as soon as the server has it."""
    while entry.calls:
        call = entry.calls[0]
        store.transport.call(call.method, call.endpoint, call.payload)
        entry = entry.without_first_call()
    info = store.get_run(entry.run_id).info
    repository = store.repository(info)
    for relative, path in files_below(entry.artifact_dir):
        repository.upload(path, relative)
        path.unlink()
    shutil.rmtree(entry.directory)
