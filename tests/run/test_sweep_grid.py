"""The grid of `mlrun sweep`: value lists, ranges, globs, cross product, zip and the size cap."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlrun_cli.errors import ParameterError, UsageError
from mlrun_cli.run.sweep_grid import parse_grid, parse_values


def test_a_comma_list_keeps_escaped_commas_and_a_single_value_is_one_point(tmp_path) -> None:
    assert parse_values("a", r"x,y\,z,w", tmp_path) == ("x", "y,z", "w")
    assert parse_values("a", "only", tmp_path) == ("only",)
    with pytest.raises(ParameterError, match="empty value"):
        parse_values("a", "x,,y", tmp_path)


def test_ranges_count_like_python_without_float_noise(tmp_path) -> None:
    assert parse_values("n", "range(1, 4)", tmp_path) == ("1", "2", "3")
    assert parse_values("n", "range(0, 10, 5)", tmp_path) == ("0", "5")
    assert parse_values("x", "range(0.1, 0.4, 0.1)", tmp_path) == ("0.1", "0.2", "0.3")
    assert parse_values("x", "range(3, 0, -1)", tmp_path) == ("3", "2", "1")
    for bad, reason in (
        ("range(1)", "expected range"),
        ("range(a, b)", "expected range"),
        ("range(0, 1, 0)", "must not be 0"),
        ("range(5, 1)", "empty"),
    ):
        with pytest.raises(ParameterError, match=reason):
            parse_values("x", bad, tmp_path)


def test_glob_lists_matching_paths_sorted_relative_to_the_invocation(tmp_path: Path) -> None:
    for name in ("b.csv", "a.csv", "notes.txt"):
        (tmp_path / "data").mkdir(exist_ok=True)
        (tmp_path / "data" / name).write_text(name)
    assert parse_values("f", "glob(data/*.csv)", tmp_path) == ("data/a.csv", "data/b.csv")
    with pytest.raises(ParameterError, match="no file matches"):
        parse_values("f", "glob(data/*.parquet)", tmp_path)


def test_the_grid_is_the_cross_product_and_zip_pairs_lists(tmp_path) -> None:
    grid = parse_grid(["a=1,2", "b=x,y,z", "c=k"], tmp_path, zipped=False, max_runs=100)
    assert grid.size == 6
    assert grid.points()[:4] == [
        {"a": "1", "b": "x", "c": "k"},
        {"a": "1", "b": "y", "c": "k"},
        {"a": "1", "b": "z", "c": "k"},
        {"a": "2", "b": "x", "c": "k"},
    ]
    assert grid.varying == ("a", "b")
    zipped = parse_grid(["a=1,2", "b=x,y", "c=k"], tmp_path, zipped=True, max_runs=100)
    assert zipped.points() == [{"a": "1", "b": "x", "c": "k"}, {"a": "2", "b": "y", "c": "k"}]
    with pytest.raises(UsageError, match="same length: a has 2, b has 3"):
        parse_grid(["a=1,2", "b=x,y,z"], tmp_path, zipped=True, max_runs=100)


def test_an_oversized_grid_is_refused_before_its_points_exist(tmp_path) -> None:
    with pytest.raises(UsageError, match="1000000 points, more than --max-runs 1000"):
        parse_grid(["a=range(0, 1000)", "b=range(0, 1000)"], tmp_path, False, max_runs=1000)
    with pytest.raises(ParameterError, match="given twice"):
        parse_grid(["a=1", "a=2"], tmp_path, False, max_runs=10)
