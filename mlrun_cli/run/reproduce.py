"""`mlrun reproduce RUN_ID`: run a recorded run again from its record alone, and compare.

    record (run.json, git.diff, requirements.lock.txt, inputs.json)
      -> clean checkout of the commit + the recorded diff   (refused when unreachable)
      -> the env pinned to the recorded lock file           (same package versions)
      -> the same parameters; a path inside the project    (mapped into the new checkout)
      -> the inputs' digests checked                        (drift refused unless allowed)
      -> a new run tagged mlrun.reproduces -> metrics side by side, within --rtol

Planning reads the record and the inputs and writes nothing; the checkout happens on execution.
A path parameter inside the original project (its checkout, which `mlrun envs prune` may have
removed, or the user's working tree) names the same file in the new checkout: inputs come back
at the recorded commit, and outputs never overwrite the user's files. Outside git the project
runs in place, so its outputs go to a fresh folder of the cache instead. Paths outside the
project stay as recorded.
"""

from __future__ import annotations

import json
import logging
import math
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlrun_cli.core.caches import reproduce_dir, writable_cache_dir
from mlrun_cli.core.settings import Settings
from mlrun_cli.core.uri import local_path_of
from mlrun_cli.errors import SourceError, UsageError
from mlrun_cli.project.params import MASK
from mlrun_cli.project.spec import EnvDecl
from mlrun_cli.run.earlier_outputs import EarlierOutputs, mark_outputs, project_non_code
from mlrun_cli.run.pipeline import RunOutput, RunResult, execute_run, plan_run
from mlrun_cli.run.plan import RunPlan, RunRequest
from mlrun_cli.run.provenance import content_manifest, digest_path, manifest_digest
from mlrun_cli.sources.git import GitCache, git
from mlrun_cli.sources.resolve import split_subdirectory
from mlrun_cli.tracking import artifacts
from mlrun_cli.tracking.store import RecordedRun, existing_store, find_run
from mlrun_cli.tracking.tags import REPRODUCES_TAG, SOURCE_TAG

log = logging.getLogger(__name__)
UNTRACKED_HEADER = "# untracked files:"
LOCKED_MANAGERS = ("uv", "virtualenv")  # envs rebuilt from the recorded lock file
LOCAL_PATH_TYPES = ("path", "uri")  # parameters whose recorded value may be a local path


class DataDriftError(UsageError):
    """An input's content is not what the original run read."""


@dataclass(frozen=True)
class ReproduceRequest:
    run_id: str
    rtol: float = 1e-6
    allow_data_drift: bool = False


@dataclass(frozen=True)
class ReproducePlan:
    original: RecordedRun
    repository: str  # where the commit is fetched from; outside git, the project directory
    commit: str | None  # None: the directory, its content checked unchanged, runs in place
    subdirectory: str
    diff: str  # the recorded uncommitted changes ("" for a clean tree)
    untracked: tuple[str, ...]  # files that were untracked: named in the record, not kept
    entry_point: str
    parameters: tuple[tuple[str, str], ...]
    outputs: frozenset[str]  # the parameters that were outputs: outputs again, never inputs
    source_name: str  # the original's mlflow.source.name: the project the user named
    project_root: Path  # the original tree (checkout or working tree) the run's paths lay in
    in_project: frozenset[str]  # the path parameters inside it: mapped into the new tree
    project_inputs: tuple[Mapping[str, Any], ...]  # their recorded digests, checked there
    manager: str
    python: str | None
    lock: str | None  # the recorded requirements.lock.txt
    drift: tuple[str, ...]  # inputs whose content changed (only with --allow-data-drift)
    rtol: float
    allow_data_drift: bool = False


@dataclass(frozen=True)
class MetricComparison:
    name: str
    original: float | None
    reproduced: float | None
    rtol: float

    @property
    def matches(self) -> bool:
        a, b = self.original, self.reproduced
        if a is None or b is None:
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= self.rtol * max(abs(a), abs(b)) or a == b


