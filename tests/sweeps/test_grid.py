"""The grid of `mlrun sweep`: value lists, ranges, globs, cross product, zip and the size cap;
and which of its points may run together (not two that write the same output)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlrun_cli.backends.streams import StopRequest
from mlrun_cli.errors import ParameterError, UsageError
from mlrun_cli.project.params import ResolvedParameter
from mlrun_cli.sweeps.batch import StopAll
from mlrun_cli.sweeps.grid import parse_grid, parse_values
from mlrun_cli.sweeps.plan import shared_outputs
from mlrun_cli.sweeps.threads import run_in_threads
from mlrun_cli.tracking.entities import RunStatus


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


# -- which points may run together ----------------------------------------------------------

SEGMENTS = st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3).map("/".join)
POINT = st.lists(st.tuples(st.sampled_from(["out", "model", "data"]), SEGMENTS), max_size=2)


def _parameters(point: list[tuple[str, str]]) -> tuple[ResolvedParameter, ...]:
    """`data` is an input (never shared), the others outputs; one name at most once."""
    named = dict(point)
    return tuple(
        ResolvedParameter(name, "path", path, role="input" if name == "data" else "output")
        for name, path in named.items()
    )


def _overlap(first: tuple[ResolvedParameter, ...], second: tuple[ResolvedParameter, ...]) -> bool:
    outputs = [[Path(p.value).parts for p in ps if p.role == "output"] for ps in (first, second)]
    return any(a[: len(b)] == b or b[: len(a)] == a for a in outputs[0] for b in outputs[1])


@settings(max_examples=300, deadline=None)
@given(st.lists(POINT, min_size=1, max_size=8))
def test_points_writing_one_path_or_inside_each_others_folder_are_one_group(
    points: list[list[tuple[str, str]]],
) -> None:
    cwd = Path("/work/here")
    params = {index: _parameters(point) for index, point in enumerate(points, start=1)}
    shared = shared_outputs(params, cwd)
    component = {index: {index} for index in params}  # the transitive closure of overlapping
    for first in params:
        for second in params:
            if first != second and _overlap(params[first], params[second]):
                merged = component[first] | component[second]
                for member in merged:
                    component[member] = merged
    for index in params:
        if len(component[index]) == 1:
            assert index not in shared.groups
        else:
            assert {i for i, g in shared.groups.items() if g == shared.groups[index]} == (
                component[index]
            )
    assert set(shared.shared) == set(shared.groups.values())
    for name, path in shared.shared.values():
        assert name != "data" and not path.startswith("/")


def test_the_message_names_what_is_shared_and_reused_points_drop_out() -> None:
    output = ResolvedParameter("output_file", "path", "/p/models/model.joblib", role="output")
    shared = shared_outputs({1: (output,), 2: (output,), 3: (output,)}, Path("/p"))
    assert shared.message() == (
        "children share output output_file (models/model.joblib); they run one at a time so "
        "each records its own output"
    )
    assert set(shared.among({1, 3}).groups) == {1, 3}
    assert not shared.among({2}).groups  # the others were earlier runs (--reuse)


def test_the_thread_scheduler_runs_one_of_a_group_at_a_time_and_the_rest_beside_it() -> None:
    running: set[int] = set()
    overlapped: list[set[int]] = []
    free_started = threading.Event()
    lock = threading.Lock()

    def launch(index: int, stop: StopRequest) -> RunStatus:
        with lock:
            running.add(index)
            overlapped.append(set(running))
        if index == 1:  # the free point 4 starts while the group's first point runs
            assert free_started.wait(30), "point 4 did not run beside point 1"
        if index == 4:
            free_started.set()
        with lock:
            running.discard(index)
        return RunStatus.FINISHED

    exclusive = {1: 1, 2: 1, 3: 1}
    statuses = run_in_threads([1, 2, 3, 4], launch, StopAll(), 2, False, exclusive)
    assert statuses == dict.fromkeys([1, 2, 3, 4], RunStatus.FINISHED)
    assert all(len(together & {1, 2, 3}) <= 1 for together in overlapped), overlapped
    assert {1, 4} in overlapped
