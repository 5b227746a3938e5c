"""`mlrun envs list|prune` and how a run picks its environment manager."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from mlrun_cli.envs import default_manager
from mlrun_cli.envs.cache import EnvCache, EnvInputs
from mlrun_cli.errors import EnvBuildError
from mlrun_cli.project.spec import load_project
from tests.conftest import write_files


def build_fake_env(root: Path, python: str) -> str:
    """A real cache entry; its 'build' just writes files."""

    def build(prefix: Path, log: Path) -> dict[str, str]:
        prefix.mkdir(parents=True)
        (prefix / "data").write_bytes(b"x" * 2048)
        return {}

    inputs = EnvInputs(
        "uv", "0.1", python, "abc", project="/work/p", env_file="/work/p/python_env.yaml"
    )
    return EnvCache(root).get_or_build(inputs, build).key


def test_envs_list_shows_what_the_cache_holds(cli, tmp_path) -> None:
    assert cli("envs", "list").stdout.split() == [
        "KEY",
        "MANAGER",
        "PYTHON",
        "SIZE",
        "CREATED",
        "LAST",
        "USED",
        "PROJECT",
    ]
    key = build_fake_env(tmp_path / "envs", "3.11.7")
    lines = cli("envs", "list").stdout.splitlines()
    assert lines[1].split()[:3] == [key, "uv", "3.11.7"]
    assert re.match(r"^2\.\d KB$", " ".join(lines[1].split()[3:5]))  # the env and its info file
    assert lines[1].endswith("/work/p")
    document = json.loads(cli("envs", "list", "--json").stdout)
    assert document["format"] == 1
    [env] = document["envs"]
    assert (env["key"], env["manager"], env["python"], env["project"]) == (
        key,
        "uv",
        "3.11.7",
        "/work/p",
    )
    assert env["size_bytes"] >= 2048 and env["path"] == str(tmp_path / "envs" / key / "env")


def test_envs_prune_by_age_and_all(cli, tmp_path) -> None:
    old = build_fake_env(tmp_path / "envs", "3.11.7")
    build_fake_env(tmp_path / "envs", "3.12.1")
    long_ago = time.time() - 40 * 86400
    os.utime(tmp_path / "envs" / old / "last-used", (long_ago, long_ago))
    assert re.fullmatch(r"Removed 1 environment \(2\.\d KB\)\n", cli("envs", "prune").stdout)
    assert cli("envs", "prune", "--older-than", "1d").stdout == "Removed 0 environments (0 B)\n"
    assert cli("envs", "prune", "--all").stdout.startswith("Removed 1 environment (")
    assert cli("envs", "list", "--json").stdout.count('"key"') == 0


def test_a_bad_duration_is_a_usage_error(cli) -> None:
    result = cli("envs", "prune", "--older-than", "soon")
    assert result.exit_code == 2
    assert "'soon' is not a duration like 30d, 12h, 90m (minutes) or 3mo (months)" in (
        result.stderr
    )


@pytest.mark.parametrize(("limit", "removed"), [("1m", 1), ("90min", 1), ("1mo", 0), ("1y", 0)])
def test_m_is_minutes_and_mo_is_months(cli, tmp_path, limit: str, removed: int) -> None:
    key = build_fake_env(tmp_path / "envs", "3.11.7")
    an_hour_ago = time.time() - 3 * 3600
    os.utime(tmp_path / "envs" / key / "last-used", (an_hour_ago, an_hour_ago))
    result = cli("envs", "prune", "--older-than", limit)
    assert result.stdout.startswith(f"Removed {removed} environment")


def test_no_empty_lock_files_stay_in_the_cache(cli, tmp_path) -> None:
    root = tmp_path / "envs"
    build_fake_env(root, "3.11.7")

    def failing(prefix: Path, log: Path) -> dict[str, str]:
        raise EnvBuildError("no such package")

    with pytest.raises(EnvBuildError):
        EnvCache(root).get_or_build(EnvInputs("uv", "0.1", "3.12.1", "def"), failing)
    assert len(list(root.glob("*.lock"))) == 1  # the built env's; the failed one left none
    (root / "0123456789abcdef0123.lock").touch()  # left by an older mlrun
    cli("envs", "prune", "--all")
    assert list(root.glob("*.lock")) == []


@pytest.mark.parametrize(
    ("files", "manager"),
    [
        ({"python_env.yaml": "python: '3.11'\n"}, "uv"),
        ({"conda.yaml": "dependencies: [six]\n"}, "conda"),
        ({"pyproject.toml": "", "uv.lock": ""}, "uv"),
        ({"main.py": ""}, "local"),
    ],
)
def test_the_default_manager_follows_the_declared_environment(tmp_path, files, manager) -> None:
    project = load_project(write_files(tmp_path / "p", files))
    assert default_manager(project, dict(os.environ)) == manager


def test_docker_env_defaults_to_docker(tmp_path) -> None:
    project = load_project(write_files(tmp_path / "p", {"MLproject": "docker_env: {image: x}\n"}))
    assert default_manager(project, dict(os.environ)) == "docker"
