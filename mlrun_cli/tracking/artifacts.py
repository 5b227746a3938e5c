"""Where each file mlrun records lives among a run's artifacts: the one list of those paths.

Paths are relative to the run's artifact location, which only the store knows
(`store.artifact_dir(run)`): an experiment created with `-l /elsewhere` keeps them there.
"""

from __future__ import annotations

STDOUT_LOG = "logs/stdout.log"
STDERR_LOG = "logs/stderr.log"
BUILD_LOG = "environment/build.log"
ENV_LOCK = "environment/requirements.lock.txt"
GIT_DIFF = "provenance/git.diff"
INPUTS = "provenance/inputs.json"
OUTPUTS = "provenance/outputs.json"
RUN_RECORD = "provenance/run.json"
SWEEP_SUMMARY = "sweep/summary.json"  # a sweep parent's record of its children
