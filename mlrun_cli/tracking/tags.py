"""Every tag (and mlrun's one param) name mlrun writes or reads: MLflow's own, then mlrun's.

MLflow's names are what its client and UI look for, so they are spelled exactly as MLflow
spells them. mlrun's live under `mlrun.`; `mlrun runs describe` and `compare` show them, and
the run cache, gc, attach and reproduce read them back. The artifact paths are in artifacts.py.
(`runtime/mlrun_log.py` runs with the standard library only and spells the few it needs.)
"""

from __future__ import annotations

# MLflow's system tags
RUN_NAME_TAG = "mlflow.runName"
USER_TAG = "mlflow.user"
SOURCE_TAG = "mlflow.source.name"
SOURCE_TYPE_TAG = "mlflow.source.type"
GIT_COMMIT_TAG = "mlflow.source.git.commit"
GIT_DIRTY_TAG = "mlflow.source.git.dirty"
GIT_DIFF_TAG = "mlflow.source.git.diff"
GIT_REPO_URL_TAG = "mlflow.source.git.repoURL"
LEGACY_GIT_REPO_URL_TAG = "mlflow.gitRepoURL"
GIT_BRANCH_TAG = "mlflow.source.git.branch"
ENTRY_POINT_TAG = "mlflow.project.entryPoint"
PROJECT_BACKEND_TAG = "mlflow.project.backend"
PROJECT_ENV_TAG = "mlflow.project.env"
PARENT_TAG = "mlflow.parentRunId"
DATA_CONTEXT_TAG = "mlflow.data.context"  # on a dataset input, not on a run
DOCKER_IMAGE_URI_TAG = "mlflow.docker.image.uri"
DOCKER_IMAGE_ID_TAG = "mlflow.docker.image.id"

# How the run went
EXIT_CODE_TAG = "mlrun.exit_code"
DURATION_TAG = "mlrun.duration_s"
COMMAND_TAG = "mlrun.command"
VERSION_TAG = "mlrun.version"
HOST_TAG = "mlrun.host"
PLATFORM_TAG = "mlrun.platform"
GC_TAG = "mlrun.gc"  # why `mlrun runs gc` ended the run

# Who runs it, so gc and attach can tell a live runner from a dead one
RUNNER_TAG_PREFIX = "mlrun.runner."
RUNNER_HOST_TAG = "mlrun.runner.host"
RUNNER_PID_TAG = "mlrun.runner.pid"
RUNNER_START_TAG = "mlrun.runner.start"
PGID_TAG = "mlrun.runner.pgid"
PGID_START_TAG = "mlrun.runner.pgid.start"

# The run cache, outputs and reproductions
RUN_KEY_TAG = "mlrun.run_key"
REUSED_FROM_TAG = "mlrun.reused_from"
REPRODUCES_TAG = "mlrun.reproduces"
OUTPUT_TAG_PREFIX = "mlrun.output."

# The environment
ENV_KEY_TAG = "mlrun.env.key"
ENV_PYTHON_TAG = "mlrun.env.python"
ENV_PYTHON_PATH_TAG = "mlrun.env.python.path"
ENV_ENGINE_TAG = "mlrun.env.engine"

# Jobs on a cluster engine
BACKEND_TAG = "mlrun.backend"
REASON_TAG = "mlrun.engine.reason"  # why the engine ended a job the node could not record
STATE_TAG = "mlrun.engine.state"
UNREACHABLE_AFTER_TAG = "mlrun.engine.unreachable_after"  # s before settled FAILED (jobs.reconcile)
UNREACHABLE_SINCE_TAG = "mlrun.engine.unreachable_since"  # ms; empty once reached again
ADDRESS_TAG = "mlrun.ray.address"
SLURM_PARTITION_TAG = "mlrun.slurm.partition"

# Sweeps
SWEEP_TAG = "mlrun.sweep"
INDEX_TAG = "mlrun.sweep.index"
GRID_PARAM = "mlrun.sweep.grid"  # a param of the sweep's parent run: the grid as given

# Searches (a sweep whose parent's mlrun.sweep is "search")
SEARCH_PARAM = "mlrun.search"  # a param of the search's parent: its definition, as JSON
TRIAL_STATE_TAG = "mlrun.search.state"  # on a child: COMPLETE, FAIL or PRUNED, as told
PRUNED_TAG = "mlrun.search.pruned"  # on a child the pruner stopped: "true"
BEST_RUN_TAG = "mlrun.search.best_run_id"  # on the parent: the best trial so far
BEST_TRIAL_TAG = "mlrun.search.best_trial"
BEST_VALUE_TAG = "mlrun.search.best_value"
BEST_PARAMS_TAG = "mlrun.search.best_params"  # JSON
