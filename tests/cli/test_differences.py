"""`runs compare` cells: two values that differ never look the same."""

from __future__ import annotations

import pytest

from mlrun_cli.cli.differences import WIDTH, difference_cells


def test_short_values_are_shown_whole() -> None:
    assert difference_cells("0.1", None) == ("0.1", "-")


@pytest.mark.parametrize("at", [0, 30, 59, 60, 61, 150, 299])
def test_long_values_are_shown_around_their_first_difference(at: int) -> None:
    left = "x" * 300
    right = left[:at] + "Y" + left[at + 1 :]
    a, b = difference_cells(left, right)
    assert a != b
    assert len(a) <= WIDTH and len(b) <= WIDTH
    assert "Y" in b


def test_a_longer_value_with_the_same_start_shows_its_end() -> None:
    base = "python train.py --flag " * 4
    a, b = difference_cells(base, base + "--extra")
    assert a != b and "--extra" in b


def test_invisible_differences_are_escaped() -> None:
    assert difference_cells("a b", "a\nb") == ("'a b'", "'a\\nb'")
    assert difference_cells("v", "v ") == ("'v'", "'v '")
