"""MLflow's run search language: `metrics.acc > 0.9 and params.lr = '0.1'`, and order-by.

The semantics are MLflow's (its file store's in-memory search): clauses joined by AND only;
metrics compare as numbers; params and tags as quoted strings with = != LIKE ILIKE and
IS [NOT] NULL; attributes (status, run_name, run_id, user_id, artifact_uri, start_time,
end_time, with MLflow's aliases) by type; `run_id IN ('a', 'b')`. A run without the key never
matches a comparison. The parser is our own, so that an error can point at the bad token.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from mlrun_cli.errors import UsageError
from mlrun_cli.tracking.entities import SearchableRun

METRIC, PARAM, TAG, ATTRIBUTE = "metric", "param", "tag", "attribute"
_ENTITY_ALIASES = {
    "metric": METRIC, "metrics": METRIC,
    "param": PARAM, "params": PARAM, "parameter": PARAM, "parameters": PARAM,
    "tag": TAG, "tags": TAG,
    "attribute": ATTRIBUTE, "attributes": ATTRIBUTE, "attr": ATTRIBUTE, "run": ATTRIBUTE,
}  # fmt: skip
_ATTRIBUTE_ALIASES = {"created": "start_time", "Created": "start_time", "run name": "run_name",
                      "Run name": "run_name", "Run Name": "run_name"}  # fmt: skip
NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time"})
STRING_ATTRIBUTES = frozenset({"artifact_uri", "run_id", "run_name", "status", "user_id"})
_NUMERIC_OPS = frozenset({">", ">=", "=", "!=", "<", "<="})
_STRING_OPS = frozenset({"=", "!=", "LIKE", "ILIKE"})
_NULL_OPS = frozenset({"IS NULL", "IS NOT NULL"})
_LIST_OPS = frozenset({"IN", "NOT IN"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<string>'[^']*(?:''[^']*)*')
  | (?P<number>-?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<op>>=|<=|!=|<>|=|>|<)
  | (?P<paren>[(),])
  | (?P<word>(?:[A-Za-z_][\w]*|`[^`]*`|"[^"]*")(?:\.(?:[\w]+|`[^`]*`|"[^"]*"))*)
    """,
    re.VERBOSE,
)


class SearchError(UsageError):
    """A filter or order-by that does not parse; the message points at the bad token."""


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    column: int  # 1-based, for error messages


@dataclass(frozen=True)
class Clause:
    entity: str
    key: str
    comparator: str
    value: Any  # float for metrics, int/float for numeric attributes, str, tuple, or None


