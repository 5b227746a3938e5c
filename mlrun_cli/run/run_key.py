"""The run cache: a key that says two runs are the same, and the lookup of an earlier one.

Two runs are identical when the source (commit + uncommitted changes, or the content of a
project outside git), the entry point, the resolved parameters, the environment's key and the
content of every input are equal. The key is a tag on every run (`mlrun.run_key`), so finding
an earlier identical run is one search of the store. The env key comes from the env *plan*,
so it is known before anything is built.

An identical run stands in for a new one only while what it wrote is still there as it wrote
it: each output it recorded (`mlrun.output.NAME.digest`) must have that digest now. mlrun
keeps no copy of outputs to restore, so a missing or changed output means running again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlrun_cli.envs.base import EnvPlan
from mlrun_cli.errors import NotFoundError, StoreError, UsageError
from mlrun_cli.run.finish import finish_run
from mlrun_cli.run.provenance import (
    InputDigest,
    content_manifest,
    diff_text,
    digest_input,
    digest_path,
    manifest_digest,
)
from mlrun_cli.sources.resolve import ProjectSource
from mlrun_cli.tracking.entities import Experiment, RunInfo, RunStatus
from mlrun_cli.tracking.file_store import DEFAULT_EXPERIMENT_ID, now_ms
from mlrun_cli.tracking.store import RecordedRun, Store, newest_finished_tagged, open_store
from mlrun_cli.tracking.tags import (
    OUTPUT_TAG_PREFIX,
    PARENT_TAG,
    REPRODUCES_TAG,
    REUSED_FROM_TAG,
    RUN_KEY_TAG,
    RUN_NAME_TAG,
)

if TYPE_CHECKING:
    from mlrun_cli.core.settings import Settings
    from mlrun_cli.envs.cache import EnvInputs
    from mlrun_cli.run.plan import RunPlan

log = logging.getLogger(__name__)

_DIGEST_SUFFIX = ".digest"  # an output's tag: OUTPUT_TAG_PREFIX + parameter + this
KEY_FORMAT = "1"  # bumped when what goes into the key changes, so old keys stop matching
REUSE_MODES = ("skip", "record")
# Tags of the earlier run that belong to it alone, not to a run that reuses its result.
_OWN_TAGS = frozenset({RUN_NAME_TAG, PARENT_TAG, REPRODUCES_TAG})


@dataclass(frozen=True)
class RunKey:
    key: str
    digests: tuple[InputDigest, ...]  # the inputs' digests, also recorded on the run


@dataclass
class KeyMemo:
    """What many runs of one sweep share: the source's fingerprint and each file's digest."""

    sources: dict[Path, str] = field(default_factory=dict)
    paths: dict[str, tuple[str, int, int]] = field(default_factory=dict)


def reuse_mode(option: str | None, environ: Mapping[str, str]) -> str | None:
    """--reuse[=skip|record], else MLRUN_REUSE (1/true/skip or record); None: no reuse."""
    if option is not None:
        return option
    value = environ.get("MLRUN_REUSE", "").strip().lower()
    if value in ("", "0", "false", "no", "off"):
        return None
    if value in ("1", "true", "yes", "on", "skip"):
        return "skip"
    if value == "record":
        return "record"
    raise UsageError(f"MLRUN_REUSE={value}: use 1 (skip identical runs) or record")


def compute_run_key(plan: RunPlan, memo: KeyMemo | None = None) -> RunKey:
    """The key of the run the plan describes; reads the inputs, writes nothing."""
    memo = memo or KeyMemo()
    digests = tuple(_digests(plan, memo)) if plan.digest_inputs else ()
    source = memo.sources.get(plan.source.directory)
    if source is None:
        source = memo.sources[plan.source.directory] = source_fingerprint(plan.source)
    parts = {
        "format": KEY_FORMAT,
        "source": source,
        "entry_point": plan.entry.name,
        "parameters": sorted(plan.command.values().items()),
        "env": env_plan_key(plan.env_plan),
        "inputs": sorted((d.name, d.sha256) for d in digests)
        if plan.digest_inputs
        else "not digested",
    }
    text = json.dumps(parts, sort_keys=True)
    return RunKey(hashlib.sha256(text.encode()).hexdigest()[:32], digests)


def _digests(plan: RunPlan, memo: KeyMemo) -> Iterator[InputDigest]:
    def remembered(path: Path) -> tuple[str, int, int]:
        found = memo.paths.get(str(path))
        if found is None:
            found = memo.paths[str(path)] = digest_path(path)
        return found

    for param in plan.command.parameters:
        digest = digest_input(param, remembered)
        if digest is not None:
            yield digest


def source_fingerprint(source: ProjectSource) -> str:
    """A git commit with its uncommitted changes (untracked files by content), or, outside
    git, the content of the project's files."""
    if source.git is not None:
        digest = hashlib.sha256(f"git {source.git.commit}\n{diff_text(source.git)}".encode())
        for relative in source.git.untracked:
            path = source.git.toplevel / relative
            if path.is_file():
                digest.update(f"{relative}\0{digest_path(path)[0]}\n".encode())
        return digest.hexdigest()
    if source.commit is not None:  # a clean checkout of a git source
        return f"git {source.commit}"
    return f"content {manifest_digest(content_manifest(source.directory, source.excluded))}"


