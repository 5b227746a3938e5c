"""The Store seam: what the pipeline and the runs/experiments commands ask of a tracking store.

Three implementations: the file store (`./mlruns`, a path or `file:` URI), the REST store
(`http(s)://`, an MLflow tracking server) and the database store (`sqlite:`, `postgresql:`,
`mysql:`, `mssql:`, through MLflow's own store classes). `open_store` is the one place that
turns the tracking URI (`--tracking-uri`, else MLFLOW_TRACKING_URI, else ./mlruns) into a store.

Artifacts: `artifact_dir(run)` is always a folder on this machine, because the backends stream
the entry point's logs into it. A file store writes there in place; a remote store stages
there (under the user cache directory) and uploads everything in `publish(run)`. Every path
that ends a run (the pipeline, a job's submitter, a sweep's parent, a Slurm array's children)
publishes through the one `mlrun_cli.run.finish.finish_run` (record, final status, publish).
What a remote store cannot deliver by then goes to the outbox that `mlrun sync` replays.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mlrun_cli.core.tracking_uri import DATABASE_SCHEMES, HTTP_SCHEMES
from mlrun_cli.core.uri import local_path_of
from mlrun_cli.errors import NotFoundError, UsageError
from mlrun_cli.tracking import artifacts
from mlrun_cli.tracking.entities import Experiment, RunInfo, RunStatus, SearchableRun

if TYPE_CHECKING:
    from mlrun_cli.core.settings import Settings


class RecordedRun(SearchableRun, Protocol):
    """A run as the runs commands see it; params, metrics and tags are read on first use."""

    info: RunInfo
    deleted_time: int | None
    damage: list[str]  # the parts that could not be read (filled as they are read)

    @property
    def duration_seconds(self) -> float | None: ...


class Store(Protocol):
    """Experiments and runs, wherever they are kept."""

    @property
    def location(self) -> str:
        """The store as messages name it (a directory, a URI)."""
        ...

    def ensure(self) -> None:
        """Create the store if needed and prove it can be written: before a run exists."""
        ...

    def check_readable(self) -> None: ...

    def exists(self) -> bool:
        """False only for a file store not created yet (listing it shows nothing)."""
        ...

    # experiments
    def get_experiment(self, experiment_id: str) -> Experiment: ...

    def find_experiment(self, name: str) -> Experiment | None: ...

    def list_experiments(self, view: str = "active_only") -> list[Experiment]: ...

    def create_experiment(self, name: str, artifact_location: str | None = None) -> Experiment: ...

    def get_or_create_experiment(self, name: str) -> Experiment: ...

    def rename_experiment(self, experiment_id: str, new_name: str) -> Experiment: ...

    def delete_experiment(self, experiment_id: str) -> Experiment: ...

    def restore_experiment(self, experiment_id: str) -> Experiment: ...

    # runs
    def create_run(
        self, experiment: Experiment, run_name: str, user: str, tags: Mapping[str, str]
    ) -> RunInfo: ...

    def log_params(self, info: RunInfo, params: Mapping[str, str]) -> None: ...

    def set_tags(self, info: RunInfo, tags: Mapping[str, str]) -> None: ...

    def finish_run(self, info: RunInfo, status: RunStatus, end_time: int) -> RunInfo: ...

    def log_metrics(self, info: RunInfo, metrics: Mapping[str, float], timestamp: int) -> None:
        """One point per metric at step 0 (a reused run carries the earlier run's results)."""

    def set_run_status(self, info: RunInfo, status: RunStatus) -> RunInfo:
        """A status that is not final (SCHEDULED while a job waits, RUNNING once it starts)."""
        ...

    def get_run(self, run_id: str) -> RecordedRun:
        """The run with exactly this id, read afresh (a job's node may have changed it)."""
        ...

    def metric_history(self, info: RunInfo, key: str) -> list[tuple[int, float, int]]:
        """(timestamp, value, step) of every point of one metric, in logging order (a search's
        pruner reads its running trials with it)."""
        ...

    def log_dataset_input(
        self, info: RunInfo, dataset: Mapping[str, str | None], context: str
    ) -> None: ...

    def stored_runs(
        self, experiment_ids: Sequence[str], view: str = "active_only"
    ) -> Sequence[RecordedRun]: ...

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        order_by: Sequence[str],
        view: str,
        max_results: int,
    ) -> Sequence[RecordedRun]:
        """MLflow's runs search; a server evaluates the filter and the order itself."""
        ...

    def runs_with_prefix(self, prefix: str) -> Sequence[RecordedRun]: ...

    def list_runs(self, experiment: Experiment) -> list[RunInfo]: ...

    def set_run_lifecycle(self, info: RunInfo, stage: str) -> None: ...

    # artifacts
    def artifact_dir(self, info: RunInfo) -> Path:
        """Where the run's artifacts are written on this machine (logs stream into it)."""
        ...

    def add_artifact(self, info: RunInfo, source: Path, relative: str) -> None: ...

    def write_artifact(self, info: RunInfo, relative: str, text: str) -> None: ...

    def publish(self, info: RunInfo) -> None:
        """Deliver what was staged for the run (a remote store uploads it; see the module)."""
        ...

    def read_artifact(self, info: RunInfo, relative: str) -> str | None:
        """The artifact's text, or None when the run has no such artifact."""
        ...

    def list_artifacts(self, info: RunInfo) -> list[tuple[str, int]]:
        """(relative path, size) of every artifact, sorted."""
        ...

    # the entry point's side
    def child_environment(self, info: RunInfo, experiment: Experiment) -> dict[str, str]:
        """What makes `mlflow.start_run()` (and mlrun_log) in the entry point attach to the run."""
        ...

    def host_paths(self, info: RunInfo) -> tuple[Path, ...]:
        """Local folders the entry point writes to through the store (mounted in containers)."""
        ...


