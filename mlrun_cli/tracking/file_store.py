"""MLflow's file store (`./mlruns`), written byte for byte as MLflow 3 writes it.

Layout and field order follow MLflow's FileStore so that `mlflow.get_run()`, `search_runs()`
and the MLflow UI read what mlrun writes, and mlrun reads what they write. Files that are
replaced go through a temporary file and `os.replace`, so a crash never leaves half a meta.yaml.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import Any

from mlrun_cli.core.atomic import copy_atomic, write_atomic
from mlrun_cli.core.locks import exclusive_lock
from mlrun_cli.core.uri import path_of_file_uri
from mlrun_cli.errors import ConflictError, NotFoundError, StoreError
from mlrun_cli.tracking import run_index, tag_index
from mlrun_cli.tracking.damage import (
    DamagedFile,
    check_experiment_meta,
    check_run_meta,
    entry_label,
    load_meta,
)
from mlrun_cli.tracking.entities import ACTIVE, DELETED, Experiment, RunInfo, RunStatus
from mlrun_cli.tracking.keys import (
    clash_problem,
    experiment_name_problem,
    key_problem,
    params_within_limits,
    tags_within_limits,
    text_encoding_problem,
)
from mlrun_cli.tracking.meta_files import MetaFormatError, dump_yaml, parse_meta, salvage_fields
from mlrun_cli.tracking.store_io import store_io
from mlrun_cli.tracking.stored_run import StoredRun, files_below, read_values
from mlrun_cli.tracking.tags import DATA_CONTEXT_TAG, RUN_NAME_TAG

log = logging.getLogger(__name__)
DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
TRASH = ".trash"
META = "meta.yaml"
LOCK = ".mlrun.lock"
RUN_LOCK = ".meta.lock"  # in the run's folder: serialises mlrun's read-modify-writes of its meta
RUN_KEYS = ("run_id", "experiment_id")  # a run meta.yaml without them is torn or damaged
TORN_READ_SECONDS = 2.0  # how long a meta.yaml MLflow is rewriting in place may look torn
TORN_READ_POLL = 0.02
# MLflow's experiment ids are random integers of this many digits.
_EXPERIMENT_ID_DIGITS = 18


def now_ms() -> int:
    return int(time.time() * 1000)


class FileStore:
    """One store directory. Constructing it touches nothing; `ensure()` creates it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    # -- the store itself -------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the store with its Default experiment if needed, and prove it is writable."""
        if self.root.exists() and not self.root.is_dir():
            raise StoreError(f"tracking store {self.root} is a file, not a directory")
        try:
            (self.root / TRASH).mkdir(parents=True, exist_ok=True)
            # per thread too: a sweep runs several runs in one process
            probe = self.root / f".mlrun-write-test.{os.getpid()}.{threading.get_ident()}"
            probe.write_text("")
            probe.unlink()
            if self._experiment_dir(DEFAULT_EXPERIMENT_ID) is None:
                self._write_new_experiment(DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME, None)
        except OSError as exc:
            raise StoreError(
                f"tracking store {self.root} is not writable ({exc.strerror}); "
                "pass --tracking-uri with a directory you can write"
            ) from None

    def check_readable(self) -> None:
        """Commands that only read need an existing directory, not a writable one."""
        if not self.root.exists():
            raise StoreError(f"no tracking store at {self.root} (nothing has been run there yet)")
        if not self.root.is_dir():
            raise StoreError(f"tracking store {self.root} is a file, not a directory")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise StoreError(f"tracking store {self.root} is not readable (permission denied)")

    def exists(self) -> bool:
        return self.root.exists()

    def _locked(self) -> AbstractContextManager[None]:
        """Serialise name checks and creations between concurrent mlrun processes."""
        return exclusive_lock(self.root / LOCK)

    # -- experiments ------------------------------------------------------------------------

    def _experiment_dir(self, experiment_id: str) -> Path | None:
        if not experiment_id.isdigit():
            return None
        for parent in (self.root, self.root / TRASH):
            candidate = parent / experiment_id
            if (candidate / META).is_file():
                return candidate
        return None

    def _read_meta(self, path: Path) -> dict[str, Any]:
        return read_meta(path)

    def _experiment_from_dir(self, directory: Path) -> Experiment:
        try:
            meta = load_meta(directory / META)
            check_experiment_meta(meta)
        except DamagedFile as exc:
            raise StoreError(
                f"{entry_label(directory, 1)}: meta.yaml unreadable ({exc.reason})"
            ) from None
        return Experiment(
            experiment_id=str(meta["experiment_id"]),
            name=str(meta["name"]),
            artifact_location=str(meta.get("artifact_location", "")),
            lifecycle_stage=str(meta.get("lifecycle_stage", ACTIVE)),
            creation_time=meta.get("creation_time"),
            last_update_time=meta.get("last_update_time"),
            tags=read_values(directory / "tags"),
        )

    def get_experiment(self, experiment_id: str) -> Experiment:
        directory = self._experiment_dir(experiment_id)
        if directory is None:
            raise NotFoundError(f"no experiment with id {experiment_id} in {self.root}")
        return self._experiment_from_dir(directory)

    def find_experiment(self, name: str) -> Experiment | None:
        """The experiment called `name`, active or deleted (names stay reserved, as in MLflow)."""
        return next((e for e in self.list_experiments("all") if e.name == name), None)

    def list_experiments(self, view: str = "active_only") -> list[Experiment]:
        """`view` is MLflow's: active_only, deleted_only or all. Broken entries are skipped."""
        parents = {"active_only": [self.root], "deleted_only": [self.root / TRASH]}.get(
            view, [self.root, self.root / TRASH]
        )
        found = []
        for parent in parents:
            if not parent.is_dir():
                continue
            for directory in sorted(parent.iterdir()):
                if not directory.name.isdigit() or not (directory / META).is_file():
                    continue
                try:
                    found.append(self._experiment_from_dir(directory))
                except StoreError as exc:
                    log.warning("%s; skipped", exc.message)
        return sorted(found, key=lambda e: (e.creation_time or 0, e.experiment_id))

    @store_io("create the experiment")
    def create_experiment(self, name: str, artifact_location: str | None = None) -> Experiment:
        check_experiment_name(name)
        with self._locked():
            self._check_name_free(name)
            experiment_id = self._new_experiment_id()
            self._write_new_experiment(experiment_id, name, artifact_location)
        return self.get_experiment(experiment_id)

    @store_io("create the experiment")
    def get_or_create_experiment(self, name: str) -> Experiment:
        """What `mlrun run --experiment-name` does: reuse an active one, create a missing one."""
        with self._locked():
            existing = self.find_experiment(name)
            if existing is None:
                check_experiment_name(name)
                experiment_id = self._new_experiment_id()
                self._write_new_experiment(experiment_id, name, None)
                # a mistyped name would otherwise silently start a new experiment
                log.info("created experiment '%s' (id %s)", name, experiment_id)
                return self.get_experiment(experiment_id)
        if existing.lifecycle_stage != ACTIVE:
            raise ConflictError(
                f"experiment '{name}' (id {existing.experiment_id}) is deleted; restore it with "
                f"`mlrun experiments restore --experiment-id {existing.experiment_id}`"
            )
        return existing

    def _check_name_free(self, name: str) -> None:
        existing = self.find_experiment(name)
        if existing is None:
            return
        if existing.lifecycle_stage == DELETED:
            raise ConflictError(
                f"experiment '{name}' already exists, deleted (id {existing.experiment_id}); "
                "restore it or choose another name"
            )
        raise ConflictError(f"experiment '{name}' already exists (id {existing.experiment_id})")

    def _new_experiment_id(self) -> str:
        while True:
            low = 10 ** (_EXPERIMENT_ID_DIGITS - 1)
            candidate = str(low + secrets.randbelow(9 * low))
            if self._experiment_dir(candidate) is None:
                return candidate

    def _write_new_experiment(
        self, experiment_id: str, name: str, artifact_location: str | None
    ) -> None:
        created = now_ms()
        meta = {
            "artifact_location": artifact_location or f"{self.root.as_uri()}/{experiment_id}",
            "creation_time": created,
            "effective_trace_archival_retention": None,
            "experiment_id": experiment_id,
            "last_update_time": created,
            "lifecycle_stage": ACTIVE,
            "name": name,
            "trace_location": None,
            "workspace": "default",
        }
        directory = self.root / experiment_id
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(directory / META, dump_yaml(meta), durable=True)

    def _update_experiment_meta(self, directory: Path, **changes: Any) -> None:
        """Rewrite only the given fields, keeping whatever else MLflow stored there."""
        meta = self._read_meta(directory / META)
        meta.update(changes, last_update_time=now_ms())
        write_atomic(directory / META, dump_yaml(meta), durable=True)

    @store_io("rename the experiment")
    def rename_experiment(self, experiment_id: str, new_name: str) -> Experiment:
        check_experiment_name(new_name)
        with self._locked():
            experiment = self.get_experiment(experiment_id)
            if experiment.lifecycle_stage != ACTIVE:
                raise ConflictError(f"experiment {experiment_id} is deleted; restore it first")
            self._check_name_free(new_name)
            self._update_experiment_meta(self.root / experiment_id, name=new_name)
        return self.get_experiment(experiment_id)

    @store_io("delete the experiment")
    def delete_experiment(self, experiment_id: str) -> Experiment:
        """MLflow's soft delete: the runs are marked deleted and the folder goes to .trash."""
        if experiment_id == DEFAULT_EXPERIMENT_ID:
            raise ConflictError("the Default experiment (id 0) cannot be deleted")
        with self._locked():
            experiment = self.get_experiment(experiment_id)
            if experiment.lifecycle_stage != ACTIVE:
                raise ConflictError(f"experiment {experiment_id} is already deleted")
            directory = self.root / experiment_id
            deleted_at = now_ms()
            for run_dir in _run_dirs(directory):
                self._update_run_meta(run_dir, lifecycle_stage=DELETED, deleted_time=deleted_at)
            self._update_experiment_meta(directory, lifecycle_stage=DELETED)
            os.replace(directory, self.root / TRASH / experiment_id)
        return self.get_experiment(experiment_id)

    @store_io("restore the experiment")
    def restore_experiment(self, experiment_id: str) -> Experiment:
        with self._locked():
            experiment = self.get_experiment(experiment_id)
            if experiment.lifecycle_stage == ACTIVE:
                raise ConflictError(f"experiment {experiment_id} is not deleted")
            self._check_name_free_for_restore(experiment)
            directory = self.root / experiment_id
            os.replace(self.root / TRASH / experiment_id, directory)
            for run_dir in _run_dirs(directory):
                self._update_run_meta(run_dir, lifecycle_stage=ACTIVE, deleted_time=None)
            self._update_experiment_meta(directory, lifecycle_stage=ACTIVE)
        return self.get_experiment(experiment_id)

    def _check_name_free_for_restore(self, experiment: Experiment) -> None:
        clash = [e for e in self.list_experiments("active_only") if e.name == experiment.name]
        if clash:
            raise ConflictError(
                f"cannot restore experiment {experiment.experiment_id}: the name "
                f"'{experiment.name}' is now used by experiment {clash[0].experiment_id}"
            )

    # -- runs -------------------------------------------------------------------------------

    @store_io("create the run")
    def create_run(
        self, experiment: Experiment, run_name: str, user: str, tags: Mapping[str, str]
    ) -> RunInfo:
        """A new RUNNING run with its tags, laid out as MLflow's create_run does.

        Readers (other mlrun processes, MLflow) know a run by its meta.yaml, so it is written
        last: the run appears whole, tags included, or not at all. Until then a failure removes
        the folder, which nobody could list; once listed the run is never removed (a reader may
        be following it): interrupted after that, it ends KILLED, as any interrupted run.
        """
        if experiment.lifecycle_stage != ACTIVE:
            raise ConflictError(f"experiment {experiment.experiment_id} is deleted")
        run_id = secrets.token_hex(16)
        run_dir = self.root / experiment.experiment_id / run_id
        artifact_root = path_of_file_uri(experiment.artifact_location)
        info = RunInfo(
            run_id=run_id,
            experiment_id=experiment.experiment_id,
            run_name=run_name,
            status=RunStatus.RUNNING,
            start_time=now_ms(),
            end_time=None,
            lifecycle_stage=ACTIVE,
            artifact_uri=f"{(artifact_root / run_id / 'artifacts').as_uri()}",
            user_id=user,
        )
        try:
            for sub in ("metrics", "params", "artifacts", "tags"):
                (run_dir / sub).mkdir(parents=True, exist_ok=True)
            _write_tags(run_dir / "tags", {RUN_NAME_TAG: run_name, **tags})
            write_atomic(run_dir / META, dump_yaml(_run_meta(info)), durable=True)
            run_index.record_run(run_dir.parent, run_id, info.start_time)
            tag_index.record_tagged(run_dir.parent, run_id, tags)
        except BaseException as exc:
            if not (run_dir / META).is_file():
                shutil.rmtree(run_dir, ignore_errors=True)
                raise
            killed = isinstance(exc, KeyboardInterrupt)
            status = RunStatus.KILLED if killed else RunStatus.FAILED
            self._update_run_meta(run_dir, status=int(status), end_time=now_ms())
            raise
        return info

    def _run_dir(self, info: RunInfo) -> Path:
        directory = self._experiment_dir(info.experiment_id)
        if directory is None or not (directory / info.run_id / META).is_file():
            raise NotFoundError(f"run {info.run_id} no longer exists in {self.root}")
        return directory / info.run_id

    def _update_run_meta(self, run_dir: Path, **changes: Any) -> None:
        """Read-modify-write under the run's lock, so a delete racing the final status keeps
        both; the read waits out MLflow's in-place rewrites, which no lock of ours can stop."""
        with exclusive_lock(run_dir / RUN_LOCK):
            meta = read_run_meta(run_dir / META)
            meta.update(changes)
            if meta.get("deleted_time", 0) is None:
                del meta["deleted_time"]  # MLflow drops it on every rewrite of a live run
            write_atomic(run_dir / META, dump_yaml(meta), durable=True)

    @store_io("write params")
    def log_params(self, info: RunInfo, params: Mapping[str, str]) -> None:
        """Params are immutable, as in MLflow: the same value again is fine, another is not."""
        params_dir = self._run_dir(info) / "params"
        _check_keys(params_dir, params)
        for key, value in params_within_limits(params).items():
            path = params_dir / key
            if path.is_file() and path.read_text(encoding="utf-8") != value:
                raise ConflictError(f"run {info.run_id}: param '{key}' is already logged")
            write_atomic(path, value)

    @store_io("write tags")
    def set_tags(self, info: RunInfo, tags: Mapping[str, str]) -> None:
        run_dir = self._run_dir(info)
        _write_tags(run_dir / "tags", tags)
        tag_index.record_tagged(run_dir.parent, info.run_id, tags)

    @store_io("record the run's end")
    def finish_run(self, info: RunInfo, status: RunStatus, end_time: int) -> RunInfo:
        """Record the final status; the runner's word wins over whatever the child wrote."""
        self._update_run_meta(self._run_dir(info), status=int(status), end_time=end_time)
        return RunInfo(**{**info.__dict__, "status": status, "end_time": end_time})

    @store_io("write metrics")
    def log_metrics(self, info: RunInfo, metrics: Mapping[str, float], timestamp: int) -> None:
        """Appended as MLflow's file store appends: `<timestamp ms> <value> <step>`."""
        metrics_dir = self._run_dir(info) / "metrics"
        for key, value in metrics.items():
            path = metrics_dir / key
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(f"{timestamp} {value!r} 0\n")

    @store_io("record the run's status")
    def set_run_status(self, info: RunInfo, status: RunStatus) -> RunInfo:
        self._update_run_meta(self._run_dir(info), status=int(status))
        return RunInfo(**{**info.__dict__, "status": status})

    def get_run(self, run_id: str) -> StoredRun:
        if not run_id or not all(c in "0123456789abcdef" for c in run_id):
            raise NotFoundError(f"no run {run_id!r} in {self.root} (run ids are hexadecimal)")
        for parent in (self.root, self.root / TRASH):
            for meta_path in parent.glob(f"*/{run_id}/{META}"):
                return StoredRun(meta_path.parent, _run_info(read_run_meta(meta_path)))
        raise NotFoundError(f"no run {run_id} in {self.root}")

    def metric_history(self, info: RunInfo, key: str) -> list[tuple[int, float, int]]:
        return StoredRun(self._run_dir(info), info).metric_history(key)

    def artifact_dir(self, info: RunInfo) -> Path:
        return path_of_file_uri(info.artifact_uri)

    @store_io("store an artifact")
    def add_artifact(self, info: RunInfo, source: Path, relative: str) -> None:
        """Copy a file into the run's artifacts, as `mlflow.log_artifact` would."""
        copy_atomic(source, self.artifact_dir(info) / relative)

    @store_io("store an artifact")
    def write_artifact(self, info: RunInfo, relative: str, text: str) -> None:
        write_atomic(self.artifact_dir(info) / relative, text)

    def publish(self, info: RunInfo) -> None:
        """Artifacts are written in place; nothing is left to deliver."""

    def read_artifact(self, info: RunInfo, relative: str) -> str | None:
        path = self.artifact_dir(info) / relative
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        except OSError as exc:
            raise StoreError(f"{path}: unreadable ({exc.strerror})") from None

    def list_artifacts(self, info: RunInfo) -> list[tuple[str, int]]:
        return [(key, path.stat().st_size) for key, path in files_below(self.artifact_dir(info))]

    def child_environment(self, info: RunInfo, experiment: Experiment) -> dict[str, str]:
        return {
            "MLFLOW_RUN_ID": info.run_id,
            "MLFLOW_EXPERIMENT_ID": experiment.experiment_id,
            "MLFLOW_EXPERIMENT_NAME": experiment.name,
            "MLFLOW_TRACKING_URI": self.root.as_uri(),
            "MLFLOW_ALLOW_FILE_STORE": "true",  # MLflow 3.13+ refuses file stores without it
        }

    def host_paths(self, info: RunInfo) -> tuple[Path, ...]:
        """The store, and the run's artifacts when its experiment keeps them elsewhere."""
        artifacts = self.artifact_dir(info)
        inside = str(artifacts).startswith(str(self.root) + os.sep)
        return (self.root,) if inside else (self.root, artifacts)

    @store_io("record a dataset input")
    def log_dataset_input(
        self, info: RunInfo, dataset: Mapping[str, str | None], context: str
    ) -> None:
        """A dataset input in MLflow's layout, so its UI lists the data a run used.

        `dataset` has MLflow's Dataset fields: name, digest, source_type, source, schema, profile.
        """
        experiment_dir = self._experiment_dir(info.experiment_id)
        if experiment_dir is None:
            raise NotFoundError(f"experiment {info.experiment_id} no longer exists")
        dataset_id = _md5(str(dataset["name"]), str(dataset["digest"]))
        dataset_meta = experiment_dir / "datasets" / dataset_id / META
        if not dataset_meta.is_file():
            write_atomic(dataset_meta, dump_yaml(dataset))
        link = {
            "destination_id": dataset_id,  # sic: MLflow writes the source id here too
            "destination_type": "RUN",
            "source_id": dataset_id,
            "source_type": "DATASET",
            "tags": {DATA_CONTEXT_TAG: context},
        }
        input_meta = self._run_dir(info) / "inputs" / _md5(dataset_id, info.run_id) / META
        write_atomic(input_meta, dump_yaml(link))

    def read_run(self, run_id: str) -> tuple[RunInfo, dict[str, str], dict[str, str]]:
        """A run's info, params and tags, found in whichever experiment holds it."""
        for parent in (self.root, self.root / TRASH):
            for meta_path in sorted(parent.glob(f"*/{run_id}/{META}")):
                run_dir = meta_path.parent
                info = _run_info(read_run_meta(meta_path))
                return info, read_values(run_dir / "params"), read_values(run_dir / "tags")
        raise NotFoundError(f"no run {run_id} in {self.root}")

    def list_runs(self, experiment: Experiment) -> list[RunInfo]:
        """The runs of one experiment (active and deleted alike), newest first."""
        runs = self.stored_runs([experiment.experiment_id], "all")
        return sorted((r.info for r in runs), key=lambda info: info.start_time, reverse=True)

    def stored_runs(
        self, experiment_ids: Sequence[str], view: str = "active_only"
    ) -> list[StoredRun]:
        """Every readable run of the experiments, for search; broken ones are skipped."""
        runs = []
        for experiment_id in experiment_ids:
            directory = self._experiment_dir(experiment_id)
            if directory is None:
                continue
            for run_dir in _run_dirs(directory):
                run = readable_run(run_dir)
                if run is not None and _in_view(run, view):
                    runs.append(run)
        return runs

    def runs_tagged(self, prefix: str) -> Iterator[StoredRun]:
        """The active runs of the active experiments with a tag whose plain name starts with
        `prefix`. A question asked before every run: for an indexed prefix only the runs the
        tag index lists are looked at; otherwise each run's tags folder is listed. No other
        run's meta.yaml is read."""
        for experiment in self.list_experiments():
            directory = self._experiment_dir(experiment.experiment_id)
            if directory is None:
                continue
            if prefix in tag_index.INDEXED_PREFIXES:
                ids = tag_index.tagged_run_ids(
                    directory, prefix, partial(_tagged_folders, directory, prefix)
                )
                run_dirs: Iterable[Path] = (directory / run_id for run_id in ids)
            else:
                run_dirs = directory.iterdir()
            for run_dir in run_dirs:
                # a folder without meta.yaml is a run being created (its tags come first)
                if _has_tag_starting(run_dir, prefix) and (run_dir / META).is_file():
                    run = readable_run(run_dir)
                    if run is not None and _in_view(run, "active_only"):
                        yield run

    def newest_runs(
        self, experiment_ids: Sequence[str], view: str = "active_only"
    ) -> Iterator[StoredRun]:
        """The readable runs of the experiments, newest first (then by id), read one at a
        time: listing the 20 newest of 50,000 reads about 20 meta.yaml files, not 50,000."""
        orders = []
        for experiment_id in experiment_ids:
            directory = self._experiment_dir(experiment_id)
            if directory is not None:
                orders.append(self._newest_in(directory))
        for _, run_dir, start in heapq.merge(*orders):
            if start == run_index.UNREADABLE and not (run_dir / META).is_file():
                continue  # a folder that is not a run
            run = readable_run(run_dir)
            if run is None:
                continue
            if run.info.start_time != start:
                run_index.drop_index(run_dir.parent)  # edited behind our back: rebuild next time
            if _in_view(run, view):
                yield run

    def _newest_in(self, directory: Path) -> Iterator[tuple[tuple[int, str], Path, int]]:
        def start_of(run_id: str) -> int | None:
            """Quietly: the listing that follows names a damaged run, once."""
            try:
                meta = load_meta(directory / run_id / META)
                check_run_meta(meta, directory / run_id)
            except DamagedFile:
                return None
            return _run_info(meta).start_time

        for start, run_id in run_index.newest_first(directory, start_of):
            yield (-start, run_id), directory / run_id, start

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        order_by: Sequence[str],
        view: str,
        max_results: int,
    ) -> list[StoredRun]:
        """MLflow's search, evaluated here. In MLflow's default order (newest first) the runs
        are read newest first and the search stops at `max_results`. The filter language is
        imported here: a plain run never searches its store."""
        from mlrun_cli.tracking.search import matches, parse_filter, search_locally

        if order_by:
            runs = self.stored_runs(experiment_ids, view)
            return search_locally(runs, filter_string, order_by, max_results)
        clauses = parse_filter(filter_string)
        found = (r for r in self.newest_runs(experiment_ids, view) if matches(r, clauses))
        return list(itertools.islice(found, max_results))

    def runs_with_prefix(self, prefix: str) -> list[StoredRun]:
        """Runs whose id starts with `prefix`, in any experiment, deleted ones included."""
        if not prefix or not all(c in "0123456789abcdef" for c in prefix.lower()):
            return []
        found = []
        for parent in (self.root, self.root / TRASH):
            for meta_path in sorted(parent.glob(f"*/{prefix.lower()}*/{META}")):
                found.append(salvaged_run(meta_path.parent))
        return found

    @store_io("change the run's lifecycle stage")
    def set_run_lifecycle(self, info: RunInfo, stage: str) -> None:
        """MLflow's soft delete and restore: lifecycle_stage, and deleted_time while deleted."""
        deleted_time = now_ms() if stage == DELETED else None
        self._update_run_meta(self._run_dir(info), lifecycle_stage=stage, deleted_time=deleted_time)


