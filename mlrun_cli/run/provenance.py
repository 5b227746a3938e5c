"""What exactly ran: git state, input data digests, and the versioned run record.

Everything here is computed from the plan and the finished run; the runner writes it into the
store (tags under MLflow's names where MLflow has them, artifacts under `provenance/`).
"""

from __future__ import annotations

import hashlib
import os
import platform
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlrun_cli import __version__
from mlrun_cli.core.caches import cache_root, env_cache_dir, source_cache_dir, staging_dir
from mlrun_cli.errors import ParameterError
from mlrun_cli.project.params import ResolvedParameter
from mlrun_cli.run.digest_cache import cached_digest
from mlrun_cli.run.host import host_description, host_name
from mlrun_cli.sources.git import GitState, git_state
from mlrun_cli.sources.resolve import ProjectSource
from mlrun_cli.tracking import artifacts
from mlrun_cli.tracking.tags import (
    GIT_BRANCH_TAG,
    GIT_COMMIT_TAG,
    GIT_DIFF_TAG,
    GIT_DIRTY_TAG,
    GIT_REPO_URL_TAG,
    LEGACY_GIT_REPO_URL_TAG,
)

if TYPE_CHECKING:
    from mlrun_cli.tracking.entities import RunInfo
    from mlrun_cli.tracking.store import Store

RUN_RECORD_FORMAT = 1
DIFF_TAG_LIMIT = 8000  # MLflow's limit for a tag value
_BLOCK = 1 << 20


def diff_text(state: GitState) -> str:
    """The uncommitted changes: the diff of tracked files, then the untracked files by name."""
    text = state.diff
    if state.untracked:
        listing = "".join(f"#   {path}\n" for path in state.untracked)
        text += (
            f"{chr(10) if text and not text.endswith(chr(10)) else ''}# untracked files:\n{listing}"
        )
    return text


def record_git_diff(store: Store, run: RunInfo, source: ProjectSource) -> None:
    """The uncommitted changes as the artifact that `git_tags`' diff tag points to when the
    diff is too long for a tag (and that `reproduce` re-applies)."""
    if source.git is not None and source.git.dirty:
        store.write_artifact(run, artifacts.GIT_DIFF, diff_text(source.git))


def git_tags(source: ProjectSource) -> dict[str, str]:
    """MLflow's git tags, so its UI shows the commit, branch and local changes."""
    tags: dict[str, str] = {}
    if source.commit:
        tags[GIT_COMMIT_TAG] = source.commit
    if source.branch:
        tags[GIT_BRANCH_TAG] = source.branch
    if source.repo_url:
        tags[GIT_REPO_URL_TAG] = source.repo_url
        tags[LEGACY_GIT_REPO_URL_TAG] = source.repo_url
    if source.kind == "git":
        tags[GIT_DIRTY_TAG] = "false"
    if source.git is not None:
        tags[GIT_DIRTY_TAG] = str(source.git.dirty).lower()
        if source.git.dirty:
            text = diff_text(source.git)
            tags[GIT_DIFF_TAG] = (
                text
                if len(text) <= DIFF_TAG_LIMIT
                else f"the diff has {len(text)} characters; see the artifact {artifacts.GIT_DIFF}"
            )
    return tags


def non_code_paths(
    store_paths: Iterable[Path],
    environ: Mapping[str, str],
    parameters: Iterable[ResolvedParameter],
) -> tuple[Path, ...]:
    """What is never a code change nor an input: the tracking store's files, mlrun's caches and
    the outputs the run writes. Left in, every run's own writes would make the next differ."""
    caches = (cache_root(environ), env_cache_dir(environ), source_cache_dir(environ))
    outputs = (Path(p.value) for p in parameters if p.type == "path" and p.role == "output")
    found = [*store_paths, *caches, staging_dir(environ)]
    return tuple(dict.fromkeys(Path(os.path.abspath(p)) for p in (*found, *outputs)))


def excluding(source: ProjectSource, excluded: tuple[Path, ...]) -> ProjectSource:
    """The source with those paths left out of its git state and its content digest."""
    if source.git is None:
        return replace(source, excluded=excluded)
    return replace(source, excluded=excluded, git=git_state(source.directory, excluded))


