"""Git, through the git executable: the state of a local project, and a cache of clones.

Remote projects are fetched into one bare repository per URL (shallow: only the commit that
runs), reused and fetched again by later runs, and each run gets its own clean worktree of
exactly that commit, so nothing a run writes can leak into the next one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from mlrun_cli.core.caches import source_cache_dir
from mlrun_cli.core.locks import exclusive_lock
from mlrun_cli.core.processes import CapturedOutcome, run_captured
from mlrun_cli.core.uri import is_file_uri
from mlrun_cli.errors import LaunchError, SourceError

log = logging.getLogger(__name__)
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_SHORT_SHA = re.compile(r"^[0-9a-f]{4,39}$")


# MLflow's transports; git refuses every other one (`fd::`, `ext::`), submodules included.
ALLOWED_PROTOCOLS = "https:http:ssh:git:file"
NETWORK_TIMEOUT_VARIABLE = "MLRUN_GIT_TIMEOUT"
_DEFAULT_NETWORK_TIMEOUT = 300.0
CHECKOUTS = "checkouts"  # per run, beside each clone (repo.git); `envs prune` removes them
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def git(*args: str, cwd: Path | None = None, network: bool = False) -> CapturedOutcome:
    """Run git without ever prompting (CI has no terminal to answer). A step that talks to a
    remote gets a deadline (MLRUN_GIT_TIMEOUT seconds): a server that never answers must not
    hang the run."""
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "true",
        "LC_ALL": "C",
        "GIT_ALLOW_PROTOCOL": ALLOWED_PROTOCOLS,
    }
    prefix = ("git", "-C", str(cwd)) if cwd is not None else ("git",)
    if not network:
        return run_captured((*prefix, *args), env=env, timeout=600)
    timeout = _network_timeout()
    try:
        return run_captured((*prefix, *args), env=env, timeout=timeout)
    except LaunchError:
        raise SourceError(
            f"git {args[0]} did not finish within {timeout:g} s; check the URL and the "
            f"network, or raise {NETWORK_TIMEOUT_VARIABLE}"
        ) from None


def _network_timeout() -> float:
    raw = os.environ.get(NETWORK_TIMEOUT_VARIABLE, "")
    try:
        return float(raw) if float(raw) > 0 else _DEFAULT_NETWORK_TIMEOUT
    except ValueError:
        return _DEFAULT_NETWORK_TIMEOUT


def check_git_url(url: str) -> None:
    """Only MLflow's transports: https, http, ssh, git, file URLs, scp-like `host:path`, or a
    local path. git's `transport::address` forms (`fd::`, `ext::`) run helpers or hang."""
    scheme = _SCHEME.match(url)
    if "::" in url.split("/", 1)[0] or (scheme is None and "::" in url):
        raise SourceError(
            f"{url}: git transport '{url.partition('::')[0]}::' is not allowed; use an "
            "https://, http://, ssh://, git:// or file:// URL, or host:path"
        )
    if scheme is not None and scheme.group(1).lower() not in ALLOWED_PROTOCOLS.split(":"):
        raise SourceError(
            f"{url}: git URL scheme '{scheme.group(1)}' is not allowed; use https, http, ssh, "
            "git or file"
        )


def git_available() -> bool:
    return shutil.which("git") is not None