def _md5(*parts: str) -> str:
    """MLflow's ids for datasets and inputs: md5 over the concatenated parts."""
    digest = hashlib.md5(usedforsecurity=False)
    for part in parts:
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()


def check_experiment_name(name: str) -> None:
    problem = experiment_name_problem(name)
    if problem is not None:
        raise ConflictError(problem if not name.strip() else f"experiment name: {problem}")


def _check_keys(folder: Path, entries: Mapping[str, str]) -> None:
    """The last line of defence: a key is a path below `folder` and must stay inside it,
    never both a file and a folder; a value must be storable as UTF-8."""
    for key, value in entries.items():
        problem = key_problem(key) or text_encoding_problem(value) or _path_clash(folder, key)
        if problem is not None:
            raise StoreError(f"{folder.name} key {key!r} cannot be stored: {problem}")
    problem = clash_problem(entries)
    if problem is not None:
        raise StoreError(f"{folder.name}: {problem}")


def _write_tags(tags_dir: Path, tags: Mapping[str, str]) -> None:
    _check_keys(tags_dir, tags)
    for key, value in tags_within_limits(tags).items():
        write_atomic(tags_dir / key, value)


def _path_clash(folder: Path, key: str) -> str | None:
    parts = key.split("/")
    if folder.joinpath(*parts).is_dir():
        return "other keys already use it as a folder"
    for end in range(1, len(parts)):
        if folder.joinpath(*parts[:end]).is_file():
            return f"'{'/'.join(parts[:end])}' is already a key, so it cannot be a folder"
    return None


