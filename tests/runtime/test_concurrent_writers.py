"""mlrun_log with many writers at once: threads of one program and several programs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlrun_cli.tracking.entities import RunStatus
from mlrun_cli.tracking.file_store import FileStore
from mlrun_cli.tracking.stored_run import StoredRun
from tests.conftest import RUNTIME, child_env

THREADS = 16
PROCESSES = 4
POINTS = 10

WRITER = """
import sys, threading
sys.path.insert(0, sys.argv[1])
import mlrun_log as ml
process, threads, points = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
start = threading.Barrier(threads)
errors = []

def write(thread):
    start.wait()
    try:
        for i in range(points):
            ml.set_tag("shared", f"{process}-{thread}-{i}")
            ml.set_tag(f"writer/{process}-{thread}", str(i))
            ml.log_param("same", "1")
            ml.log_metric("loss", process * 10_000 + thread * 100 + i, step=i)
    except BaseException as exc:
        errors.append(repr(exc))

workers = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
print("\\n".join(errors), file=sys.stderr)
sys.exit(1 if errors else 0)
"""


def test_threads_and_processes_writing_the_same_keys_lose_nothing(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "mlruns")
    store.ensure()
    experiment = store.get_experiment("0")
    run = store.create_run(experiment, "shared", "tester", {})
    env = child_env(**store.child_environment(run, experiment))
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(RUNTIME), str(p), str(THREADS), str(POINTS)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(PROCESSES)
    ]
    for writer in writers:
        _, errors = writer.communicate(timeout=120)
        assert writer.returncode == 0, errors

    recorded = StoredRun(tmp_path / "mlruns" / "0" / run.run_id, run)
    points = recorded.metric_history("loss")
    expected = {
        (p * 10_000 + t * 100 + i, i)
        for p in range(PROCESSES)
        for t in range(THREADS)
        for i in range(POINTS)
    }
    assert sorted((int(value), step) for _, value, step in points) == sorted(expected)
    tags = recorded.tags
    last = POINTS - 1
    writers_seen = {k: v for k, v in tags.items() if k.startswith("writer/")}
    assert writers_seen == {
        f"writer/{p}-{t}": str(last) for p in range(PROCESSES) for t in range(THREADS)
    }
    process, thread, step = tags["shared"].split("-")
    assert (int(process) < PROCESSES, int(thread) < THREADS, step) == (True, True, str(last))
    assert recorded.params == {"same": "1"}
    leftovers = [p for p in (tmp_path / "mlruns").rglob(".*") if p.name != ".trash"]
    assert [p for p in leftovers if p.name.endswith(".tmp")] == []
    assert store.read_run(run.run_id)[0].status == RunStatus.RUNNING
