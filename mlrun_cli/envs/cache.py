"""One cache of built environments for every manager, safe under concurrency and crashes.

    <root>/<key>/env/            the environment itself (built in place: venvs are not relocatable)
    <root>/<key>/build.log       everything the build printed
    <root>/<key>/requirements.lock.txt   what ended up installed
    <root>/<key>/info.json       written last, atomically: only an env with it is ever reused
    <root>/<key>.lock            one builder at a time per key (fcntl)
    <root>/failed/<key>.log      the log of the last failed build of a key

A build that fails or is interrupted leaves no info.json; its directory is removed at once, or
by the next builder of that key, so nothing half-made is ever reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlrun_cli.core.atomic import write_atomic
from mlrun_cli.core.caches import env_cache_dir
from mlrun_cli.core.locks import exclusive_lock
from mlrun_cli.errors import EnvBuildError

INFO = "info.json"
LOCK_FILE = "requirements.lock.txt"
BUILD_LOG = "build.log"
INFO_FORMAT = 1


def platform_tag() -> str:
    return f"{sys.platform}-{platform.machine()}"


@dataclass(frozen=True)
class EnvInputs:
    """What decides an environment's content; `key()` hashes the deciding fields only."""

    manager: str
    manager_version: str
    python: str
    env_fingerprint: str
    platform: str = field(default_factory=platform_tag)
    project: str = ""  # for explanations, not part of the key
    env_file: str = ""  # likewise

    def key(self) -> str:
        deciding = [
            self.manager,
            self.manager_version,
            self.python,
            self.env_fingerprint,
            self.platform,
        ]
        return hashlib.sha256("\n".join(deciding).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class CachedEnv:
    key: str
    directory: Path
    info: Mapping[str, Any]
    built_now: bool = False
    reason: str = ""  # why it was built, when it was

    @property
    def prefix(self) -> Path:
        return self.directory / "env"

    @property
    def lock_file(self) -> Path:
        return self.directory / LOCK_FILE

    @property
    def build_log(self) -> Path:
        return self.directory / BUILD_LOG


@dataclass(frozen=True)
class EnvRecord:
    """One cached environment as `mlrun envs list` shows it."""

    key: str
    manager: str
    python: str
    size_bytes: int
    created: int
    last_used: int
    project: str
    path: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# (prefix, build log) -> extra facts to keep in info.json (engine, dropped packages ...)
Builder = Callable[[Path, Path], Mapping[str, Any]]


class EnvCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> EnvCache:
        """MLRUN_ENV_ROOT, else the user cache directory (platformdirs)."""
        return cls(env_cache_dir(environ))

    def lookup(self, key: str) -> CachedEnv | None:
        """A complete environment for `key`, marked as used now; None if there is none."""
        directory = self.root / key
        try:
            info = json.loads((directory / INFO).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not (directory / "env").is_dir():
            return None
        (directory / "last-used").touch()
        return CachedEnv(key, directory, info)

    def get_or_build(
        self,
        inputs: EnvInputs,
        build: Builder,
        rebuild: bool = False,
        on_build: Callable[[str], None] = lambda reason: None,
    ) -> CachedEnv:
        """Reuse the env for `inputs`, or build it once even if many runs ask at the same time."""
        key = inputs.key()
        if not rebuild and (hit := self.lookup(key)):
            return hit
        with self._locked(key):
            if not rebuild and (hit := self.lookup(key)):
                return hit  # another run built it while we waited
            reason = "--rebuild-env was given" if rebuild else self.explain_miss(inputs)
            on_build(reason)
            extra = self._build(key, build)
            info = {
                "format": INFO_FORMAT,
                "key": key,
                "created": int(time.time() * 1000),
                **asdict(inputs),
                **extra,
            }
            write_atomic(self.root / key / INFO, json.dumps(info, indent=2, sort_keys=True))
            (self.root / key / "last-used").touch()
        return CachedEnv(key, self.root / key, info, built_now=True, reason=reason)

    def _build(self, key: str, build: Builder) -> Mapping[str, Any]:
        directory = self.root / key
        if directory.exists():
            shutil.rmtree(directory)  # leftovers of a crashed build, or a requested rebuild
        directory.mkdir(parents=True)
        log = directory / BUILD_LOG
        log.touch()
        try:
            return build(directory / "env", log)
        except BaseException as exc:
            kept = self.root / "failed" / f"{key}.log"
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, kept)
            shutil.rmtree(directory, ignore_errors=True)
            self._lock_path(key).unlink(missing_ok=True)  # held by us: safe to remove
            if isinstance(exc, EnvBuildError):
                details = (*exc.details, f"(whole log: {kept})")
                raise EnvBuildError(exc.message, details, log_path=kept) from None
            raise

    def explain_miss(self, inputs: EnvInputs) -> str:
        """Say what changed since this project's last env, in one line."""
        key = inputs.key()
        previous = [
            info
            for info in self._infos()
            if info.get("project") == inputs.project and info.get("manager") == inputs.manager
        ]
        if not previous:
            return f"no {inputs.manager} env for key {key} yet"
        last = max(previous, key=lambda info: info.get("created", 0))
        name = Path(inputs.env_file).name or "the environment file"
        if last.get("env_fingerprint") != inputs.env_fingerprint:
            return f"{name} changed since env {last['key']}"
        for field_name, label in (("python", "python"), ("manager_version", inputs.manager)):
            if last.get(field_name) != getattr(inputs, field_name):
                return f"{label} changed ({last.get(field_name)} -> {getattr(inputs, field_name)})"
        return f"platform changed ({last.get('platform')} -> {inputs.platform})"

    def _lock_path(self, key: str) -> Path:
        return self.root / f"{key}.lock"

    def _locked(self, key: str) -> AbstractContextManager[None]:
        return exclusive_lock(self._lock_path(key))

    def _infos(self) -> Iterator[dict[str, Any]]:
        if not self.root.is_dir():
            return
        for info_path in self.root.glob(f"*/{INFO}"):
            try:
                yield json.loads(info_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue

    def records(self) -> list[EnvRecord]:
        records = []
        for info in self._infos():
            directory = self.root / str(info.get("key"))
            last_used = directory / "last-used"
            created = int(info.get("created", 0))
            records.append(
                EnvRecord(
                    key=str(info.get("key")),
                    manager=str(info.get("manager")),
                    python=str(info.get("python")),
                    size_bytes=_size(directory),
                    created=created,
                    last_used=int(last_used.stat().st_mtime * 1000)
                    if last_used.exists()
                    else created,
                    project=str(info.get("project")),
                    path=str(directory / "env"),
                )
            )
        return sorted(records, key=lambda r: r.last_used, reverse=True)

    def prune(self, older_than_seconds: float | None) -> list[EnvRecord]:
        """Remove envs unused for longer than the limit (all of them for None)."""
        now = time.time() * 1000
        removed = []
        for record in self.records():
            if (
                older_than_seconds is not None
                and now - record.last_used < older_than_seconds * 1000
            ):
                continue
            with self._locked(record.key):
                shutil.rmtree(self.root / record.key, ignore_errors=True)
                self._lock_path(record.key).unlink(missing_ok=True)
            removed.append(record)
        self._remove_orphan_locks()
        shutil.rmtree(self.root / "failed", ignore_errors=True)
        return removed

    def _remove_orphan_locks(self) -> None:
        """Lock files whose env is gone (left by an older mlrun or a killed build)."""
        for lock in self.root.glob("*.lock") if self.root.is_dir() else ():
            key = lock.name.removesuffix(".lock")
            with self._locked(key):
                if not (self.root / key).exists():
                    self._lock_path(key).unlink(missing_ok=True)


def _size(directory: Path) -> int:
    total = 0
    for dirpath, _dirs, files in os.walk(directory):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
    return total
