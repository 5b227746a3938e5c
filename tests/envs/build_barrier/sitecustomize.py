"""A barrier inside real `mlrun` processes, for the concurrent-build test in test_builds.py.

Python imports `sitecustomize` at start-up from PYTHONPATH; with MLRUN_TEST_BUILD_BARRIER
set (a folder) this one waits for mlrun's env cache to be imported and then changes two of
its methods: every cache miss leaves a file named after the process, and a build starts only
once MLRUN_TEST_BUILD_RUNNERS processes have missed. So every runner has found the key cold
before anything is built: only the cache's lock can then make them build once.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

FOLDER = os.environ.get("MLRUN_TEST_BUILD_BARRIER")
RUNNERS = int(os.environ.get("MLRUN_TEST_BUILD_RUNNERS", "0"))
TIMEOUT = 120.0


def _patch(cache_class: Any) -> None:
    assert FOLDER is not None
    misses = Path(FOLDER)
    lookup, build = cache_class.lookup, cache_class._build

    def observed_lookup(self: Any, key: str) -> Any:
        found = lookup(self, key)
        if found is None:
            (misses / str(os.getpid())).touch()
        return found

    def build_once_all_missed(self: Any, key: str, builder: Any) -> Any:
        deadline = time.monotonic() + TIMEOUT
        while len(os.listdir(misses)) < RUNNERS:
            if time.monotonic() > deadline:
                raise SystemExit(f"build barrier: not {RUNNERS} cache misses in {TIMEOUT:.0f}s")
            time.sleep(0.01)
        return build(self, key, builder)

    cache_class.lookup = observed_lookup
    cache_class._build = build_once_all_missed


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself: it patches mlrun's env cache right after Python loads it."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "mlrun_cli.envs.cache":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        load = spec.loader.exec_module

        def exec_module(module: ModuleType) -> None:
            load(module)
            _patch(module.EnvCache)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


if FOLDER:
    sys.meta_path.insert(0, _PatchOnImport())