def log_locations(store: Store, info: RunInfo) -> dict[str, str]:
    """Where the user finds the run's logs once it has ended: the files on this machine when
    the store keeps artifacts here, else their URIs in the store (the staging folder the logs
    were written to is gone once they are published)."""
    logs = {"stdout": artifacts.STDOUT_LOG, "stderr": artifacts.STDERR_LOG}
    if local_path_of(info.artifact_uri) is not None or not info.artifact_uri:
        return {name: str(store.artifact_dir(info) / path) for name, path in logs.items()}
    return {name: f"{info.artifact_uri.rstrip('/')}/{path}" for name, path in logs.items()}


def runs_tagged(store: Store, experiment_id: str, tag: str, value: str) -> Sequence[RecordedRun]:
    """The experiment's active runs with `tag` = `value`, newest first: a server evaluates the
    filter itself, so only the matching runs travel. `value` is an id or a hash (no quote)."""
    filter_string = f"tags.`{tag}` = '{value}'"
    return store.search_runs([experiment_id], filter_string, (), "active_only", 10**9)


def newest_finished_tagged(
    store: Store, experiment_id: str, tag: str, values: Collection[str]
) -> dict[str, RecordedRun]:
    """value -> the newest FINISHED active run with `tag` = value. A server or database answers
    one search per value with at most one run (MLflow's filter has no IN for tags); the file
    store reads its runs here anyway, so it answers all values in one pass."""
    finished = "attributes.status = 'FINISHED'"
    if not _searches_remotely(store):
        found: dict[str, RecordedRun] = {}
        tagged = f"tags.`{tag}` IS NOT NULL and {finished}"
        for run in store.search_runs([experiment_id], tagged, (), "active_only", 10**9):
            value = run.tags[tag]
            if value in values and value not in found:
                found[value] = run
        return found
    answers = {
        value: store.search_runs(
            [experiment_id], f"tags.`{tag}` = '{value}' and {finished}", (), "active_only", 1
        )
        for value in values
    }
    return {value: runs[0] for value, runs in answers.items() if runs}


def _searches_remotely(store: Store) -> bool:
    from mlrun_cli.tracking.file_store import FileStore

    return not isinstance(store, FileStore)


def open_store(settings: Settings) -> Store:
    """The store the invocation names; constructing it touches nothing (on disk or network)."""
    scheme = settings.tracking_uri.partition(":")[0].lower()
    if scheme in HTTP_SCHEMES:
        from mlrun_cli.tracking.rest_store import open_rest_store

        return open_rest_store(settings)
    if scheme.split("+")[0] in DATABASE_SCHEMES:
        from mlrun_cli.tracking.database_store import open_database_store

        return open_database_store(settings)
    from mlrun_cli.tracking.file_store import FileStore

    return FileStore(settings.store_root)


def existing_store(settings: Settings) -> Store:
    """The store of a command that only reads or changes what is there: it must exist."""
    store = open_store(settings)
    store.check_readable()
    return store


def find_run(store: Store, prefix: str) -> RecordedRun:
    """A run by its id or a unique prefix of it."""
    found = store.runs_with_prefix(prefix)
    if not found:
        raise NotFoundError(f"no run with id {prefix!r} in {store.location}")
    if len(found) > 1:
        ids = ", ".join(r.info.run_id for r in found[:5])
        raise UsageError(f"run id prefix {prefix!r} is ambiguous: {ids}; give more characters")
    return found[0]