def first_error(outcome: CapturedOutcome) -> str:
    """The line of git's stderr that says what went wrong."""
    lines = [line.strip() for line in outcome.stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith(("fatal:", "error:", "ERROR:")):
            return line
    return lines[-1] if lines else f"git exited with {outcome.returncode}"


@dataclass(frozen=True)
class GitState:
    """What the working tree of a local project looks like right now."""

    toplevel: Path
    commit: str
    branch: str | None
    remote_url: str | None
    diff: str  # staged and unstaged changes of tracked files against HEAD
    untracked: tuple[str, ...]

    @property
    def dirty(self) -> bool:
        return bool(self.diff) or bool(self.untracked)


def inside_work_tree(directory: Path) -> bool:
    """False only when git could not find a repository here: no `.git` in this folder or
    above, and no GIT_DIR. Saves starting git (and importing subprocess) for most projects."""
    if "GIT_DIR" in os.environ:
        return True
    current = directory.resolve()
    while True:
        if os.path.lexists(current / ".git"):
            return True
        if current.parent == current:
            return False
        current = current.parent


def exclude_pathspecs(toplevel: Path, excluded: Iterable[Path]) -> tuple[str, ...]:
    """`-- . :(exclude)mlruns ...` for the excluded paths inside the repository: the store,
    the caches and a run's outputs are never code changes, so git itself leaves them out."""
    top = toplevel.resolve()
    specs = []
    for path in excluded:
        try:
            relative = Path(os.path.abspath(path)).resolve().relative_to(top).as_posix()
        except ValueError:
            continue  # outside the repository: git never sees it
        if relative != ".":
            specs.append(f":(exclude,literal){relative}")
    return ("--", ".", *sorted(set(specs))) if specs else ()


def git_state(directory: Path, excluded: Iterable[Path] = ()) -> GitState | None:
    """None when the directory is not in a git repository (or git is missing: one warning).
    Paths in `excluded` (and everything below them) are not part of the state."""
    if not inside_work_tree(directory):
        return None
    if not git_available():
        log.warning("git is not installed: the run records no git commit or changes")
        return None
    top = git("rev-parse", "--show-toplevel", cwd=directory)
    if top.returncode != 0:
        return None
    toplevel = Path(top.stdout.strip())
    head = git("rev-parse", "--verify", "-q", "HEAD", cwd=toplevel)
    if head.returncode != 0:
        log.warning("%s is a git repository without commits: no commit recorded", toplevel)
        return None
    branch = git("symbolic-ref", "--short", "-q", "HEAD", cwd=toplevel).stdout.strip() or None
    remote = git("remote", "get-url", "origin", cwd=toplevel)
    specs = exclude_pathspecs(toplevel, excluded)
    status = git(
        "status", "--porcelain=v1", "-z", "--untracked-files=all", *specs, cwd=toplevel
    ).stdout
    entries = [e for e in status.split("\0") if e]
    untracked = tuple(sorted(e[3:] for e in entries if e.startswith("??")))
    tracked_changes = any(not e.startswith("??") for e in entries)
    diff = (
        git("diff", "HEAD", "--no-color", "--no-ext-diff", *specs, cwd=toplevel).stdout
        if tracked_changes
        else ""
    )
    return GitState(
        toplevel=toplevel,
        commit=head.stdout.strip(),
        branch=branch,
        remote_url=remote.stdout.strip() if remote.returncode == 0 else None,
        diff=diff,
        untracked=untracked,
    )


@dataclass(frozen=True)
class Checkout:
    directory: Path  # the clean worktree of `commit`
    commit: str
    branch: str | None  # when the version named a branch (or the remote's default one)


class GitCache:
    """Bare clones per URL under `root`, one lock per URL, one worktree per run."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> GitCache:
        return cls(source_cache_dir(environ))

    def checkout(self, url: str, version: str | None) -> Checkout:
        check_git_url(url)
        if not git_available():
            raise SourceError(f"{url}: git is not installed, so git sources cannot be fetched")
        key = hashlib.sha256(url.encode()).hexdigest()[:16]
        with self._locked(key):
            repo = self._bare_repo(key, url)
            commit, branch = self._fetch(repo, url, version)
            directory = self.root / key / CHECKOUTS / f"{commit[:12]}-{secrets.token_hex(4)}"
            added = git("worktree", "add", "--detach", str(directory), commit, cwd=repo)
            if added.returncode != 0:
                raise SourceError(f"{url}: cannot check out {commit}: {first_error(added)}")
        if (directory / ".gitmodules").is_file():
            # A local repository's own local submodules are trusted; git refuses file://
            # submodules by default since 2.38.
            trust = ("-c", "protocol.file.allow=always") if is_file_uri(url) else ()
            update = ("submodule", "update", "--init", "--recursive", "--depth", "1")
            modules = git(*trust, *update, cwd=directory, network=True)

            if modules.returncode != 0:
                raise SourceError(f"{url}: submodules failed: {first_error(modules)}")
        return Checkout(directory, commit, branch)

    def prune_checkouts(self, older_than_seconds: float | None) -> int:
        """Remove run checkouts not touched for that long (all for None); clones stay."""
        now = time.time()
        removed = 0
        for repo in sorted(self.root.glob("*/repo.git")):
            with self._locked(repo.parent.name):
                checkouts = repo.parent / CHECKOUTS
                for checkout in sorted(checkouts.iterdir()) if checkouts.is_dir() else []:
                    age = now - checkout.stat().st_mtime
                    if older_than_seconds is None or age >= older_than_seconds:
                        shutil.rmtree(checkout, ignore_errors=True)
                        removed += 1
                git("worktree", "prune", cwd=repo)
        return removed

    def _bare_repo(self, key: str, url: str) -> Path:
        repo = self.root / key / "repo.git"
        if not (repo / "HEAD").is_file():
            shutil.rmtree(repo, ignore_errors=True)
            repo.mkdir(parents=True)
            git("init", "-q", "--bare", cwd=repo)
            git("remote", "add", "origin", url, cwd=repo)
        return repo

    def _fetch(self, repo: Path, url: str, version: str | None) -> tuple[str, str | None]:
        """Resolve `version` against the remote's refs, then fetch only that commit."""
        listing = git("ls-remote", "--symref", "origin", cwd=repo, network=True)
        if listing.returncode != 0:
            raise SourceError(f"{url}: cannot reach the repository: {first_error(listing)}")
        refs, default_branch = _parse_ls_remote(listing.stdout)
        branch = None
        if version is None:
            sha, branch = refs.get("HEAD"), default_branch
        elif f"refs/heads/{version}" in refs:
            sha, branch = refs[f"refs/heads/{version}"], version
        elif f"refs/tags/{version}" in refs:
            sha = refs.get(f"refs/tags/{version}^{{}}", refs[f"refs/tags/{version}"])
        elif _FULL_SHA.match(version):
            sha = version
        elif _SHORT_SHA.match(version):
            return self._fetch_everything(repo, url, version), None
        else:
            raise SourceError(f"{url}: no branch, tag or commit named '{version}'")
        if sha is None:
            raise SourceError(f"{url}: the repository has no commits")
        fetched = git("fetch", "-q", "--depth", "1", "origin", sha, cwd=repo, network=True)
        if fetched.returncode != 0:
            return self._fetch_everything(repo, url, sha), branch
        return sha, branch

    def _fetch_everything(self, repo: Path, url: str, version: str) -> str:
        """For an abbreviated commit (or a server that refuses fetching by id): all history."""
        unshallow = ("--unshallow",) if (repo / "shallow").exists() else ()
        refspecs = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
        fetched = git("fetch", "-q", *unshallow, "origin", *refspecs, cwd=repo, network=True)
        if fetched.returncode != 0:
            raise SourceError(f"{url}: fetch failed: {first_error(fetched)}")
        resolved = git("rev-parse", "--verify", "-q", f"{version}^{{commit}}", cwd=repo)
        if resolved.returncode != 0:
            raise SourceError(f"{url}: no branch, tag or commit named '{version}'")
        return resolved.stdout.strip()

    def _locked(self, key: str) -> AbstractContextManager[None]:
        return exclusive_lock(self.root / f"{key}.lock")


def _parse_ls_remote(text: str) -> tuple[dict[str, str], str | None]:
    refs: dict[str, str] = {}
    default_branch = None
    for line in text.splitlines():
        left, _, name = line.partition("\t")
        if left.startswith("ref: refs/heads/") and name == "HEAD":
            default_branch = left[len("ref: refs/heads/") :]
        elif name:
            refs[name] = left
    return refs, default_branch