def _tokens(text: str, what: str) -> list[_Token]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise SearchError(f"{what}: unexpected {text[position]!r} at column {position + 1}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(_Token(kind, match.group(), position + 1))
        position = match.end()
    return tokens


def parse_filter(text: str | None) -> list[Clause]:
    """Clauses of a filter string; an empty filter matches every run."""
    if not text or not text.strip():
        return []
    tokens = _tokens(text, "--filter")
    clauses, index = [], 0
    while True:
        clause, index = _clause(tokens, index, text)
        clauses.append(clause)
        if index == len(tokens):
            return clauses
        token = tokens[index]
        if token.kind != "word" or token.text.upper() != "AND":
            raise SearchError(
                f"--filter: expected AND at column {token.column}, found {token.text!r} "
                "(clauses can only be joined with AND)"
            )
        index += 1
        if index == len(tokens):
            raise SearchError(f"--filter: a clause must follow AND at column {token.column}")


def _clause(tokens: list[_Token], index: int, text: str) -> tuple[Clause, int]:
    if index >= len(tokens) or tokens[index].kind != "word":
        where = tokens[index] if index < len(tokens) else None
        found = f"found {where.text!r} at column {where.column}" if where else "found the end"
        raise SearchError(f"--filter: expected a key like metrics.acc, {found}")
    entity, key = identifier(tokens[index].text, tokens[index].column, "--filter")
    comparator, index = _comparator(tokens, index + 1)
    _check_comparator(entity, key, comparator, tokens[index - 1])
    if comparator in _NULL_OPS:
        return Clause(entity, key, comparator, None), index
    if index >= len(tokens):
        raise SearchError(f"--filter: a value must follow {comparator} at the end")
    value, index = _value(entity, key, comparator, tokens, index)
    return Clause(entity, key, comparator, value), index


def identifier(text: str, column: int, what: str) -> tuple[str, str]:
    """`metrics.acc` -> (metric, acc); a bare name is an attribute, as in MLflow."""
    head, dot, rest = text.partition(".")
    if not dot:
        entity, key = ATTRIBUTE, _unquote_key(head)
    else:
        entity = _ENTITY_ALIASES.get(_unquote_key(head), "")
        key = _unquote_key(rest)
        if not entity:
            raise SearchError(
                f"{what}: unknown entity {head!r} at column {column} "
                "(use metrics., params., tags. or attributes.)"
            )
    if entity == ATTRIBUTE:
        key = _ATTRIBUTE_ALIASES.get(key, key)
        if key not in NUMERIC_ATTRIBUTES | STRING_ATTRIBUTES:
            valid = ", ".join(sorted(NUMERIC_ATTRIBUTES | STRING_ATTRIBUTES))
            raise SearchError(f"{what}: unknown attribute {key!r} at column {column} ({valid})")
    return entity, key


def _unquote_key(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "`\"'":
        return text[1:-1]
    return text


def _comparator(tokens: list[_Token], index: int) -> tuple[str, int]:
    if index >= len(tokens):
        raise SearchError("--filter: a comparison is missing at the end")
    token = tokens[index]
    if token.kind == "op":
        return ("!=" if token.text == "<>" else token.text), index + 1
    words = [t.text.upper() for t in tokens[index : index + 3] if t.kind == "word"]
    for phrase in ("IS NOT NULL", "IS NULL", "NOT IN", "IN", "LIKE", "ILIKE"):
        length = len(phrase.split())
        if words[:length] == phrase.split():
            return phrase, index + length
    raise SearchError(
        f"--filter: expected a comparison at column {token.column}, found {token.text!r}"
    )


def _check_comparator(entity: str, key: str, comparator: str, token: _Token) -> None:
    allowed = {
        METRIC: _NUMERIC_OPS,
        PARAM: _STRING_OPS | _NULL_OPS,
        TAG: _STRING_OPS | _NULL_OPS,
        ATTRIBUTE: _NUMERIC_OPS if key in NUMERIC_ATTRIBUTES else _STRING_OPS | _LIST_OPS,
    }[entity]
    if comparator not in allowed:
        raise SearchError(
            f"--filter: {comparator} cannot compare {entity} {key!r} (column {token.column}); "
            f"use one of {', '.join(sorted(allowed))}"
        )
    if comparator in _LIST_OPS and key != "run_id":
        raise SearchError(
            f"--filter: only run_id can be compared with a list (column {token.column})"
        )


def _value(
    entity: str, key: str, comparator: str, tokens: list[_Token], index: int
) -> tuple[Any, int]:
    token = tokens[index]
    numeric = entity == METRIC or (entity == ATTRIBUTE and key in NUMERIC_ATTRIBUTES)
    if comparator in _LIST_OPS:
        return _list(tokens, index)
    if numeric:
        if token.kind != "number":
            raise SearchError(
                f"--filter: expected a number at column {token.column}, found {token.text!r}"
            )
        if entity == METRIC:
            return float(token.text), index + 1
        is_int = re.fullmatch(r"-?\d+", token.text) is not None
        return (int(token.text) if is_int else float(token.text)), index + 1
    if token.kind == "string" or (token.kind == "word" and token.text.startswith('"')):
        return token.text[1:-1], index + 1
    raise SearchError(
        f"--filter: expected a quoted string at column {token.column}, found {token.text!r} "
        "(write 'value')"
    )


def _list(tokens: list[_Token], index: int) -> tuple[tuple[str, ...], int]:
    if tokens[index].text != "(":
        raise SearchError(f"--filter: expected ( at column {tokens[index].column}")
    values: list[str] = []
    index += 1
    while index < len(tokens):
        token = tokens[index]
        if token.kind != "string":
            raise SearchError(f"--filter: expected a quoted string at column {token.column}")
        values.append(token.text[1:-1])
        separator = tokens[index + 1] if index + 1 < len(tokens) else None
        if separator is None:
            break
        if separator.text == ")":
            return tuple(values), index + 2
        if separator.text != ",":
            raise SearchError(f"--filter: expected , or ) at column {separator.column}")
        index += 2
    raise SearchError("--filter: the list is not closed with )")


def _like(pattern: str, flags: int = 0) -> re.Pattern[str]:
    regex = re.escape(pattern).replace("%", ".*").replace("_", ".")
    if not pattern.startswith("%"):
        regex = "^" + regex
    if not pattern.endswith("%"):
        regex += "$"
    return re.compile(regex, flags)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "LIKE": lambda a, b: _like(b).match(a) is not None,
    "ILIKE": lambda a, b: _like(b, re.IGNORECASE).match(a) is not None,
    "IN": lambda a, b: a in b,
    "NOT IN": lambda a, b: a not in b,
}


def matches(run: SearchableRun, clauses: Sequence[Clause]) -> bool:
    return all(_matches(run, clause) for clause in clauses)


def _matches(run: SearchableRun, clause: Clause) -> bool:
    lhs = _lookup(run, clause.entity, clause.key)
    if clause.comparator == "IS NULL":
        return lhs is None
    if clause.comparator == "IS NOT NULL":
        return lhs is not None
    if lhs is None:
        return False
    return _COMPARE[clause.comparator](lhs, clause.value)


def _lookup(run: SearchableRun, entity: str, key: str) -> Any:
    if entity == METRIC:
        return run.metric(key)
    if entity == PARAM:
        return run.param(key)
    if entity == TAG:
        return run.tag(key)
    return run.attribute(key)


@dataclass(frozen=True)
class OrderBy:
    entity: str
    key: str
    ascending: bool


def parse_order_by(text: str) -> OrderBy:
    """`metrics.acc DESC`, `params.lr`, `start_time asc` (ASC is the default)."""
    parts = text.strip().rsplit(None, 1)
    ascending = True
    if len(parts) == 2 and parts[1].lower() in ("asc", "desc"):
        ascending = parts[1].lower() == "asc"
        text = parts[0]
    tokens = _tokens(text.strip(), "--order-by")
    if len(tokens) != 1 or tokens[0].kind != "word":
        raise SearchError(f"--order-by: expected a key and an optional ASC/DESC, got {text!r}")
    entity, key = identifier(tokens[0].text, tokens[0].column, "--order-by")
    return OrderBy(entity, key, ascending)


def sort_runs(runs: Iterable[Any], orders: Sequence[OrderBy]) -> list[Any]:
    """Newest first (then by run id), then each ORDER BY from the last to the first: a stable
    sort per key, with missing and NaN values always at the end, as MLflow sorts."""
    ordered = sorted(runs, key=lambda r: (-r.attribute("start_time"), r.attribute("run_id")))
    for order in reversed(orders):
        ordered = sorted(ordered, key=partial(_sort_key, order=order), reverse=not order.ascending)
    return ordered


def _sort_key(run: SearchableRun, *, order: OrderBy) -> tuple[bool, Any]:
    value = _lookup(run, order.entity, order.key)
    missing = value is None
    nan = isinstance(value, float) and math.isnan(value)
    fill = (1 if order.ascending else -1) * math.inf
    if missing:
        value = fill
    elif nan:
        value = -fill
    flag = missing or nan
    return (flag, value) if order.ascending else (not flag, value)


def search_locally(
    runs: Iterable[Any], filter_string: str | None, order_by: Sequence[str], max_results: int
) -> list[Any]:
    """MLflow's search evaluated here, over runs read from the file store."""
    clauses = parse_filter(filter_string)
    orders = [parse_order_by(text) for text in order_by]
    return sort_runs([r for r in runs if matches(r, clauses)], orders)[:max_results]