def env_plan_key(plan: EnvPlan) -> str:
    """The env's identity before it is built: the build-cache key where the manager builds,
    the interpreter on PATH for the current one, the image for docker."""
    inputs: EnvInputs | None = getattr(plan, "inputs", None)  # plans of envs the cache builds
    if inputs is not None:
        return f"{plan.manager} {inputs.key()}"
    if plan.manager == "local":
        python = shutil.which("python") or shutil.which("python3") or sys.executable
        return f"local {os.path.realpath(python)}"
    return f"{plan.manager} {plan.description}"


def find_identical(store: Store, experiment_id: str, key: str) -> RecordedRun | None:
    """The newest FINISHED run of the experiment with this key."""
    return identical_runs(store, experiment_id, {key}).get(key)


def identical_runs(
    store: Store, experiment_id: str, keys: Collection[str]
) -> dict[str, RecordedRun]:
    """key -> the newest FINISHED run with it, found by the store's own search, when its
    outputs are still as it wrote them; a key left out is to be run again (the reason logged)."""
    found = newest_finished_tagged(store, experiment_id, RUN_KEY_TAG, keys)
    seen: dict[Path, _Found] = {}  # points of a sweep may share an output path
    reusable = {}
    for key, run in found.items():
        reason = changed_output(run, seen)
        if reason is None:
            reusable[key] = run
        else:
            log.info("%s; running again", reason)
    return reusable


def changed_output(run: RecordedRun, seen: dict[Path, _Found]) -> str | None:
    """Why the run's recorded outputs are not what it wrote (missing, changed or unreadable
    now), or None when each still has its recorded digest. `seen` remembers paths read."""
    for tag, recorded in sorted(run.tags.items()):
        if not (tag.startswith(OUTPUT_TAG_PREFIX) and tag.endswith(_DIGEST_SUFFIX)):
            continue
        name = tag[len(OUTPUT_TAG_PREFIX) : -len(_DIGEST_SUFFIX)]
        value = run.params.get(name, "")
        if not value:
            return f"output {name} of run {run.info.run_id} has no recorded path"
        path = Path(value)
        found = seen.get(path) or _found_now(path)
        seen[path] = found
        if found.digest != recorded:
            return f"output {name} ({_shown(path)}) {found.problem} since run {run.info.run_id}"
    return None


@dataclass(frozen=True)
class _Found:
    """What an output path holds now: its digest, or None and why there is none."""

    digest: str | None
    problem: str = "changed"


def _found_now(path: Path) -> _Found:
    """Cheap for an unchanged large file (the digest cache); an unreadable output cannot be
    shown to be what the run wrote, so it counts as differing."""
    if not path.exists():
        return _Found(None, "is missing")
    try:
        return _Found(digest_path(path)[0])
    except OSError as exc:
        return _Found(None, f"cannot be read ({exc.strerror})")


def _shown(path: Path) -> str:
    """The path as the user typed it when it is below the working directory."""
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except (OSError, ValueError):
        return str(path)


def existing_experiment(store: Store, plan: RunPlan) -> Experiment | None:
    """The plan's experiment if it already exists (a lookup must not create one)."""
    try:
        store.check_readable()
    except StoreError:
        return None  # no store yet: nothing to reuse
    if plan.experiment_name is not None:
        return store.find_experiment(plan.experiment_name)
    try:
        return store.get_experiment(plan.experiment_id or DEFAULT_EXPERIMENT_ID)
    except NotFoundError:
        return None


def record_reuse(
    store: Store,
    experiment: Experiment,
    earlier: RecordedRun,
    plan: RunPlan,
    user: str,
    tags: Mapping[str, str],
) -> RunInfo:
    """--reuse=record: a FINISHED run that points at the earlier one and carries its metrics."""
    copied = {k: v for k, v in earlier.tags.items() if k not in _OWN_TAGS}
    run = store.create_run(
        experiment, plan.run_name, user, {**copied, **tags, REUSED_FROM_TAG: earlier.info.run_id}
    )
    store.log_params(run, plan.command.recorded_values())
    store.log_metrics(run, earlier.metrics, now_ms())
    return finish_run(store, run, RunStatus.FINISHED)


@dataclass(frozen=True)
class Reuse:
    """An earlier identical run stood in for this one."""

    earlier: RecordedRun
    recorded: RunInfo | None  # the new run of --reuse=record


def reuse_earlier(plan: RunPlan, settings: Settings, mode: str) -> tuple[RunKey, Reuse | None]:
    """The run's key, and the earlier identical run if there is one (recorded per `mode`)."""
    key = compute_run_key(plan)
    store = open_store(settings)
    experiment = existing_experiment(store, plan)
    earlier = (
        None if experiment is None else find_identical(store, experiment.experiment_id, key.key)
    )
    if experiment is None or earlier is None:
        return key, None
    recorded = None
    if mode == "record":
        tags = {RUN_KEY_TAG: key.key, **plan.extra_tags}
        recorded = record_reuse(store, experiment, earlier, plan, settings.user, tags)
    return key, Reuse(earlier, recorded)