@dataclass(frozen=True)
class ReproduceResult:
    original_run_id: str
    run: RunResult
    metrics: tuple[MetricComparison, ...]

    @property
    def exit_code(self) -> int:
        """The run's own failure first; then 1 when a metric is not reproduced."""
        if self.run.exit_code != 0:
            return self.run.exit_code
        return 0 if all(m.matches for m in self.metrics) else 1

    def as_json(self) -> dict[str, object]:
        return {
            "original_run_id": self.original_run_id,
            "run_id": self.run.run.run_id,
            "status": self.run.run.status.name,
            "exit_code": self.exit_code,
            "metrics": [
                {
                    "name": m.name,
                    "original": m.original,
                    "reproduced": m.reproduced,
                    "matches": m.matches,
                }
                for m in self.metrics
            ],
        }


def plan_reproduce(request: ReproduceRequest, settings: Settings) -> ReproducePlan:
    """Everything the record says, checked against what is reachable now; writes nothing."""
    if request.rtol < 0:
        raise UsageError(f"--rtol {request.rtol}: a tolerance cannot be negative")
    store = existing_store(settings)
    original = find_run(store, request.run_id)
    run_id = original.info.run_id
    text = store.read_artifact(original.info, artifacts.RUN_RECORD)
    if text is None:
        raise UsageError(
            f"run {run_id} has no {artifacts.RUN_RECORD}: only runs recorded by mlrun run "
            "can be reproduced"
        )
    record: dict[str, Any] = json.loads(text)
    source: dict[str, Any] = record.get("source", {})
    commit = source.get("commit") or None
    untracked: tuple[str, ...] = ()
    if commit is None:
        repository, subdirectory, diff = str(unchanged_directory(source, settings, run_id)), "", ""
    else:
        repository, subdirectory = _repository(source, commit, run_id)
        diff, untracked = _recorded_diff(store.read_artifact(original.info, artifacts.GIT_DIFF))
    if source.get("dirty") and not diff and not untracked:
        raise SourceError(f"run {run_id} ran from a changed tree, but {artifacts.GIT_DIFF} is gone")
    environment: dict[str, Any] = record.get("environment", {})
    manager = str(environment.get("manager") or "local")
    lock = store.read_artifact(original.info, artifacts.ENV_LOCK)
    if manager not in (*LOCKED_MANAGERS, "local"):
        raise UsageError(
            f"run {run_id} used a {manager} env; reproduce rebuilds uv and virtualenv envs "
            "from their lock file and the current interpreter, not yet this one"
        )
    if manager in LOCKED_MANAGERS and lock is None:
        raise UsageError(f"run {run_id} has no {artifacts.ENV_LOCK} to rebuild its env from")
    recorded_parameters: list[Mapping[str, Any]] = record.get("parameters", [])
    root = _original_root(Path(str(source.get("directory"))), subdirectory)
    in_project = _in_project(recorded_parameters, root)
    inputs = _recorded_inputs(store.read_artifact(original.info, artifacts.INPUTS))
    restored = commit is not None  # the checkout restores the project's inputs, not the tree
    project_inputs = tuple(e for e in inputs if restored and e["name"] in in_project)
    drift = _drift([e for e in inputs if e not in project_inputs], run_id)
    _refuse_drift(drift, request.allow_data_drift)
    return ReproducePlan(
        original=original,
        repository=repository,
        commit=commit,
        subdirectory=subdirectory,
        diff=diff,
        untracked=untracked,
        entry_point=str(record.get("entry_point", "main")),
        parameters=_parameters(record.get("parameters", []), run_id),
        outputs=frozenset(str(p["name"]) for p in recorded_parameters if p.get("role") == "output"),
        source_name=str(original.tags.get(SOURCE_TAG) or source.get("name") or repository),
        project_root=root,
        in_project=in_project,
        project_inputs=project_inputs,
        manager=manager,
        python=environment.get("python"),
        lock=lock,
        drift=tuple(drift),
        rtol=request.rtol,
        allow_data_drift=request.allow_data_drift,
    )


def _original_root(directory: Path, subdirectory: str) -> Path:
    """The tree the original run's project lay in: its directory without the subdirectory."""
    depth = len(Path(subdirectory).parts) if subdirectory else 0
    if depth and directory.parts[-depth:] == Path(subdirectory).parts:
        return directory.parents[depth - 1]
    return directory


