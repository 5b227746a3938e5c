"""Zip archives as project sources: a local file or an http(s) URL, extracted once per content.

Every entry is checked before anything is written: one that would land outside the target
directory (an absolute name, `..`) refuses the whole archive.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import stat
import zipfile
from pathlib import Path

from mlrun_cli.core.uri import path_of_file_uri
from mlrun_cli.errors import SourceError

_DOWNLOAD_TIMEOUT = 60


def fetch_archive(
    location: str, invocation_dir: Path, cache_root: Path
) -> tuple[Path, Path | None]:
    """Where the archive was extracted, and its single top folder if it has exactly one."""
    archive = _local_copy(location, invocation_dir, cache_root)
    try:
        digest = _sha256(archive)
        target = cache_root / "archives" / digest
        if not target.is_dir():
            _extract(archive, target, location)
    except OSError as exc:
        where = exc.filename or archive
        raise SourceError(f"{location}: cannot extract into {where} ({exc.strerror})") from None
    entries = [p for p in target.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return target, entries[0]
    return target, None


def _local_copy(location: str, invocation_dir: Path, cache_root: Path) -> Path:
    if not location.startswith(("http://", "https://")):
        path = invocation_dir / path_of_file_uri(location)
        if not path.is_file():
            raise SourceError(f"{location}: no such archive")
        return path
    import urllib.request  # only archives over http need it; it costs 15 ms at start-up

    downloads = cache_root / "downloads"

    downloads.mkdir(parents=True, exist_ok=True)
    target = downloads / f"{secrets.token_hex(8)}.zip"
    try:
        with (
            urllib.request.urlopen(location, timeout=_DOWNLOAD_TIMEOUT) as response,
            open(target, "wb") as out,
        ):
            shutil.copyfileobj(response, out)
    except OSError as exc:
        target.unlink(missing_ok=True)
        raise SourceError(f"{location}: download failed: {exc}") from None
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def layout_problem(entries: list[zipfile.ZipInfo]) -> str | None:
    """An archive must describe a plain tree: no path through a symbolic link the archive
    itself creates, and no name that is both a file and a folder."""
    files: set[str] = set()
    links: set[str] = set()
    folders: set[str] = set()
    for entry in entries:
        name = entry.filename.rstrip("/")
        parts = name.split("/")
        folders.update("/".join(parts[:end]) for end in range(1, len(parts)))
        if entry.is_dir():
            folders.add(name)
        elif name in files:
            return f"entry {entry.filename!r} appears twice"
        else:
            files.add(name)
            if stat.S_ISLNK(entry.external_attr >> 16):
                links.add(name)
    both = sorted(files & folders)
    if not both:
        return None
    if both[0] in links:
        return f"entries go through {both[0]!r}, a symbolic link the archive creates"
    return f"{both[0]!r} is both a file and a folder"


def _extract(archive: Path, target: Path, location: str) -> None:
    """Extract beside the target, then rename: a half-extracted archive is never used."""
    staging = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
    try:
        with zipfile.ZipFile(archive) as bundle:
            for name in bundle.namelist():
                destination = (staging / name).resolve()
                if not str(destination).startswith(str(staging.resolve()) + os.sep):
                    raise SourceError(
                        f"{location}: refused, entry {name!r} would land outside the target"
                    )
            problem = layout_problem(bundle.infolist())
            if problem is not None:
                raise SourceError(f"{location}: refused, {problem}")
            try:
                bundle.extractall(staging)
            # zipfile raises NotImplementedError for a compression method it lacks
            except (OSError, ValueError, RuntimeError, NotImplementedError) as exc:
                raise SourceError(f"{location}: cannot extract: {exc}") from None
        try:
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # else another run extracted the same archive first
                raise

    except zipfile.BadZipFile:
        raise SourceError(f"{location}: not a zip archive") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
