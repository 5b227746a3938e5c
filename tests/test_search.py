"""The filter language gives exactly MLflow's runs, in MLflow's order."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlrun_cli.runs import RunQuery, list_runs
from mlrun_cli.settings import Settings
from mlrun_cli.tracking.search import SearchError, parse_filter, parse_order_by

RUNTIME = Path(__file__).resolve().parent.parent / "mlrun_cli" / "runtime"

BUILD_STORE = """
import random, sys
sys.path.insert(0, sys.argv[2])
import mlrun_log as ml
random.seed(7)
count = int(sys.argv[1])
for i in range(count):
    ml.start_run(run_name=f"run-{i % 7}", experiment_id="0")
    if i % 10 != 3:
        ml.log_metric("m", random.random(), timestamp=1000 + i)
    ml.log_metric("loss", random.choice([0.5, 0.25, 0.125]), step=1, timestamp=1000 + i)
    ml.log_metric("loss", 9.0, step=0, timestamp=2000 + i)  # an older step: not the latest
    if i % 4:
        ml.log_param("lr", random.choice(["0.1", "0.01", "1e-3"]))
    ml.log_param("model", random.choice(["cnn", "CNN-large", "rnn"]))
    if i % 5 == 0:
        ml.set_tag("team", random.choice(["vision", "nlp"]))
    ml.end_run(random.choice(["FINISHED", "FINISHED", "FAILED", "KILLED"]))
"""


def build_store(root: Path, count: int) -> None:
    subprocess.run(
        [sys.executable, "-c", BUILD_STORE, str(count), str(RUNTIME)],
        cwd=root,
        check=True,
        env={"MLFLOW_TRACKING_URI": (root / "mlruns").as_uri(), "PATH": ""},
    )


MLFLOW_SEARCH = """
import json, sys, mlflow
mlflow.set_tracking_uri(sys.argv[1])
results = []
for filter_string, order_by, max_results in json.loads(sys.argv[2]):
    runs = mlflow.search_runs(["0"], filter_string, order_by=order_by, max_results=max_results,
                              output_format="list")
    results.append([r.info.run_id for r in runs])
print(json.dumps(results))
"""


def mlflow_ids(root: Path, queries: list[tuple[str, list[str], int]]) -> list[list[str]]:
    """MLflow's answers to all the queries, from one process (its import takes seconds)."""
    done = subprocess.run(
        [sys.executable, "-c", MLFLOW_SEARCH, (root / "mlruns").as_uri(), json.dumps(queries)],
        capture_output=True,
        text=True,
        env={"MLFLOW_ALLOW_FILE_STORE": "true", "PATH": ""},
        check=True,
    )
    return json.loads(done.stdout)


def mlrun_ids(root: Path, filter_string: str, order_by: list[str], max_results: int) -> list[str]:
    query = RunQuery(
        experiment_ids=["0"], filter=filter_string, order_by=order_by, max_results=max_results
    )
    settings = Settings.resolve(tracking_uri=str(root / "mlruns"))
    return [r.info.run_id for r in list_runs(settings, query).runs]


CASES = [
    ("", []),
    ("metrics.m > 0.5", []),
    ("metrics.m >= 0.5 and params.lr = '0.1'", []),
    ("metrics.loss = 0.25", ["metrics.m DESC"]),
    ("params.lr != '0.1'", ["params.lr"]),
    ("params.model LIKE 'cnn%'", []),
    ("params.model ILIKE 'cnn%'", ["metrics.m ASC"]),
    ("params.model LIKE '_nn'", []),
    ("params.lr IS NULL", []),
    ("params.lr IS NOT NULL AND tags.team IS NULL", []),
    ("tags.team = 'nlp'", ["start_time ASC"]),
    ("attributes.status = 'FAILED'", []),
    ("status != 'KILLED' and metrics.m < 0.3", ["metrics.loss DESC", "params.model"]),
    ("run_name = 'run-3'", []),
    (
        "attributes.run_name LIKE 'run-%' and attributes.start_time > 0",
        ["attributes.run_name DESC"],
    ),
    ("metrics.`m` > 0.9", []),
    ('params."model" = "rnn"', []),
    ("metrics.m < -1", []),
    ("tags.`mlflow.runName` = 'run-1'", ["tags.team"]),
]


@pytest.mark.slow
def test_the_same_runs_in_the_same_order_as_mlflow(tmp_path: Path) -> None:
    if importlib.util.find_spec("mlflow") is None:
        pytest.skip("needs mlflow-skinny (test extras)")
    build_store(tmp_path, 300)
    queries = [(f, o, m) for f, o in CASES for m in (1000, 17)]
    for query, expected in zip(queries, mlflow_ids(tmp_path, queries)):
        assert mlrun_ids(tmp_path, *query) == expected, query


def test_run_id_in_a_list(tmp_path: Path) -> None:
    build_store(tmp_path, 20)
    some = mlrun_ids(tmp_path, "", [], 1000)[:3]
    listed = ", ".join(f"'{r}'" for r in some)
    assert sorted(mlrun_ids(tmp_path, f"attributes.run_id IN ({listed})", [], 1000)) == sorted(some)
    assert len(mlrun_ids(tmp_path, f"run_id NOT IN ({listed})", [], 1000)) == 17


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "metrics.m > 0.5 or metrics.m < 0.1",
            "expected AND at column 17, found 'or' (clauses can only be joined with AND)",
        ),
        ("metrics.m > 'x'", "expected a number at column 13, found \"'x'\""),
        ("params.lr = 0.1", "expected a quoted string at column 13, found '0.1' (write 'value')"),
        ("metrics.m LIKE '0%'", "LIKE cannot compare metric 'm' (column 11)"),
        ("metrics.m IS NULL", "IS NULL cannot compare metric 'm'"),
        ("nonsense.x = 'a'", "unknown entity 'nonsense' at column 1"),
        ("attributes.colour = 'red'", "unknown attribute 'colour' at column 1"),
        ("metrics.m >", "a value must follow > at the end"),
        ("metrics.m > 0.5 and", "a clause must follow AND at column 17"),
        ("metrics.m ? 1", "unexpected '?' at column 11"),
        ("attributes.status IN ('a')", "only run_id can be compared with a list"),
        ("run_id IN ('a' 'b')", "expected , or ) at column 16"),
    ],
)
def test_a_malformed_filter_points_at_the_bad_token(text: str, message: str) -> None:
    with pytest.raises(SearchError) as caught:
        parse_filter(text)
    assert message in caught.value.message
    assert caught.value.exit_code == 2


def test_order_by_parsing() -> None:
    assert parse_order_by("metrics.acc DESC").ascending is False
    assert (parse_order_by("`params`.lr").entity, parse_order_by("params.lr").key) == (
        "param",
        "lr",
    )
    with pytest.raises(SearchError, match="expected a key and an optional ASC/DESC"):
        parse_order_by("metrics.acc sideways")
