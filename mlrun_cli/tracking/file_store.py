"""MLflow's file store (`./mlruns`), written byte for byte as MLflow 3 writes it.

Layout and field order follow MLflow's FileStore so that `mlflow.get_run()`, `search_runs()`
and the MLflow UI read what mlrun writes, and mlrun reads what they write. Files that are
replaced go through a temporary file and `os.replace`, so a crash never leaves half a meta.yaml.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import time
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import yaml

from mlrun_cli.errors import ConflictError, NotFoundError, StoreError
from mlrun_cli.locks import exclusive_lock
from mlrun_cli.sources.uri import path_of_file_uri
from mlrun_cli.tracking.entities import ACTIVE, DELETED, Experiment, RunInfo, RunStatus
from mlrun_cli.tracking.meta_files import dump_yaml, parse_meta, write_atomic
from mlrun_cli.tracking.search import search_locally
from mlrun_cli.tracking.stored_run import StoredRun, files_below, read_values

log = logging.getLogger(__name__)
DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
TRASH = ".trash"
META = "meta.yaml"
LOCK = ".mlrun.lock"
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
            probe = self.root / f".mlrun-write-test.{os.getpid()}"
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
        try:
            data = parse_meta(path.read_text(encoding="utf-8"))
        except yaml.MarkedYAMLError as exc:
            line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
            raise StoreError(f"{path}: unreadable (YAML: {exc.problem}, line {line})") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise StoreError(f"{path}: unreadable ({exc})") from None
        if not isinstance(data, dict):
            raise StoreError(f"{path}: not a meta.yaml mapping")
        return data

    def _experiment_from_dir(self, directory: Path) -> Experiment:
        meta = self._read_meta(directory / META)
        try:
            return Experiment(
                experiment_id=str(meta["experiment_id"]),
                name=str(meta["name"]),
                artifact_location=str(meta.get("artifact_location", "")),
                lifecycle_stage=str(meta.get("lifecycle_stage", ACTIVE)),
                creation_time=meta.get("creation_time"),
                last_update_time=meta.get("last_update_time"),
                tags=read_values(directory / "tags"),
            )
        except KeyError as exc:
            raise StoreError(f"{directory / META}: missing field {exc}") from None

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
                    log.warning("skipping experiment: %s", exc.message)
        return sorted(found, key=lambda e: (e.creation_time or 0, e.experiment_id))

    def create_experiment(self, name: str, artifact_location: str | None = None) -> Experiment:
        check_experiment_name(name)
        with self._locked():
            self._check_name_free(name)
            experiment_id = self._new_experiment_id()
            self._write_new_experiment(experiment_id, name, artifact_location)
        return self.get_experiment(experiment_id)

    def get_or_create_experiment(self, name: str) -> Experiment:
        """What `mlrun run --experiment-name` does: reuse an active one, create a missing one."""
        with self._locked():
            existing = self.find_experiment(name)
            if existing is None:
                check_experiment_name(name)
                experiment_id = self._new_experiment_id()
                self._write_new_experiment(experiment_id, name, None)
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
        write_atomic(directory / META, dump_yaml(meta))

    def _update_experiment_meta(self, directory: Path, **changes: Any) -> None:
        """Rewrite only the given fields, keeping whatever else MLflow stored there."""
        meta = self._read_meta(directory / META)
        meta.update(changes, last_update_time=now_ms())
        write_atomic(directory / META, dump_yaml(meta))

    def rename_experiment(self, experiment_id: str, new_name: str) -> Experiment:
        check_experiment_name(new_name)
        with self._locked():
            experiment = self.get_experiment(experiment_id)
            if experiment.lifecycle_stage != ACTIVE:
                raise ConflictError(f"experiment {experiment_id} is deleted; restore it first")
            self._check_name_free(new_name)
            self._update_experiment_meta(self.root / experiment_id, name=new_name)
        return self.get_experiment(experiment_id)

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

    def create_run(
        self, experiment: Experiment, run_name: str, user: str, tags: Mapping[str, str]
    ) -> RunInfo:
        """A new RUNNING run with its tags, laid out as MLflow's create_run does."""
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
        for sub in ("metrics", "params", "artifacts", "tags"):
            (run_dir / sub).mkdir(parents=True, exist_ok=True)
        write_atomic(run_dir / META, dump_yaml(_run_meta(info)))
        self.set_tags(info, {"mlflow.runName": run_name, **tags})
        return info

    def _run_dir(self, info: RunInfo) -> Path:
        directory = self._experiment_dir(info.experiment_id)
        if directory is None or not (directory / info.run_id / META).is_file():
            raise NotFoundError(f"run {info.run_id} no longer exists in {self.root}")
        return directory / info.run_id

    def _update_run_meta(self, run_dir: Path, **changes: Any) -> None:
        meta = self._read_meta(run_dir / META)
        meta.update(changes)
        if meta.get("deleted_time", 0) is None:
            del meta["deleted_time"]  # MLflow drops it on every rewrite of a live run
        write_atomic(run_dir / META, dump_yaml(meta))

    def log_params(self, info: RunInfo, params: Mapping[str, str]) -> None:
        """Params are immutable, as in MLflow: the same value again is fine, another is not."""
        params_dir = self._run_dir(info) / "params"
        for key, value in params.items():
            path = params_dir / key
            if path.is_file() and path.read_text(encoding="utf-8") != value:
                raise ConflictError(f"run {info.run_id}: param '{key}' is already logged")
            write_atomic(path, value)

    def set_tags(self, info: RunInfo, tags: Mapping[str, str]) -> None:
        tags_dir = self._run_dir(info) / "tags"
        for key, value in tags.items():
            write_atomic(tags_dir / key, value)

    def finish_run(self, info: RunInfo, status: RunStatus, end_time: int) -> RunInfo:
        """Record the final status; the runner's word wins over whatever the child wrote."""
        self._update_run_meta(self._run_dir(info), status=int(status), end_time=end_time)
        return RunInfo(**{**info.__dict__, "status": status, "end_time": end_time})

    def artifact_dir(self, info: RunInfo) -> Path:
        return path_of_file_uri(info.artifact_uri)

    def add_artifact(self, info: RunInfo, source: Path, relative: str) -> None:
        """Copy a file into the run's artifacts, as `mlflow.log_artifact` would."""
        target = self.artifact_dir(info) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)

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
            "tags": {"mlflow.data.context": context},
        }
        input_meta = self._run_dir(info) / "inputs" / _md5(dataset_id, info.run_id) / META
        write_atomic(input_meta, dump_yaml(link))

    def read_run(self, run_id: str) -> tuple[RunInfo, dict[str, str], dict[str, str]]:
        """A run's info, params and tags, found in whichever experiment holds it."""
        for parent in (self.root, self.root / TRASH):
            for meta_path in sorted(parent.glob(f"*/{run_id}/{META}")):
                run_dir = meta_path.parent
                info = _run_info(self._read_meta(meta_path))
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
                try:
                    meta = self._read_meta(run_dir / META)
                    info = _run_info(meta)
                except (StoreError, KeyError, ValueError) as exc:
                    log.warning("skipping run %s: %s", run_dir, exc)
                    continue
                if view == "all" or (view == "deleted_only") == (info.lifecycle_stage == DELETED):
                    runs.append(StoredRun(run_dir, info, meta.get("deleted_time")))
        return runs

    def search_runs(
        self,
        experiment_ids: Sequence[str],
        filter_string: str | None,
        order_by: Sequence[str],
        view: str,
        max_results: int,
    ) -> list[StoredRun]:
        runs = self.stored_runs(experiment_ids, view)
        return search_locally(runs, filter_string, order_by, max_results)

    def runs_with_prefix(self, prefix: str) -> list[StoredRun]:
        """Runs whose id starts with `prefix`, in any experiment, deleted ones included."""
        if not prefix or not all(c in "0123456789abcdef" for c in prefix.lower()):
            return []
        found = []
        for parent in (self.root, self.root / TRASH):
            for meta_path in sorted(parent.glob(f"*/{prefix.lower()}*/{META}")):
                info = _run_info(self._read_meta(meta_path))
                found.append(StoredRun(meta_path.parent, info))
        return found

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
    if not name or not name.strip():
        raise ConflictError("an experiment name must not be empty")


def _run_dirs(experiment_dir: Path) -> list[Path]:
    return [d for d in experiment_dir.iterdir() if (d / META).is_file()]


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
