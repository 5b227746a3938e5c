"""`mlrun sweep --search --backend slurm` on the real one-node cluster: each batch of -j
trials is one job array, and the study is told every child's result before the next batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import REPO, run_mlrun

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_a_search_on_slurm_runs_its_batches_as_job_arrays(tmp_path: Path, slurm_conf: str) -> None:
    config = json.dumps({"partition": "debug", "staging_dir": str(tmp_path / "staging")})
    done = run_mlrun(
        "sweep", str(REPO / "examples" / "search"), "--no-env", "--json",
        "--backend", "slurm", "--backend-config", config, "-j", "2",
        "--search", "random", "--seed", "4", "--trials", "4", "--objective", "loss",
        "--minimize", "-P", "lr=loguniform(1e-4,1e-1)", "-P", "layers=int(1,4)",
        cwd=tmp_path, timeout=300, SLURM_CONF=slurm_conf,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)["search"]
    trials = result["trials"]
    assert [(t["index"], t["status"], t["state"]) for t in trials] == [
        (i, "FINISHED", "COMPLETE") for i in (1, 2, 3, 4)
    ]
    scripts = sorted((tmp_path / "staging").glob("*/job.sbatch"))
    assert len(scripts) == 2  # two batches of two
    assert all("#SBATCH --array=0-1\n" in s.read_text() for s in scripts)

    from mlrun_cli.tracking.file_store import FileStore

    store = FileStore(tmp_path / "mlruns")
    jobs = [store.get_run(t["run_id"]).tags["mlrun.slurm.job_id"] for t in trials]
    arrays = [job.partition("_")[0] for job in jobs]
    assert arrays[0] == arrays[1] != arrays[2] == arrays[3]
    assert [job.partition("_")[2] for job in jobs] == ["0", "1", "0", "1"]
    parent = store.get_run(result["parent_run_id"])
    assert parent.tags["mlflow.project.backend"] == "slurm"
    assert parent.tags["mlrun.search.best_run_id"] == result["best"]["run_id"]
