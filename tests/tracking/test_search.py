"""The filter language gives exactly MLflow's runs, in MLflow's order."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from mlrun_cli.commands.runs import RunQuery, list_runs
from mlrun_cli.core.settings import Settings
from mlrun_cli.tracking.search import SearchError, parse_filter, parse_order_by
from tests.stores import build_store, mlflow_ids


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
    for query, expected in zip(queries, mlflow_ids(tmp_path, queries), strict=True):
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
