"""The sweep's children as threads of this process, each running the ordinary pipeline."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

from mlrun_cli.backends.streams import handling_signals
from mlrun_cli.sweeps.batch import Launch, StopAll, SweepBatch
from mlrun_cli.tracking.entities import RunStatus


class ThreadScheduler:
    """Children as threads of this process, each running the ordinary pipeline."""

    name = "local"

    def run(self, batch: SweepBatch) -> dict[int, RunStatus]:
        plan = batch.plan
        indexes = [point.index for point in batch.points]
        return run_in_threads(
            indexes, batch.launcher(), batch.stop, plan.jobs, plan.fail_fast, plan.shared.groups
        )


def run_in_threads(
    indexes: Sequence[int],
    launch: Launch,
    stop: StopAll,
    jobs: int,
    fail_fast: bool,
    exclusive: Mapping[int, int],
) -> dict[int, RunStatus]:
    """At most `jobs` points at once, and one of each `exclusive` group (point index -> group)
    at once; the final status of each started one."""
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