@dataclass(frozen=True)
class InputDigest:
    name: str  # the parameter
    path: str
    kind: str  # "file" | "directory"
    sha256: str
    size: int
    files: int

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def digest_input(
    param: ResolvedParameter,
    digest: Callable[[Path], tuple[str, int, int]] | None = None,
    role: str = "input",
) -> InputDigest | None:
    """The content digest of a `path` parameter of that role (inputs before the run, outputs
    after it) that names existing data, else None. A secret one is left out entirely: its
    path, its digest, even its existence stay unrecorded."""
    path = Path(param.value)
    if param.type != "path" or param.role != role or param.secret or not path.exists():
        return None
    try:
        sha, size, files = (digest or digest_path)(path)
    except OSError as exc:
        raise ParameterError(
            f"parameter '{param.name}': cannot read {exc.filename or path} ({exc.strerror})"
        ) from None
    kind = "directory" if path.is_dir() else "file"
    return InputDigest(param.name, str(path), kind, sha, size, files)


def check_inputs_readable(parameters: Iterable[ResolvedParameter]) -> None:
    """Before the run exists: every existing `path` input that will be digested can be read."""
    for param in parameters:
        path = Path(param.value)
        if param.type != "path" or param.role != "input" or param.secret or not path.exists():
            continue
        mode = os.R_OK | (os.X_OK if path.is_dir() else 0)
        if not os.access(path, mode):
            raise ParameterError(
                f"parameter '{param.name}': {path} is not readable; fix its permissions or "
                "pass --no-digest"
            )


def digest_path(path: Path) -> tuple[str, int, int]:
    """sha256 of a file; of a directory, over its sorted relative paths and their files' digests.

    Only contents and relative names count (not times, owners or where the tree lives), so
    the same data has the same digest on every machine. Files are streamed, never loaded.
    """
    if path.is_file():
        sha, size = _file_digest(path)
        return sha, size, 1
    total = hashlib.sha256()
    size = files = 0
    for relative, file_path in _files_below(path):
        sha, file_size = _file_digest(file_path)
        total.update(f"{relative}\0{sha}\n".encode())
        size += file_size
        files += 1
    return total.hexdigest(), size, files


# Never part of a project's content: VCS data, caches, run stores, virtual environments.
_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", "mlruns", ".venv", "venv"})


def content_manifest(root: Path, excluded: Collection[Path] = ()) -> dict[str, str]:
    """relative path -> sha256 of the project's files, leaving out the store, caches and
    outputs (`excluded`): what a project outside git is, for its run key and reproduce."""
    skipped = {Path(os.path.abspath(p)) for p in excluded}
    manifest: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(os.path.abspath(dirpath))
        dirnames[:] = sorted(
            d for d in dirnames if d not in _SKIPPED_DIRS and here / d not in skipped
        )
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file() and here / name not in skipped:
                manifest[path.relative_to(root).as_posix()] = digest_path(path)[0]
    return manifest


def manifest_digest(manifest: Mapping[str, str]) -> str:
    """One digest of the whole manifest: names and contents, nothing else."""
    total = hashlib.sha256()
    for relative in manifest:  # in walk order, as run keys have always been computed
        total.update(f"{relative}\0{manifest[relative]}\n".encode())
    return total.hexdigest()


def _files_below(root: Path) -> list[tuple[str, Path]]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in filenames:
            file_path = Path(dirpath) / name
            if file_path.is_file():
                found.append((file_path.relative_to(root).as_posix(), file_path))
    return sorted(found)


def _file_digest(path: Path) -> tuple[str, int]:
    return cached_digest(path, _hash_file)


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def _content(source: ProjectSource) -> dict[str, Any]:
    """Outside git, the project's files by content: reproduce checks them against the tree."""
    if source.git is not None or source.commit is not None:
        return {}
    manifest = content_manifest(source.directory, source.excluded)
    return {"content": {"sha256": manifest_digest(manifest), "files": manifest}}


def run_record(
    *,
    source: ProjectSource,
    entry_point: str,
    parameters: Sequence[ResolvedParameter],
    command: str,
    environment: dict[str, Any],
    run: dict[str, Any],
) -> dict[str, Any]:
    """The complete picture of one run, what a later `mlrun reproduce` reads. Secrets masked."""
    return {
        "format": RUN_RECORD_FORMAT,
        "mlrun_version": __version__,
        "source": {
            "uri": source.uri,
            "kind": source.kind,
            "name": source.source_name,
            "directory": str(source.directory),
            "version": source.version,
            "commit": source.commit,
            "branch": source.branch,
            "repo_url": source.repo_url,
            "dirty": source.git.dirty if source.git is not None else False,
            "excluded": [str(p) for p in source.excluded],
            **_content(source),
        },
        "entry_point": entry_point,
        "parameters": [
            {
                "name": p.name,
                "type": p.type,
                "value": p.recorded_value,
                "from_default": p.from_default,
                "role": p.role,
            }
            for p in parameters
        ],
        "command": command,
        "environment": environment,
        "host": {
            "hostname": host_name(),
            "os": host_description(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
        },
        "run": run,
    }
