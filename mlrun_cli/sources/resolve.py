"""Turns the URI given to `mlrun run` into a local project directory, and says what it is.

path, file:///path            a local directory (its git state is recorded)
path --version V              a clean checkout of V from the local repository
https://…, git@…, file:///….git   a git repository: a clean checkout of V (default HEAD)
x.zip, https://….zip          a zip archive
any of them + #sub/dir        the project lives in that subdirectory
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlrun_cli.core.caches import source_cache_dir, writable_cache_dir
from mlrun_cli.core.uri import is_file_uri, local_path_of, path_of_file_uri
from mlrun_cli.errors import SourceError
from mlrun_cli.sources.git import GitCache, GitState, git_state

_REMOTE_GIT = re.compile(r"^(git@|ssh://|git://|git\+|https?://)")


@dataclass(frozen=True)
class ProjectSource:
    directory: Path
    source_name: str  # what the run records as mlflow.source.name
    uri: str  # as the user gave it
    kind: str  # "local" | "git" | "zip"
    commit: str | None = None
    branch: str | None = None
    repo_url: str | None = None
    version: str | None = None
    git: GitState | None = None  # a local project's working tree, as it is
    excluded: tuple[Path, ...] = ()  # never its code: the store, caches, run outputs


def strip_quotes(uri: str) -> str:
    """`'file:///x#sub'` -> `file:///x#sub`: quotes a shell or a config file left on, as MLflow
    strips them."""
    return uri.strip("'\"")


def split_subdirectory(uri: str) -> tuple[str, str]:
    """`repo.git#sub/dir` -> (`repo.git`, `sub/dir`); a subdirectory may not escape."""
    base, _, sub = uri.partition("#")
    if sub and (sub.startswith("/") or ".." in Path(sub).parts):
        raise SourceError(
            f"{uri}: the subdirectory '{sub}' leaves the project; use a path inside it"
        )
    return base, sub.strip("/")


def resolve_source(
    uri: str,
    invocation_dir: Path,
    version: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> ProjectSource:
    environ = dict(os.environ if environ is None else environ)
    uri = strip_quotes(uri)
    base, sub = split_subdirectory(uri)
    if base.lower().endswith(".zip"):
        if version is not None:
            raise SourceError(f"{uri}: --version applies to git sources, not to archives")
        from mlrun_cli.sources.archives import fetch_archive  # zipfile, only for archives

        cache = writable_cache_dir(source_cache_dir(environ), "source")
        root, top = fetch_archive(base, invocation_dir, cache)
        return ProjectSource(_in_archive(root, top, sub, uri), uri, uri, "zip", version=version)
    if _REMOTE_GIT.match(base) or _is_git_url(base):
        return _from_git(base.removeprefix("git+"), sub, uri, version, environ)
    directory = _local_directory(base, invocation_dir, uri)
    state = git_state(directory)
    if version is not None:
        if state is None:
            raise SourceError(f"{uri}: --version needs a git repository, and this is none")
        relative = _relative(directory, state.toplevel)
        return _from_git(
            state.toplevel.as_uri(), _join(relative, sub), uri, version, environ, local=True
        )
    project = _inside(directory, sub, uri)
    if state is None:
        return ProjectSource(project, uri if sub else str(project), uri, "local")
    relative = _relative(project, state.toplevel)
    name = state.toplevel.as_uri() + (f"#{relative}" if relative else "")
    return ProjectSource(
        project,
        uri if sub else name,  # MLflow records `dir#sub` as given
        uri,
        "local",
        commit=state.commit,
        branch=state.branch,
        repo_url=state.remote_url,
        git=state,
    )


def _from_git(
    url: str,
    sub: str,
    uri: str,
    version: str | None,
    environ: Mapping[str, str],
    local: bool = False,
) -> ProjectSource:
    checkout = GitCache(writable_cache_dir(source_cache_dir(environ), "source")).checkout(
        url, version
    )
    directory = _inside(checkout.directory, sub, uri)
    name = url + (f"#{sub}" if sub else "") if local else uri
    return ProjectSource(
        directory,
        name,
        uri,
        "git",
        commit=checkout.commit,
        branch=checkout.branch,
        repo_url=url,
        version=version,
    )


def _is_git_url(base: str) -> bool:
    """A file: URL (or path) naming a repository itself: `repo.git`, bare or not."""
    if not is_file_uri(base):
        return False
    path = path_of_file_uri(base)
    return base.endswith(".git") or (path / "HEAD").is_file()


def _local_directory(base: str, invocation_dir: Path, uri: str) -> Path:
    raw = local_path_of(base)
    if raw is None:
        scheme = base.partition(":")[0]
        raise SourceError(f"{uri}: unsupported URI scheme '{scheme}'")
    directory = Path(os.path.abspath(invocation_dir / os.path.expanduser(raw)))
    try:
        exists = directory.exists()
    except OSError as exc:
        raise SourceError(f"{uri}: cannot be used as a project path ({exc.strerror})") from None
    if not exists:
        raise SourceError(f"{uri}: no such directory ({directory})")
    if not directory.is_dir():
        raise SourceError(
            f"{uri}: not a directory; pass the project directory that holds MLproject"
        )
    return directory


def _in_archive(root: Path, top: Path | None, sub: str, uri: str) -> Path:
    """Without `#sub`, the archive's single top folder when it has one (as GitHub packs a
    repository). With it, `sub` is relative to the archive's root, as in MLflow; a `sub` found
    only below the single top folder is still accepted."""
    if not sub:
        return top or root
    if top is not None and not (root / sub).exists() and (top / sub).is_dir():
        return _inside(top, sub, uri)
    return _inside(root, sub, uri)


def _inside(root: Path, sub: str, uri: str) -> Path:
    directory = (root / sub).resolve() if sub else root
    if sub and not str(directory).startswith(str(root.resolve()) + os.sep):
        raise SourceError(f"{uri}: the subdirectory '{sub}' leaves the project")
    if not directory.is_dir():
        raise SourceError(f"{uri}: no directory '{sub}' in the project")
    return directory


def _relative(path: Path, top: Path) -> str:
    relative = os.path.relpath(path.resolve(), top.resolve())
    return "" if relative == "." else Path(relative).as_posix()


def _join(first: str, second: str) -> str:
    return "/".join(part for part in (first, second) if part)
