"""`mlrun reproduce RUN_ID`: run a recorded run again from its record alone, and compare.

    record (run.json, git.diff, requirements.lock.txt, inputs.json)
      -> clean checkout of the commit + the recorded diff   (refused when unreachable)
      -> the env pinned to the recorded lock file           (same package versions)
      -> the same parameters, the inputs' digests checked   (drift refused unless allowed)
      -> a new run tagged mlrun.reproduces -> metrics side by side, within --rtol

Planning reads the record and the inputs and writes nothing; the checkout happens on execution.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlrun_cli.caches import cache_root, writable_cache_dir
from mlrun_cli.context import Settings
from mlrun_cli.errors import SourceError, UsageError
from mlrun_cli.project.params import MASK
from mlrun_cli.project.spec import EnvDecl
from mlrun_cli.run.earlier_outputs import EarlierOutputs, mark_outputs, project_non_code
from mlrun_cli.run.pipeline import RunOutput, RunPlan, RunRequest, RunResult, execute_run, plan_run
from mlrun_cli.run.provenance import content_manifest, digest_path, manifest_digest
from mlrun_cli.sources.git import GitCache, git
from mlrun_cli.sources.resolve import split_subdirectory
from mlrun_cli.sources.uri import local_path_of
from mlrun_cli.tracking import artifacts
from mlrun_cli.tracking.queries import existing_store, find_run
from mlrun_cli.tracking.store import RecordedRun

log = logging.getLogger(__name__)
REPRODUCES_TAG = "mlrun.reproduces"
UNTRACKED_HEADER = "# untracked files:"
LOCKED_MANAGERS = ("uv", "virtualenv")  # envs rebuilt from the recorded lock file


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
    manager: str
    python: str | None
    lock: str | None  # the recorded requirements.lock.txt
    drift: tuple[str, ...]  # inputs whose content changed (only with --allow-data-drift)
    rtol: float


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
    drift = _drift(store.read_artifact(original.info, artifacts.INPUTS), run_id)
    if drift and not request.allow_data_drift:
        raise DataDriftError(
            "\n".join(drift) + "\npass --allow-data-drift to run on the changed data anyway"
        )
    return ReproducePlan(
        original=original,
        repository=repository,
        commit=commit,
        subdirectory=subdirectory,
        diff=diff,
        untracked=untracked,
        entry_point=str(record.get("entry_point", "main")),
        parameters=_parameters(record.get("parameters", []), run_id),
        outputs=frozenset(
            str(p["name"]) for p in record.get("parameters", []) if p.get("role") == "output"
        ),
        manager=manager,
        python=environment.get("python"),
        lock=lock,
        drift=tuple(drift),
        rtol=request.rtol,
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


def _drift(text: str | None, run_id: str) -> list[str]:
    """Inputs whose content is no longer what the run read."""
    if text is None:
        return []
    problems = []
    for entry in json.loads(text).get("inputs", []):
        path = Path(entry["path"])
        if not path.exists():
            problems.append(f"input {entry['name']} ({path}) of run {run_id} no longer exists")
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
    original = plan.original.info
    request = RunRequest(
        uri=str(project_dir),
        entry_point=plan.entry_point,
        parameters=[f"{name}={value}" for name, value in plan.parameters],
        env_manager=plan.manager,
        experiment_id=original.experiment_id,
        run_name=f"{original.run_name}-reproduced",
    )
    run_plan = replace(plan_run(request, settings), extra_tags={REPRODUCES_TAG: original.run_id})
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
        cache = writable_cache_dir(cache_root(settings.environ) / "reproduce", "reproduce")
        cache.mkdir(parents=True, exist_ok=True)
        return Path(plan.repository), cache / f"{plan.original.info.run_id}.python_env.yaml"
    checkout = GitCache.from_environment(settings.environ).checkout(plan.repository, plan.commit)
    if plan.diff:
        _apply(checkout.directory, plan.diff)
    directory = checkout.directory
    env_file = directory.parent / f"{directory.name}.python_env.yaml"
    return (directory / plan.subdirectory if plan.subdirectory else directory), env_file


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
    lines.extend(f"missing untracked file: {name}" for name in plan.untracked)
    return lines