def _in_project(parameters: Sequence[Mapping[str, Any]], root: Path) -> frozenset[str]:
    """The path parameters whose recorded value lay inside the original project's tree."""
    return frozenset(
        str(p["name"])
        for p in parameters
        if p.get("type") in LOCAL_PATH_TYPES and _relative_to(str(p.get("value")), root)
    )


def _relative_to(value: str, root: Path) -> str | None:
    """`value`'s path below `root` ("." for root itself), or None when it is not inside."""
    if not os.path.isabs(value):
        return None
    relative = os.path.relpath(os.path.normpath(value), root)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        return None
    return relative


def _refuse_drift(drift: Sequence[str], allowed: bool) -> None:
    if drift and not allowed:
        raise DataDriftError(
            "\n".join(drift) + "\npass --allow-data-drift to run on the changed data anyway"
        )


def unchanged_directory(source: Mapping[str, Any], settings: Settings, run_id: str) -> Path:
    """Outside git: the recorded directory, when its files are still those the run recorded
    (the store, caches and outputs left out, as when it ran); else what changed."""
    directory = Path(str(source.get("directory")))
    content = source.get("content")
    where = f"run {run_id} ran from {directory}, which is not in git"
    if not isinstance(content, dict):
        raise SourceError(
            f"{where}, and its record has no content digest (recorded by an older mlrun): its "
            "code cannot be checked"
        )
    if not directory.is_dir():
        raise SourceError(f"{where} and no longer exists; restore it to reproduce the run")
    excluded = [Path(p) for p in source.get("excluded", [])]
    excluded += project_non_code(str(source.get("name") or directory), settings)
    now = content_manifest(directory, excluded)
    recorded = content.get("files")
    if now == recorded or (recorded is None and manifest_digest(now) == content.get("sha256")):
        return directory
    raise SourceError(
        f"{where}, and its files changed since: {_changes(recorded, now)}; "
        "restore them to reproduce the run"
    )


def _changes(recorded: object, now: Mapping[str, str], shown: int = 10) -> str:
    """The changed, added and removed files by name, the first few of each kind."""
    if not isinstance(recorded, dict):
        return "the content digest differs"
    kinds = {
        "changed": [n for n in recorded if n in now and now[n] != recorded[n]],
        "added": [n for n in now if n not in recorded],
        "removed": [n for n in recorded if n not in now],
    }
    parts = []
    for kind, names in kinds.items():
        if names:
            more = f" and {len(names) - shown} more" if len(names) > shown else ""
            parts.append(f"{kind} {', '.join(sorted(names)[:shown])}{more}")
    return "; ".join(parts)


def _repository(source: Mapping[str, Any], commit: str, run_id: str) -> tuple[str, str]:
    """The recorded repository that still has the commit: the local one, else its remote."""
    base, subdirectory = split_subdirectory(str(source.get("name") or ""))
    candidates = [base, source.get("repo_url")]
    for candidate in (str(c) for c in candidates if c):
        local = local_path_of(candidate)
        if local is None:
            return candidate, subdirectory  # remote: reached when the checkout is made
        if Path(local).is_dir() and _has_commit(Path(local), commit):
            return candidate, subdirectory
    raise SourceError(
        f"run {run_id}: commit {commit[:12]} is not reachable (looked in "
        f"{', '.join(str(c) for c in candidates if c)}); fetch it or restore the repository"
    )


def _has_commit(directory: Path, commit: str) -> bool:
    return git("cat-file", "-e", f"{commit}^{{commit}}", cwd=directory).returncode == 0


def _recorded_diff(text: str | None) -> tuple[str, tuple[str, ...]]:
    """The diff of tracked files, and the untracked files it only names."""
    if not text:
        return "", ()
    diff, _, listing = text.partition(UNTRACKED_HEADER)
    untracked = tuple(line[1:].strip() for line in listing.splitlines() if line.startswith("#"))
    return diff, tuple(u for u in untracked if u)


def _recorded_inputs(text: str | None) -> list[Mapping[str, Any]]:
    return list(json.loads(text).get("inputs", [])) if text else []


