"""The rule for outputs, on generated histories: a `path` parameter an earlier run of the same
entry point of the same project recorded as an output is an output again; every path the
project's runs recorded as outputs is never code; another project's records change nothing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from mlrun_cli.core.settings import Settings
from mlrun_cli.run.pipeline import plan_run
from mlrun_cli.run.plan import RunRequest
from mlrun_cli.tracking.file_store import FileStore
from tests.conftest import write_files

ENTRIES = ("train", "infer")
PARAMS = ("a", "b", "c")
MLPROJECT = "name: p\nentry_points:\n" + "".join(
    f"  {entry}:\n    parameters:\n"
    + "".join(f"      {p}: {{type: path, default: {p}.txt}}\n" for p in PARAMS)
    + '    command: "echo {a} {b} {c}"\n'
    for entry in ENTRIES
)
records = st.sets(
    st.tuples(st.sampled_from(ENTRIES), st.sampled_from(PARAMS), st.booleans()), max_size=8
)


def _record(store: FileStore, source: str, entry: str, param: str, value: Path) -> None:
    experiment = store.get_or_create_experiment("history")
    tags = {
        "mlflow.source.name": source,
        "mlflow.project.entryPoint": entry,
        f"mlrun.output.{param}.digest": "0" * 64,
    }
    run = store.create_run(experiment, "earlier", "user", tags)
    store.log_params(run, {param: str(value)})


@settings(max_examples=30, deadline=None)
@given(history=records)
def test_outputs_follow_the_project_s_recorded_history(
    history: set[tuple[str, str, bool]],
) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        project = write_files(
            root / "project", {"MLproject": MLPROJECT, **{f"{p}.txt": p for p in PARAMS}}
        )
        store = FileStore(root / "mlruns")
        store.ensure()
        for entry, param, same_project in history:
            source = str(project) if same_project else str(root / "elsewhere")
            _record(store, source, entry, param, project / f"{param}.txt")
        environ = {**os.environ, "MLRUN_CACHE_DIR": str(root / "cache")}
        config = Settings.resolve(None, cwd=root, environ=environ)
        ours = {(e, p) for e, p, same in history if same}
        for entry in ENTRIES:
            request = RunRequest(uri=str(project), entry_point=entry, env_manager="local")
            plan = plan_run(request, config)
            roles = {p.name: p.role for p in plan.command.parameters}
            assert roles == {p: "output" if (entry, p) in ours else "input" for p in PARAMS}
            written = {project / f"{p}.txt" for _, p in ours}
            assert written <= set(plan.source.excluded)
            others = {project / f"{p}.txt" for p in PARAMS} - written
            assert not others & set(plan.source.excluded)
