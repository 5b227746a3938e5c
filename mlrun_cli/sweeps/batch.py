"""The seam between a sweep and the machines its children run on: a batch of points to run
under a parent run, and the protocol every scheduler implements (threads here, a Slurm job
array).

Backends install signal handlers only on the main thread, so a scheduler takes Ctrl-C itself
(`StopAll`) and shares it with every running child's own stop request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from mlrun_cli.backends.streams import StopRequest
from mlrun_cli.core.settings import Settings
from mlrun_cli.run.run_key import RunKey
from mlrun_cli.sweeps.plan import SweepOutput, SweepPlan, SweepPoint
from mlrun_cli.tracking.entities import Experiment, RunInfo, RunStatus
from mlrun_cli.tracking.store import Store

# (point index, the child's stop request) -> the child's final status
Launch = Callable[[int, StopRequest], RunStatus]


class StopAll(StopRequest):
    """The sweep's signal state: every child's stop request shares the signals it receives
    (the signal handler itself takes no lock, see backends.streams)."""

    def child(self) -> StopRequest:
        return self.sharing()


@dataclass(frozen=True)
class SweepBatch:
    """The points still to run (the rest were reused), with everything a scheduler needs."""

    plan: SweepPlan  # its `shared` lists only the groups these points share
    points: Sequence[SweepPoint]
    parent: RunInfo
    experiment: Experiment
    store: Store
    keys: Mapping[int, RunKey]
    settings: Settings
    output: SweepOutput
    stop: StopAll
    # Prepares the env once on this host and returns what runs one point through the ordinary
    # pipeline; called only by schedulers whose children run here.
    launcher: Callable[[], Launch]


class SweepScheduler(Protocol):
    name: str

    def run(self, batch: SweepBatch) -> dict[int, RunStatus]:
        """Run the points, at most `plan.jobs` at once and at most one of each shared-output
        group at once (so each child's output digest is of the file it wrote itself); the
        final status of each started one."""
        ...