def _tagged_folders(experiment_dir: Path, prefix: str) -> Iterator[str]:
    """The names of the experiment's run folders with a tag starting with `prefix`."""
    for run_dir in experiment_dir.iterdir():
        if _has_tag_starting(run_dir, prefix):
            yield run_dir.name


def _has_tag_starting(run_dir: Path, prefix: str) -> bool:
    try:
        return any(name.startswith(prefix) for name in os.listdir(run_dir / "tags"))
    except OSError:  # not a run folder, or one without tags
        return False


def _run_dirs(experiment_dir: Path) -> list[Path]:
    return [d for d in experiment_dir.iterdir() if (d / META).is_file()]


def read_run_meta(path: Path) -> dict[str, Any]:
    """A run's meta.yaml, re-read for up to TORN_READ_SECONDS while it looks torn: MLflow's
    writer truncates and rewrites it in place, so a reader may catch it empty or half written.
    One that stays torn is damaged, and said so in one line."""
    deadline = time.monotonic() + TORN_READ_SECONDS
    while True:
        problem = _run_meta_problem(path)
        if isinstance(problem, dict):
            return problem
        if time.monotonic() >= deadline:
            raise StoreError(f"{path}: damaged ({problem}); run `mlrun doctor`")
        time.sleep(TORN_READ_POLL)


