"""A bad --backend-config is refused before any store, run or job exists, every problem listed."""

from __future__ import annotations

from pathlib import Path

from tests.backends.jobs_common import SLEEPER
from tests.conftest import write_files


def test_every_config_problem_is_listed_and_nothing_is_created(cli, tmp_path: Path) -> None:
    write_files(tmp_path / "p", SLEEPER)
    result = cli(
        "run", "p", "--backend", "slurm",
        "--backend-config", '{"partitio": "debug", "nodes": "two", "modules": "cuda"}',
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "--backend-config:1: missing required key 'partition'",
        "--backend-config:1: modules: expected a list, got a string ('cuda')",
        "--backend-config:1: nodes: expected an integer, got a string ('two')",
        "--backend-config:1: partitio: unknown key (allowed here: partition, account, time, mem, "
        "gpus_per_node, gres, nodes, cpus_per_task, qos, constraint, modules, environment, "
        "sbatch_args, sbatch-script-file, staging_dir, mlrun_command)",
        "mlrun: 4 problems found; nothing was run",
    ]
    assert not (tmp_path / "mlruns").exists()


def test_a_config_file_is_located_by_line(cli, tmp_path: Path) -> None:
    write_files(tmp_path / "p", SLEEPER)
    config = write_files(tmp_path, {"ray.json": '{\n  "num_cpus": "many"\n}\n'}) / "ray.json"
    result = cli("run", "p", "--backend", "ray", "--backend-config", str(config))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == (
        f"{config}:2: num_cpus: expected a number, got a string ('many')"
    )
    assert not (tmp_path / "mlruns").exists()


def test_detach_without_a_job_backend_is_a_usage_error(cli, tmp_path: Path) -> None:
    write_files(tmp_path / "p", SLEEPER)
    result = cli("run", "p", "--detach")
    assert result.exit_code == 2
    assert result.stderr == "mlrun: error: --detach needs a job backend: --backend slurm or ray\n"
    assert not (tmp_path / "mlruns").exists()


def test_an_unset_environment_variable_is_refused_before_any_run_exists(
    cli, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.delenv("MLRUN_TEST_UNSET_VARIABLE", raising=False)
    write_files(tmp_path / "p", SLEEPER)
    config = '{"partition": "debug", "environment": ["MLRUN_TEST_UNSET_VARIABLE"]}'
    result = cli("run", "p", "--backend", "slurm", "--backend-config", config)
    assert result.exit_code == 2
    assert result.stderr == (
        "mlrun: error: --backend-config environment: MLRUN_TEST_UNSET_VARIABLE not set in this "
        "shell; set it or give NAME=value\n"
    )
    assert not (tmp_path / "mlruns").exists()
