"""A search's spaces: parsed from `-P`, checked against the declared types, enqueued points."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlrun_cli.errors import ParameterError
from mlrun_cli.project.spec import EntryPoint, Parameter
from mlrun_cli.sweeps.spaces import (
    CHOICE,
    FIXED,
    FLOAT,
    INT,
    check_space,
    format_value,
    parse_dimension,
    parse_point,
    parse_space,
)

ENTRY = EntryPoint(
    "main",
    "python train.py",
    (
        Parameter("lr", "float", "0.1"),
        Parameter("layers", "int", "1"),
        Parameter("opt", "string", "adam"),
        Parameter("shuffle", "bool", "true"),
        Parameter("data", "path", "data.csv"),
    ),
)


def test_every_kind_of_space(tmp_path: Path) -> None:
    space = parse_space(
        ["lr=loguniform(1e-4, 1e-1)", "dropout=uniform(0,0.5)", "layers=int(1,4)",
         "opt=choice(adam, sgd)", "batch=16,32", "seed=7"],
        tmp_path,
    )  # fmt: skip
    kinds = {d.name: (d.kind, d.low, d.high, d.log, d.values) for d in space.dimensions}
    assert kinds == {
        "lr": (FLOAT, 1e-4, 1e-1, True, ()),
        "dropout": (FLOAT, 0.0, 0.5, False, ()),
        "layers": (INT, 1.0, 4.0, False, ()),
        "opt": (CHOICE, 0.0, 0.0, False, ("adam", "sgd")),
        "batch": (CHOICE, 0.0, 0.0, False, ("16", "32")),
        "seed": (FIXED, 0.0, 0.0, False, ("7",)),
    }
    assert space.fixed == {"seed": "7"}
    assert [d.name for d in space.searched] == ["lr", "dropout", "layers", "opt", "batch"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("loguniform(0, 1)", "-P x=loguniform(0, 1): loguniform(a, b) needs 0 < a"),
        ("uniform(1, 1)", "-P x=uniform(1, 1): the lower bound must be below the upper one"),
        ("uniform(a, 1)", "-P x=uniform(a, 1): expected uniform(a, b) with two numbers"),
        ("int(1.5, 4)", "-P x=int(1.5, 4): int(a, b) takes two integers"),
        ("int(1, inf)", "-P x=int(1, inf): expected int(a, b) with two numbers"),
        ("choice()", "-P x=choice(): choice() needs values, like choice(a,b)"),
        ("choice(a,,b)", "-P x=choice(a,,b): choice() needs values, like choice(a,b)"),
    ],
)
def test_a_malformed_space_is_one_line(tmp_path: Path, spec: str, message: str) -> None:
    with pytest.raises(ParameterError) as raised:
        parse_dimension("x", spec, tmp_path)
    assert raised.value.lines() == [message]


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            "layers=uniform(1,4)",
            "-P layers=uniform(1,4): parameter 'layers' is int; a float range does not fit (use int(a, b))",
        ),
        (
            "layers=choice(1,2.5)",
            "-P layers=choice(1,2.5): parameter 'layers' is int: '2.5' is not an integer",
        ),
        (
            "lr=choice(0.1,fast)",
            "-P lr=choice(0.1,fast): parameter 'lr' is float: 'fast' is not a number",
        ),
        (
            "shuffle=int(0,1)",
            "-P shuffle=int(0,1): parameter 'shuffle' is bool; an int range does not fit (list the values, like choice(a,b))",
        ),
        (
            "shuffle=choice(true,maybe)",
            "-P shuffle=choice(true,maybe): parameter 'shuffle' is bool: 'maybe' is not a boolean (use true/false, yes/no or 1/0)",
        ),
        (
            "data=uniform(0,1)",
            "-P data=uniform(0,1): parameter 'data' is path; a float range does not fit (list the values, like choice(a,b))",
        ),
    ],
)
def test_a_space_that_does_not_fit_the_declared_type(
    tmp_path: Path, item: str, message: str
) -> None:
    with pytest.raises(ParameterError) as raised:
        check_space(parse_space([item], tmp_path), ENTRY, tmp_path)
    assert raised.value.lines() == [message]


def test_spaces_that_fit_and_every_misfit_reported_at_once(tmp_path: Path) -> None:
    fits = ["lr=int(1,3)", "layers=int(1,4)", "opt=uniform(0,1)", "extra=loguniform(1,2)",
            "shuffle=choice(yes,no)", "data=choice(a.csv,b.csv)"]  # fmt: skip
    check_space(parse_space(fits, tmp_path), ENTRY, tmp_path)
    with pytest.raises(ParameterError) as raised:
        check_space(
            parse_space(["layers=uniform(1,2)", "lr=choice(x,y)"], tmp_path), ENTRY, tmp_path
        )
    assert [line.split(":")[0] for line in raised.value.lines()] == [
        "-P layers=uniform(1,2)", "-P lr=choice(x,y)",
    ]  # fmt: skip


@given(
    low=st.floats(-1e6, 1e6, allow_nan=False),
    width=st.floats(1e-6, 1e6, allow_nan=False),
    fraction=st.floats(0, 1),
)
def test_a_sampled_float_goes_to_the_command_and_back_unchanged(
    low: float, width: float, fraction: float
) -> None:
    high = low + width
    dimension = parse_dimension("x", f"uniform({low!r}, {high!r})", Path("."))
    value = min(high, low + fraction * width)
    text = format_value(dimension, value)
    assert float(text) == value
    assert dimension.contains(text)
    assert dimension.sampler_value(text) == value


def test_an_enqueued_point_must_lie_in_the_space(tmp_path: Path) -> None:
    space = parse_space(["lr=loguniform(1e-4,1e-1)", "layers=int(1,4)", "opt=adam"], tmp_path)
    assert parse_point("lr=0.01, layers=2", space, "--enqueue") == {"lr": "0.01", "layers": "2"}
    for text, message in [
        ("lr=0.5", "--enqueue 'lr=0.5': lr=0.5 is outside loguniform(1e-4,1e-1)"),
        ("layers=2.5", "--enqueue 'layers=2.5': layers=2.5 is outside int(1,4)"),
        (
            "opt=sgd",
            "--enqueue 'opt=sgd': opt is not searched (the searched parameters: lr, layers)",
        ),
        ("lr", "--enqueue 'lr': expected NAME=VALUE,NAME=VALUE"),
    ]:
        with pytest.raises(ParameterError) as raised:
            parse_point(text, space, "--enqueue")
        assert raised.value.lines() == [message]