def _run_meta_problem(path: Path) -> dict[str, Any] | str:
    """The meta of a whole run, or what is wrong with the file now."""
    try:
        meta = read_meta(path)
    except StoreError as exc:
        return str(exc).removeprefix(f"{path}: ")
    missing = [key for key in RUN_KEYS if key not in meta]
    return f"no {', '.join(missing)}" if missing else meta


def read_meta(path: Path) -> dict[str, Any]:
    try:
        data = parse_meta(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, MetaFormatError) as exc:
        raise StoreError(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict):
        raise StoreError(f"{path}: not a meta.yaml mapping")
    return data


def readable_run(run_dir: Path) -> StoredRun | None:
    """The run in `run_dir`, or None, with one warning naming it, when its meta.yaml is
    damaged: a listing shows every healthy run whatever the state of the others."""
    try:
        meta = load_meta(run_dir / META)
        check_run_meta(meta, run_dir)
    except DamagedFile as exc:
        log.warning("%s: meta.yaml unreadable (%s); skipped", entry_label(run_dir, 2), exc.reason)
        return None
    return StoredRun(run_dir, _run_info(meta), meta.get("deleted_time"))


def salvaged_run(run_dir: Path) -> StoredRun:
    """The run in `run_dir` as far as it can be read, for `runs describe`: a damaged meta.yaml
    gives what its readable lines say, the folder's names, and MLflow's defaults (RUNNING)."""
    try:
        meta = load_meta(run_dir / META)
        check_run_meta(meta, run_dir)
        return StoredRun(run_dir, _run_info(meta), meta.get("deleted_time"))
    except DamagedFile as exc:
        damage = f"meta.yaml unreadable ({exc.reason})"
        log.warning("%s: %s; shown as far as it can be read", entry_label(run_dir, 2), damage)
    fields = salvage_fields(run_dir / META)
    info = RunInfo(
        run_id=run_dir.name,
        experiment_id=run_dir.parent.name,
        run_name=str(fields.get("run_name") or ""),
        status=RunStatus.RUNNING,
        start_time=fields["start_time"] if isinstance(fields.get("start_time"), int) else 0,
        end_time=fields["end_time"] if isinstance(fields.get("end_time"), int) else None,
        lifecycle_stage=DELETED if fields.get("lifecycle_stage") == DELETED else ACTIVE,
        artifact_uri=str(fields.get("artifact_uri") or (run_dir / "artifacts").as_uri()),
        user_id=str(fields.get("user_id") or ""),
    )
    status = fields.get("status")
    if status in {int(s) for s in RunStatus}:
        info = RunInfo(**{**info.__dict__, "status": RunStatus(status)})
    return StoredRun(run_dir, info, damage=(damage,))


