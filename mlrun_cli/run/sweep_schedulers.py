"""Where a sweep's children run: the seam between the sweep and the machines.

A scheduler receives the points to run (by index) and a `launch` that runs one of them to its
end through the ordinary pipeline, and returns each started point's final status. Points of one
`exclusive` group (children that write the same output) never run at the same time, so each
child's recorded output digest is of the file it wrote itself. Threads on this machine are the
one scheduler; a Slurm sweep is one job array instead (run/sweep_slurm.py, which needs the
whole plan, not a launch per point); Ray jobs would plug in here, and until then asking for
them is a clear error.

Backends install signal handlers only on the main thread, so a scheduler takes Ctrl-C itself
(`StopAll`) and shares it with every running child's own stop request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from mlrun_cli.backends.streams import StopRequest, handling_signals
from mlrun_cli.errors import UsageError
from mlrun_cli.tracking.entities import RunStatus

# (point index, the child's stop request) -> the child's final status
Launch = Callable[[int, StopRequest], RunStatus]


class StopAll(StopRequest):
    """The sweep's signal state: every child's stop request shares the signals it receives
    (the signal handler itself takes no lock, see backends.streams)."""

    def child(self) -> StopRequest:
        return self.sharing()


class SweepScheduler(Protocol):
    name: str

    def run(
        self,
        indexes: Sequence[int],
        launch: Launch,
        stop: StopAll,
        jobs: int,
        fail_fast: bool,
        exclusive: Mapping[int, int],
    ) -> dict[int, RunStatus]:
        """Run the points, at most `jobs` at once and at most one of each `exclusive` group
        (point index -> group) at once; the final status of each started one."""
        ...


class ThreadScheduler:
    """Children as threads of this process, each running the ordinary pipeline."""

    name = "local"

    def run(
        self,
        indexes: Sequence[int],
        launch: Launch,
        stop: StopAll,
        jobs: int,
        fail_fast: bool,
        exclusive: Mapping[int, int],
    ) -> dict[int, RunStatus]:
        pending = list(indexes)
        statuses: dict[int, RunStatus] = {}
        busy: set[int] = set()  # the exclusive groups with a point running
        changed = threading.Condition()

        def startable() -> int | None:
            """The first pending point whose group has none running (grid order)."""
            for position, index in enumerate(pending):
                if exclusive.get(index) not in busy:
                    return pending.pop(position)
            return None

        def next_index() -> int | None:
            with changed:
                while True:
                    failed = any(s != RunStatus.FINISHED for s in statuses.values())
                    if not pending or stop.signum is not None or (fail_fast and failed):
                        return None
                    if (index := startable()) is not None:
                        if index in exclusive:
                            busy.add(exclusive[index])
                        return index
                    changed.wait(0.1)  # a point of its group ends, or a signal arrives

        def work() -> None:
            while (index := next_index()) is not None:
                try:
                    status = launch(index, stop.child())
                    with changed:
                        statuses[index] = status
                finally:  # even a launch that raised frees its group for the next point
                    with changed:
                        if index in exclusive:
                            busy.discard(exclusive[index])
                        changed.notify_all()

        workers = [threading.Thread(target=work, daemon=True) for _ in range(jobs)]
        with handling_signals(stop):
            for worker in workers:
                worker.start()
            for worker in workers:
                while worker.is_alive():
                    worker.join(0.1)  # short waits, so the signal handler runs promptly
        return statuses


SCHEDULERS: dict[str, Callable[[], SweepScheduler]] = {"local": ThreadScheduler}
# Job backends whose sweep is one job array submitted at once (run/sweep_slurm.py).
JOB_ARRAYS = ("slurm",)
# Job backends that run single runs (`mlrun run --backend ray`) but not sweeps yet.
PLANNED = ("ray",)


def scheduler_for(backend: str) -> SweepScheduler | None:
    """The scheduler of a sweep's children; None when they are one job array."""
    if backend in JOB_ARRAYS:
        return None
    if backend in PLANNED and backend not in SCHEDULERS:
        raise UsageError(
            f"--backend {backend}: sweeps do not submit {backend} jobs yet (single runs do: "
            f"mlrun run --backend {backend}); run the sweep with --backend local"
        )
    if backend not in SCHEDULERS:
        known = ", ".join([*SCHEDULERS, *JOB_ARRAYS])
        raise UsageError(f"--backend {backend}: not a sweep backend ({known})")
    return SCHEDULERS[backend]()
