"""Parameter resolution: types, defaults, missing values, quoting."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from mlrun_cli.errors import ParameterError
from mlrun_cli.project.params import parse_assignments, resolve_command
from mlrun_cli.project.spec import EntryPoint, Parameter


def entry(command: str, *params: Parameter) -> EntryPoint:
    return EntryPoint("main", command, tuple(params))


def test_assignments_split_on_the_first_equals_sign() -> None:
    assert parse_assignments(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["alpha"], "-P 'alpha': expected NAME=VALUE"),
        (["a=1", "a=2"], "-P a: given twice ('1' and '2')"),
        (["x;rm=1"], "invalid name 'x;rm'"),
        (["../up=1"], "invalid name '../up'"),
        (["=1"], "invalid name ''"),
    ],
)
def test_malformed_assignments_are_refused(items, message) -> None:
    with pytest.raises(ParameterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_assignments(items)


def test_defaults_apply_and_user_values_win(tmp_path: Path) -> None:
    ep = entry("run {a} {b}", Parameter("a", "string", "one"), Parameter("b", "int", "2"))
    assert resolve_command(ep, {}, tmp_path, tmp_path).command == "run one 2"
    assert resolve_command(ep, {"b": "7"}, tmp_path, tmp_path).command == "run one 7"


def test_every_missing_required_parameter_is_listed_at_once(tmp_path: Path) -> None:
    ep = entry(
        "x {a} {b} {c}",
        Parameter("a", "string", None),
        Parameter("b", "float", None),
        Parameter("c", "string", "ok"),
    )
    with pytest.raises(ParameterError, match=r"needs: a, b \(pass -P a=\.\.\. -P b=\.\.\.\)"):
        resolve_command(ep, {}, tmp_path, tmp_path)


@pytest.mark.parametrize(
    ("kind", "value", "rendered"),
    [
        ("float", "1e-1", "1e-1"),
        ("float", "3", "3"),
        ("int", "-4", "-4"),
        ("bool", "YES", "YES"),
        ("bool", "0", "0"),
        ("string", "a b", "'a b'"),
    ],
)
def test_typed_values_are_checked_and_rendered(tmp_path: Path, kind, value, rendered) -> None:
    ep = entry("x {p}", Parameter("p", kind, None))
    assert resolve_command(ep, {"p": value}, tmp_path, tmp_path).command == f"x {rendered}"


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        ("float", "abc", "'abc' is not a number"),
        ("float", "nan", "'nan' is not a number"),
        ("int", "1.5", "'1.5' is not an integer"),
        ("bool", "maybe", "'maybe' is not a boolean"),
    ],
)
def test_values_that_do_not_parse_name_the_parameter(tmp_path: Path, kind, value, reason) -> None:
    ep = entry("x {p}", Parameter("p", kind, None))
    with pytest.raises(ParameterError, match=f"parameter 'p' \\({kind}\\): {reason}"):
        resolve_command(ep, {"p": value}, tmp_path, tmp_path)


def test_all_type_errors_are_reported_together(tmp_path: Path) -> None:
    ep = entry("x {a} {b}", Parameter("a", "float", None), Parameter("b", "int", None))
    with pytest.raises(ParameterError) as caught:
        resolve_command(ep, {"a": "x", "b": "y"}, tmp_path, tmp_path)
    assert len(caught.value.lines()) == 2


def test_user_paths_start_at_the_invocation_dir_defaults_at_the_project(tmp_path: Path) -> None:
    invoked, project = tmp_path / "here", tmp_path / "project"
    (invoked / "data").mkdir(parents=True)
    (project / "data").mkdir(parents=True)
    (invoked / "data" / "mine.csv").write_text("x")
    (project / "data" / "default.csv").write_text("x")
    ep = entry("x {data}", Parameter("data", "path", "data/default.csv"))
    by_default = resolve_command(ep, {}, invoked, project)
    assert by_default.values()["data"] == str(project / "data" / "default.csv")
    given = resolve_command(ep, {"data": "data/mine.csv"}, invoked, project)
    assert given.values()["data"] == str(invoked / "data" / "mine.csv")


def test_a_path_may_name_a_new_file_in_an_existing_directory(tmp_path: Path) -> None:
    ep = entry("x {out}", Parameter("out", "path", None))
    resolved = resolve_command(ep, {"out": "model.bin"}, tmp_path, tmp_path)
    assert resolved.values()["out"] == str(tmp_path / "model.bin")


def test_a_missing_local_path_names_the_parameter(tmp_path: Path) -> None:
    ep = entry("x {data}", Parameter("data", "path", None))
    missing = tmp_path / "nowhere" / "data.csv"
    with pytest.raises(
        ParameterError, match=f"parameter 'data' \\(path\\): no such file or directory: {missing}"
    ):
        resolve_command(ep, {"data": str(missing)}, tmp_path, tmp_path)


def test_file_uris_are_local_paths_and_remote_paths_are_refused(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("x")
    ep = entry("x {data}", Parameter("data", "path", None))
    resolved = resolve_command(ep, {"data": (tmp_path / "d.csv").as_uri()}, tmp_path, tmp_path)
    assert resolved.values()["data"] == str(tmp_path / "d.csv")
    with pytest.raises(ParameterError, match="remote URI"):
        resolve_command(ep, {"data": "s3://bucket/d.csv"}, tmp_path, tmp_path)


def test_uri_keeps_real_uris_and_makes_local_paths_absolute(tmp_path: Path) -> None:
    ep = entry("x {u}", Parameter("u", "uri", None))
    assert resolve_command(ep, {"u": "s3://b/k"}, tmp_path, tmp_path).values()["u"] == "s3://b/k"
    assert resolve_command(ep, {"u": "rel/x"}, tmp_path, tmp_path).values()["u"] == str(
        tmp_path / "rel/x"
    )


def test_undeclared_parameters_are_appended_quoted(tmp_path: Path) -> None:
    ep = entry("python t.py {a}", Parameter("a", "string", "1"))
    resolved = resolve_command(ep, {"lr": "0.1", "note": "two words"}, tmp_path, tmp_path)
    assert resolved.command == "python t.py 1 --lr 0.1 --note 'two words'"
    assert [p.type for p in resolved.parameters] == ["string", "undeclared", "undeclared"]


def test_dashed_names_and_literal_braces(tmp_path: Path) -> None:
    ep = entry("echo {batch-size} {{literal}}", Parameter("batch-size", "int", "32"))
    assert resolve_command(ep, {}, tmp_path, tmp_path).command == "echo 32 {literal}"


@pytest.mark.parametrize("value", ["x; touch /tmp/pwned", "$(id)", "`id`", "a'b", "\n"])
def test_values_reach_bash_as_one_literal_word(tmp_path: Path, value: str) -> None:
    ep = entry("printf %s {v}", Parameter("v", "string", None))
    command = resolve_command(ep, {"v": value}, tmp_path, tmp_path).command
    assert shlex.split(command) == ["printf", "%s", value]


def test_relocation_moves_only_paths_under_mapped_folders(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "x.csv").write_text("1")
    ep = entry(
        "run {data} {label} {elsewhere}",
        Parameter("data", "path", "data/x.csv"),
        Parameter("label", "string", str(project / "data" / "x.csv")),
        Parameter("elsewhere", "uri", "s3://bucket/key"),
    )
    resolved = resolve_command(ep, {}, tmp_path, project)
    moved = resolved.relocated(((str(project), "/mlflow/projects/code/"),))
    assert (
        moved.command
        == f"run /mlflow/projects/code/data/x.csv {project}/data/x.csv s3://bucket/key"
    )
    assert moved.values()["data"] == str(project / "data" / "x.csv")  # recorded as on the host
    assert resolved.relocated(()) is resolved
