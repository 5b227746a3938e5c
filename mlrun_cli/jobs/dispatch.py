"""A planned run executed where its plan says: on this host, or as a job on a cluster engine.

The one place that chooses, above both: `run` knows nothing of jobs, and every caller (the
CLI, sweeps, reproduce) reaches either through here.
"""

from __future__ import annotations

from mlrun_cli.core.settings import Settings
from mlrun_cli.run.pipeline import RunOutput, RunResult, execute_run
from mlrun_cli.run.plan import RunPlan
from mlrun_cli.run.run_key import RunKey


def execute(
    plan: RunPlan, settings: Settings, output: RunOutput, key: RunKey | None = None
) -> RunResult:
    """Run `plan` here, or submit it to its engine and follow it (`key`: the run key already
    computed for --reuse, so the inputs are not digested twice)."""
    if plan.job is not None:
        from mlrun_cli.jobs.submit import submit_run  # a local run never loads the job machinery

        return submit_run(plan, plan.job, settings, output)
    return execute_run(plan, settings, output, key)
