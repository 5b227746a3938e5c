"""A large unchanged input is hashed once; any rewrite of it is hashed again."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlrun_cli.core.caches import digest_cache_dir
from mlrun_cli.run import digest_cache
from mlrun_cli.run.digest_cache import MIN_CACHED_BYTES
from mlrun_cli.run.provenance import digest_path


def test_an_unchanged_large_file_is_hashed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(digest_cache, "RACY_SECONDS", 0.0)  # as if written long ago
    data = tmp_path / "data.bin"
    data.write_bytes(b"a" * MIN_CACHED_BYTES)
    first = digest_path(data)
    [entry] = list(digest_cache_dir().iterdir())
    entry.write_text(f"{'0' * 64} {MIN_CACHED_BYTES}\n")  # proves the second answer is cached
    assert digest_path(data) == ("0" * 64, MIN_CACHED_BYTES, 1)
    assert first[0] != "0" * 64


def test_a_file_changed_just_now_is_hashed_every_time(tmp_path: Path) -> None:
    """A rewrite within the same tick of the file clock would keep every time the same."""
    data = tmp_path / "data.bin"
    data.write_bytes(b"a" * MIN_CACHED_BYTES)
    before = digest_path(data)
    assert not digest_cache_dir().exists()
    data.write_bytes(b"b" * MIN_CACHED_BYTES)
    assert digest_path(data) != before


def test_small_files_are_not_cached(tmp_path: Path) -> None:
    (tmp_path / "small.txt").write_text("x")
    digest_path(tmp_path / "small.txt")
    assert not digest_cache_dir().exists()
