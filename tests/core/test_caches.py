"""Where mlrun keeps its caches: MLRUN_CACHE_DIR, else the user's cache folder."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from platformdirs import user_cache_dir

from mlrun_cli.core.caches import cache_root

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG rule")


@linux_only
@pytest.mark.parametrize("xdg", [None, "", "   ", "/srv/cache", "relative/cache"])
def test_the_cache_folder_is_the_one_platformdirs_names(
    xdg: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read without platformdirs on Linux, the answer is still its answer (relative values
    aside, which the XDG spec says to ignore)."""
    monkeypatch.delenv("MLRUN_CACHE_DIR", raising=False)
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    expected = Path(user_cache_dir("mlrun"))
    if xdg == "relative/cache":
        expected = Path.home() / ".cache" / "mlrun"
    assert cache_root() == expected


def test_the_environment_given_is_the_one_read(tmp_path: Path) -> None:
    """A command's settings carry their own environment (an embedding host's, a job's)."""
    assert cache_root({"MLRUN_CACHE_DIR": str(tmp_path)}) == tmp_path
    if sys.platform.startswith("linux"):
        assert cache_root({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "mlrun"
