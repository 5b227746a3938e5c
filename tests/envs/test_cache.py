"""The env cache: build once, reuse, never reuse a half-made env, explain rebuilds, prune."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlrun_cli.envs.cache import EnvCache, EnvInputs
from mlrun_cli.errors import EnvBuildError

INPUTS = EnvInputs("uv", "0.1", "3.11.7", "abc", project="/p", env_file="/p/python_env.yaml")


def make_env(prefix: Path, log: Path) -> dict[str, str]:
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "tool").write_text("x" * 100)
    (prefix.parent / "requirements.lock.txt").write_text("six==1.0\n")
    log.write_text("built\n")
    return {"engine": "test"}


def test_an_env_is_built_once_then_reused(tmp_path) -> None:
    cache = EnvCache(tmp_path)
    reasons: list[str] = []
    first = cache.get_or_build(INPUTS, make_env, on_build=reasons.append)
    second = cache.get_or_build(
        INPUTS, lambda p, log: pytest.fail("rebuilt"), on_build=reasons.append
    )
    assert first.built_now and not second.built_now
    assert first.key == second.key == INPUTS.key()
    assert reasons == [f"no uv env for key {INPUTS.key()} yet"]
    assert json.loads((tmp_path / first.key / "info.json").read_text())["engine"] == "test"
    assert second.lock_file.read_text() == "six==1.0\n"


def test_rebuild_builds_again(tmp_path) -> None:
    cache = EnvCache(tmp_path)
    cache.get_or_build(INPUTS, make_env)
    again = cache.get_or_build(INPUTS, make_env, rebuild=True)
    assert again.built_now and again.reason == "--rebuild-env was given"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"env_fingerprint": "def"}, "python_env.yaml changed since env {old}"),
        ({"python": "3.11.8"}, "python changed (3.11.7 -> 3.11.8)"),
        ({"manager_version": "0.2"}, "uv changed (0.1 -> 0.2)"),
    ],
)
def test_a_rebuild_says_what_changed(tmp_path, change, reason) -> None:
    cache = EnvCache(tmp_path)
    old = cache.get_or_build(INPUTS, make_env).key
    changed = EnvInputs(**{**INPUTS.__dict__, **change})
    assert cache.explain_miss(changed) == reason.format(old=old)


def test_a_failed_build_leaves_nothing_to_reuse_but_keeps_its_log(tmp_path) -> None:
    cache = EnvCache(tmp_path)

    def failing(prefix: Path, log: Path) -> dict[str, str]:
        prefix.mkdir(parents=True)
        log.write_text("pip said no\n")
        raise EnvBuildError("installing dependencies failed")

    with pytest.raises(EnvBuildError) as caught:
        cache.get_or_build(INPUTS, failing)
    assert not (tmp_path / INPUTS.key()).exists()
    assert caught.value.log_path == tmp_path / "failed" / f"{INPUTS.key()}.log"
    assert caught.value.log_path.read_text() == "pip said no\n"
    assert cache.get_or_build(INPUTS, make_env).built_now


def test_an_interrupted_build_leaves_nothing(tmp_path) -> None:
    cache = EnvCache(tmp_path)

    def interrupted(prefix: Path, log: Path) -> dict[str, str]:
        prefix.mkdir(parents=True)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.get_or_build(INPUTS, interrupted)
    assert not (tmp_path / INPUTS.key()).exists()


def test_leftovers_of_a_crashed_build_are_never_reused(tmp_path) -> None:
    cache = EnvCache(tmp_path)
    leftover = tmp_path / INPUTS.key() / "env" / "bin"
    leftover.mkdir(parents=True)  # a build that died before writing info.json
    assert cache.lookup(INPUTS.key()) is None
    built = cache.get_or_build(INPUTS, make_env)
    assert built.built_now and (built.prefix / "bin" / "tool").is_file()


# Each builder process records that it found the cache empty (a miss); whoever builds waits
# until every process has missed: only then is it certain that all of them raced for the same
# cold key, so only the lock can make them build once (without it, all of them build).
CONCURRENT_BUILD = """
import os, sys, time
from pathlib import Path
from mlrun_cli.envs.cache import EnvCache, EnvInputs

cache_root, counter, misses = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
expected = int(sys.argv[4])

class ObservedCache(EnvCache):
    def lookup(self, key):
        found = super().lookup(key)
        if found is None:
            (misses / str(os.getpid())).touch()
        return found

def build(prefix, log):
    with open(counter, "a") as out:
        out.write("build\\n")
    deadline = time.monotonic() + 60
    while len(list(misses.iterdir())) < expected:
        if time.monotonic() > deadline:
            sys.exit("not every builder missed the cache within 60 s")
        time.sleep(0.01)
    prefix.mkdir(parents=True)
    return {}

inputs = EnvInputs("uv", "0.1", "3.11.7", "abc")
print(ObservedCache(cache_root).get_or_build(inputs, build).key)
"""


def test_concurrent_builders_of_one_key_build_once(tmp_path) -> None:
    counter, misses = tmp_path / "builds.txt", tmp_path / "misses"
    misses.mkdir()
    builders = 4
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CONCURRENT_BUILD,
                str(tmp_path / "cache"),
                str(counter),
                str(misses),
                str(builders),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(builders)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0] * builders, outputs
    assert len(list(misses.iterdir())) == builders  # all of them raced for the cold key
    assert len({out.strip() for out, _ in outputs}) == 1
    assert counter.read_text() == "build\n"


def test_records_and_prune(tmp_path) -> None:
    cache = EnvCache(tmp_path)
    old = cache.get_or_build(INPUTS, make_env)
    fresh = cache.get_or_build(EnvInputs(**{**INPUTS.__dict__, "python": "3.12.1"}), make_env)
    cache.lookup(fresh.key)
    long_ago = time.time() - 40 * 86400
    os.utime(old.directory / "last-used", (long_ago, long_ago))
    records = {r.key: r for r in cache.records()}
    assert set(records) == {old.key, fresh.key}
    assert records[old.key].size_bytes >= 100
    assert (records[fresh.key].manager, records[fresh.key].python) == ("uv", "3.12.1")
    assert [r.key for r in cache.prune(30 * 86400)] == [old.key]
    assert [r.key for r in cache.records()] == [fresh.key]
    assert [r.key for r in cache.prune(None)] == [fresh.key]
    assert cache.records() == []