def _drift(
    inputs: Sequence[Mapping[str, Any]], run_id: str, missing: str = "no longer exists"
) -> list[str]:
    """Inputs whose content is no longer what the run read."""
    problems = []
    for entry in inputs:
        path = Path(entry["path"])
        if not path.exists():
            problems.append(f"input {entry['name']} ({path}) of run {run_id} {missing}")
            continue
        digest = digest_path(path)[0]
        if digest != entry["sha256"]:
            problems.append(
                f"input {entry['name']} ({path}) changed since run {run_id}: sha256 "
                f"{entry['sha256'][:12]}… then, {digest[:12]}… now"
            )
    return problems


def _parameters(recorded: Sequence[Mapping[str, Any]], run_id: str) -> tuple[tuple[str, str], ...]:
    masked = [str(p["name"]) for p in recorded if p.get("value") == MASK]
    if masked:
        raise UsageError(
            f"run {run_id}: the values of {', '.join(masked)} were masked as secrets and cannot "
            "be reproduced from the record"
        )
    return tuple((str(p["name"]), str(p["value"])) for p in recorded)


def execute_reproduce(
    plan: ReproducePlan, settings: Settings, output: RunOutput
) -> ReproduceResult:
    """Check out, apply the diff, pin the env, run as a new run, and compare the metrics."""
    for name in plan.untracked:
        log.warning("untracked file %s of the original tree was not recorded; it is missing", name)
    for line in plan.drift:
        log.warning("%s", line)
    project_dir, env_file = _project_directory(plan, settings)
    parameters = _mapped_parameters(plan, project_dir, settings)
    original = plan.original.info
    request = RunRequest(
        uri=str(project_dir),
        entry_point=plan.entry_point,
        parameters=[f"{name}={value}" for name, value in parameters],
        env_manager=plan.manager,
        experiment_id=original.experiment_id,
        run_name=f"{original.run_name}-reproduced",
    )
    run_plan = plan_run(request, settings)
    run_plan = replace(
        run_plan,
        source=replace(run_plan.source, source_name=plan.source_name),
        extra_tags={REPRODUCES_TAG: original.run_id},
    )
    outputs = EarlierOutputs(frozenset((plan.entry_point, name) for name in plan.outputs))
    run_plan = replace(run_plan, command=mark_outputs(run_plan.command, plan.entry_point, outputs))
    if plan.manager in LOCKED_MANAGERS:
        run_plan = _pinned(run_plan, plan, env_file)
    result = execute_run(run_plan, settings, output)
    reproduced = find_run(existing_store(settings), result.run.run_id).metrics
    names = sorted(set(plan.original.metrics) | set(reproduced))
    comparisons = tuple(
        MetricComparison(n, plan.original.metrics.get(n), reproduced.get(n), plan.rtol)
        for n in names
    )
    return ReproduceResult(original.run_id, result, comparisons)


def _project_directory(plan: ReproducePlan, settings: Settings) -> tuple[Path, Path]:
    """Where the project runs, and a file beside the code for the pinned env: outside git,
    the recorded directory itself (the file goes to the cache); else a checkout with the diff
    applied."""
    if plan.commit is None:
        cache = writable_cache_dir(reproduce_dir(settings.environ), "reproduce")
        cache.mkdir(parents=True, exist_ok=True)
        return Path(plan.repository), cache / f"{plan.original.info.run_id}.python_env.yaml"
    checkout = GitCache.from_environment(settings.environ).checkout(plan.repository, plan.commit)
    if plan.diff:
        _apply(checkout.directory, plan.diff)
    directory = checkout.directory
    env_file = directory.parent / f"{directory.name}.python_env.yaml"
    return (directory / plan.subdirectory if plan.subdirectory else directory), env_file


def _mapped_parameters(
    plan: ReproducePlan, project_dir: Path, settings: Settings
) -> list[tuple[str, str]]:
    """The recorded parameters, those inside the original project moved to the same place in
    the new tree (outside git: only the outputs, into a fresh folder), inputs there checked
    against their recorded digests, and the folders of outputs made as they were."""
    if plan.commit is None:
        cache = writable_cache_dir(reproduce_dir(settings.environ), "reproduce")
        new_root = cache / f"{plan.original.info.run_id}-{secrets.token_hex(4)}"
        moved = plan.in_project & plan.outputs
    else:
        depth = len(Path(plan.subdirectory).parts) if plan.subdirectory else 0
        new_root = project_dir.parents[depth - 1] if depth else project_dir
        moved = plan.in_project
    parameters = [
        (name, _mapped(value, new_root, plan, is_output=name in plan.outputs))
        if name in moved
        else (name, value)
        for name, value in plan.parameters
    ]
    _check_project_inputs(plan, dict(parameters))
    return parameters


