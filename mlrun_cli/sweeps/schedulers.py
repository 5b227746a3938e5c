"""Which scheduler runs a sweep's children, by --backend: the one registry of sweep backends.

Threads on this machine for `local`; one Slurm job array for `slurm` (the nodes prepare the
env). Ray runs single runs but not sweeps yet: asking for it is a clear error.
"""

from __future__ import annotations

from collections.abc import Callable

from mlrun_cli.errors import UsageError
from mlrun_cli.sweeps.batch import SweepScheduler
from mlrun_cli.sweeps.slurm_arrays import ArrayScheduler
from mlrun_cli.sweeps.threads import ThreadScheduler

SCHEDULERS: dict[str, Callable[[], SweepScheduler]] = {
    "local": ThreadScheduler,
    "slurm": ArrayScheduler,
}
# Job backends that run single runs (`mlrun run --backend ray`) but not sweeps yet.
PLANNED = ("ray",)


def scheduler_for(backend: str) -> SweepScheduler:
    """The scheduler of a sweep's children."""
    if backend in PLANNED:
        raise UsageError(
            f"--backend {backend}: sweeps do not submit {backend} jobs yet (single runs do: "
            f"mlrun run --backend {backend}); run the sweep with --backend local"
        )
    if backend not in SCHEDULERS:
        raise UsageError(f"--backend {backend}: not a sweep backend ({', '.join(SCHEDULERS)})")
    return SCHEDULERS[backend]()
