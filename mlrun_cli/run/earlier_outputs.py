"""What earlier runs of a project wrote: never its code, and outputs again next time.

The rule, in this one place:
- a `path` parameter is an output of a run when it is declared `role: output`, when its path
  does not exist when the run starts, or when an earlier run of the same entry point of the
  same project (same `mlflow.source.name`) recorded it as an output (`mlrun.output.NAME.digest`);
- the tracking store, mlrun's caches, this run's outputs and every path an earlier run of the
  project recorded as an output are never code: they are left out of the git state, the diff
  and the content digest of a project outside git.

A path another entry point wrote stays an input where a run reads it through a parameter that
is not one of its outputs (infer reading the model train wrote): its digest is what makes the
run key change when the data changes. It only stops counting as a change to the code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from mlrun_cli.core.settings import Settings
from mlrun_cli.core.tracking_uri import DATABASE_SCHEMES, DEFAULT_ARTIFACT_DIR, file_store_root
from mlrun_cli.project.params import ResolvedCommand
from mlrun_cli.run.provenance import excluding, non_code_paths
from mlrun_cli.sources.resolve import ProjectSource
from mlrun_cli.tracking.file_store import FileStore
from mlrun_cli.tracking.store import RecordedRun, Store, open_store
from mlrun_cli.tracking.tags import ENTRY_POINT_TAG, OUTPUT_TAG_PREFIX, SOURCE_TAG

_OUTPUT_TAG = re.compile(r"^mlrun\.output\.(?P<name>.+)\.digest$")
_MAX_RUNS = 50_000


@dataclass(frozen=True)
class EarlierOutputs:
    parameters: frozenset[tuple[str, str]] = frozenset()  # (entry point, parameter)
    paths: tuple[Path, ...] = ()  # what those runs wrote


def earlier_outputs(store: Store, source_name: str) -> EarlierOutputs:
    """The outputs recorded by the project's runs in every active experiment of the store."""
    if not store.exists():
        return EarlierOutputs()
    parameters: set[tuple[str, str]] = set()
    paths: dict[Path, None] = {}
    for run in _project_runs(store, source_name):
        entry_point = run.tags.get(ENTRY_POINT_TAG, "")
        for tag in run.tags:
            found = _OUTPUT_TAG.match(tag)
            if found is None:
                continue
            parameters.add((entry_point, found["name"]))
            value = run.params.get(found["name"])
            if value and os.path.isabs(value):
                paths[Path(value)] = None
    return EarlierOutputs(frozenset(parameters), tuple(paths))


def _project_runs(store: Store, source_name: str) -> Iterable[RecordedRun]:
    if isinstance(store, FileStore):  # asked before every run: only runs with outputs are read
        runs: Iterable[RecordedRun] = store.runs_tagged(OUTPUT_TAG_PREFIX)
    else:
        runs = _search_project(store, source_name)
    return (run for run in runs if run.tag(SOURCE_TAG) == source_name)


def _search_project(store: Store, source_name: str) -> Sequence[RecordedRun]:
    ids = [e.experiment_id for e in store.list_experiments()]
    # a name with both quote kinds cannot be written in a filter: it is compared alone
    quote = "'" if "'" not in source_name else '"' if '"' not in source_name else None
    narrowing = f"tags.`{SOURCE_TAG}` = {quote}{source_name}{quote}" if quote else None
    return store.search_runs(ids, narrowing, [], "active_only", _MAX_RUNS) if ids else []


def mark_outputs(
    command: ResolvedCommand, entry_point: str, earlier: EarlierOutputs
) -> ResolvedCommand:
    """The command with each `path` parameter an earlier run of the entry point recorded as
    an output marked as an output of this run too."""
    parameters = tuple(
        replace(p, role="output")
        if p.type == "path" and (entry_point, p.name) in earlier.parameters
        else p
        for p in command.parameters
    )
    return replace(command, parameters=parameters)


def separate_outputs(
    source: ProjectSource, entry_point: str, command: ResolvedCommand, settings: Settings
) -> tuple[ProjectSource, ResolvedCommand]:
    """The source without its non-code paths, and the command with its outputs marked."""
    earlier = read_earlier_outputs(source.source_name, settings)
    command = mark_outputs(command, entry_point, earlier)
    found = non_code_paths(local_store_paths(settings), settings.environ, command.parameters)
    return excluding(source, tuple(dict.fromkeys((*found, *earlier.paths)))), command


def project_non_code(source_name: str, settings: Settings) -> tuple[Path, ...]:
    """The store, the caches and what the project's runs recorded as outputs, now."""
    found = non_code_paths(local_store_paths(settings), settings.environ, ())
    return tuple(dict.fromkeys((*found, *read_earlier_outputs(source_name, settings).paths)))


def local_store_paths(settings: Settings) -> tuple[Path, ...]:
    """Where the store keeps files on this machine: a file store's folder; for a database, its
    SQLite file and the artifacts folder MLflow's client gives it (./mlruns where mlrun runs)."""
    root = file_store_root(settings.tracking_uri)
    if root is not None:
        return (root,)
    scheme = settings.tracking_uri.partition(":")[0].lower().split("+")[0]
    if scheme not in DATABASE_SCHEMES:
        return ()  # a server keeps its own files
    paths = [settings.cwd / DEFAULT_ARTIFACT_DIR]
    database = settings.tracking_uri.partition("?")[0].removeprefix("sqlite:///")
    if scheme == "sqlite" and database.startswith("/"):
        paths.append(Path(database))
    return tuple(paths)


def read_earlier_outputs(source_name: str, settings: Settings) -> EarlierOutputs:
    """The project's recorded outputs in the invocation's store. A store that cannot be read
    fails here with its own error, as it would a moment later when the run is created."""
    return earlier_outputs(open_store(settings), source_name)
