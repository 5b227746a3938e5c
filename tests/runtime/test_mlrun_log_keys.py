"""mlrun_log refuses keys MLflow would not store whole: a newline anywhere, a final one included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mlrun_cli.tracking.file_store import FileStore
from tests.conftest import RUNTIME, child_env

GOOD = ["loss", "val/acc", "a.b-c d:e", "x_1"]
BREAKS = ["\n", "\r\n", "\n\n", "\r", "\t", "\x00"]
TRY_EVERY_KEY = """
import json, sys
sys.path.insert(0, sys.argv[1])
import mlrun_log as ml
accepted = []
for key in json.loads(sys.argv[2]):
    for log in (lambda k: ml.log_param(k, 1), lambda k: ml.log_metric(k, 1.0),
                lambda k: ml.set_tag(k, "v")):
        try:
            log(key)
            accepted.append(key)
        except ValueError:
            pass
print(json.dumps(accepted))
"""


def candidate_keys() -> list[str]:
    """Every good key with a line break or control character at its end, start or middle."""
    keys = []
    for good in GOOD:
        for bad in BREAKS:
            keys += [good + bad, bad + good, good[:2] + bad + good[2:]]
    return keys


def test_keys_with_a_line_break_anywhere_are_refused(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "mlruns")
    store.ensure()
    experiment = store.get_experiment("0")
    run = store.create_run(experiment, "keys", "tester", {})
    keys = candidate_keys()
    done = subprocess.run(
        [sys.executable, "-c", TRY_EVERY_KEY, str(RUNTIME), json.dumps([*GOOD, *keys])],
        env=child_env(**store.child_environment(run, experiment)),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    accepted = json.loads(done.stdout)
    assert accepted == [key for key in GOOD for _ in range(3)]
    run_dir = tmp_path / "mlruns" / "0" / run.run_id
    written = {
        path.relative_to(run_dir / kind).as_posix()
        for kind in ("params", "metrics", "tags")
        for path in (run_dir / kind).rglob("*")
        if path.is_file()
    }
    assert written >= set(GOOD)
    assert not any(set(name) & set("".join(BREAKS)) for name in written)