def _mapped(value: str, new_root: Path, plan: ReproducePlan, is_output: bool) -> str:
    """`value` at the same place below `new_root`. An input git does not restore (untracked
    or ignored data) stays where it was recorded while it is still there."""
    relative = _relative_to(value, plan.project_root)
    if relative is None:
        return value
    mapped = os.path.normpath(new_root / relative)
    if is_output:
        Path(mapped).parent.mkdir(parents=True, exist_ok=True)
    elif not os.path.exists(mapped) and os.path.exists(value):
        return value
    return mapped


def _check_project_inputs(plan: ReproducePlan, values: Mapping[str, str]) -> None:
    """The inputs inside the project, where the reproduction reads them, against the digests
    the original run recorded."""
    inputs = [{**entry, "path": values[entry["name"]]} for entry in plan.project_inputs]
    where = f"is neither in commit {(plan.commit or '')[:12]} nor where the run read it"
    drift = _drift(inputs, plan.original.info.run_id, missing=where)
    for line in drift if plan.allow_data_drift else ():
        log.warning("%s", line)
    _refuse_drift(drift, plan.allow_data_drift)


def _apply(directory: Path, diff: str) -> None:
    patch = directory.parent / f"{directory.name}.diff"
    patch.write_text(diff if diff.endswith("\n") else diff + "\n", encoding="utf-8")
    applied = git("apply", "--whitespace=nowarn", str(patch), cwd=directory)
    if applied.returncode != 0:
        raise SourceError(f"the recorded diff does not apply: {applied.stderr.strip()[:300]}")


def _pinned(run_plan: RunPlan, plan: ReproducePlan, env_file: Path) -> RunPlan:
    """The same manager, asked for exactly the recorded package versions and Python."""
    assert plan.lock is not None  # checked when planning
    pins = [line.strip() for line in plan.lock.splitlines()]
    pins = [line for line in pins if line and not line.startswith("#")]
    python = plan.python or run_plan.env_plan.description.rsplit(" ", 1)[-1]
    lines = [f'python: "{python}"', "dependencies:", *(f"  - {json.dumps(p)}" for p in pins)]
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    origin = f"the lock file of run {plan.original.info.run_id}"
    project = replace(run_plan.project, env=EnvDecl("python_env", file=env_file, origin=origin))
    return replace(run_plan, project=project, env_plan=run_plan.manager.plan(project))


def describe_plan(plan: ReproducePlan) -> list[str]:
    """What reproduce would do, for --dry-run."""
    packages = len([x for x in (plan.lock or "").splitlines() if x.strip()])
    lines = [
        f"reproduce run {plan.original.info.run_id} ({plan.original.info.run_name})",
        f"code: commit {plan.commit} of {plan.repository}"
        + (f" (subdirectory {plan.subdirectory})" if plan.subdirectory else "")
        if plan.commit is not None
        else f"code: {plan.repository} in place, its files unchanged since the run",
        f"uncommitted changes: {len(plan.diff.splitlines())} diff lines applied"
        if plan.diff
        else "uncommitted changes: none",
        f"environment: {plan.manager}"
        + (f", Python {plan.python}, {packages} pinned packages" if plan.lock else ""),
        f"entry point: {plan.entry_point}",
        *(f"param {name} = {value}" for name, value in plan.parameters),
        "inputs: " + ("; ".join(plan.drift) if plan.drift else "unchanged"),
    ]
    if plan.in_project:
        where = "the new checkout" if plan.commit is not None else "a fresh folder (outputs)"
        names = ", ".join(sorted(plan.in_project))
        lines.append(f"paths inside {plan.project_root}, mapped into {where}: {names}")
        if plan.project_inputs:
            lines.append("inputs inside the project: checked in the new checkout")
    lines.extend(f"missing untracked file: {name}" for name in plan.untracked)
    return lines
