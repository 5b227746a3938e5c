"""Two values side by side in a table cell each, without ever hiding how they differ.

A cell holds at most WIDTH characters. Long values are shown around their first difference
(with the offset, and `…` where text is cut), so two values that differ never look the same;
a difference only in invisible characters (a newline, a trailing space) is shown escaped.
"""

from __future__ import annotations

WIDTH = 60
_BEFORE = 12  # characters of common text kept before the first difference


def difference_cells(left: str | None, right: str | None) -> tuple[str, str]:
    a, b = _visible(left), _visible(right)
    if a.strip() == b.strip() and left != right:  # a table cell hides edge spaces
        a, b = _escaped(left), _escaped(right)
    if len(a) <= WIDTH and len(b) <= WIDTH:
        return a, b
    start = max(0, _common_prefix_length(a, b) - _BEFORE)
    return _window(a, start), _window(b, start)


def _common_prefix_length(a: str, b: str) -> int:
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return index
    return min(len(a), len(b))


def _visible(value: str | None) -> str:
    return "-" if value is None else value.replace("\n", " ")


def _escaped(value: str | None) -> str:
    return "-" if value is None else repr(value)


def _window(text: str, start: int) -> str:
    """`text` from `start`, cut to WIDTH with the offset said when it does not start at 0."""
    prefix = f"[@{start}]…" if start else ""
    room = WIDTH - len(prefix)
    shown = text[start:]
    if len(shown) > room:
        shown = shown[: room - 1] + "…"
    return prefix + shown