def _in_view(run: StoredRun, view: str) -> bool:
    return view == "all" or (view == "deleted_only") == (run.info.lifecycle_stage == DELETED)


def _run_meta(info: RunInfo) -> dict[str, Any]:
    """The persisted RunInfo, with the legacy fields MLflow still writes."""
    return {
        "artifact_uri": info.artifact_uri,
        "end_time": info.end_time,
        "entry_point_name": "",
        "experiment_id": info.experiment_id,
        "lifecycle_stage": info.lifecycle_stage,
        "run_id": info.run_id,
        "run_name": info.run_name,
        "source_name": "",
        "source_type": 4,
        "source_version": "",
        "start_time": info.start_time,
        "status": int(info.status),
        "tags": [],
        "user_id": info.user_id,
    }


def _run_info(meta: Mapping[str, Any]) -> RunInfo:
    return RunInfo(
        run_id=str(meta["run_id"]),
        experiment_id=str(meta["experiment_id"]),
        run_name=str(meta.get("run_name") or ""),
        status=RunStatus(int(meta.get("status", RunStatus.RUNNING))),
        start_time=int(meta.get("start_time") or 0),
        end_time=meta.get("end_time"),
        lifecycle_stage=str(meta.get("lifecycle_stage", ACTIVE)),
        artifact_uri=str(meta.get("artifact_uri", "")),
        user_id=str(meta.get("user_id", "")),
    )
