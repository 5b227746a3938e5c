"""YAML loading that remembers where every key and item stands in the file.

Errors must name the line of the offending key, so the document is composed into PyYAML nodes
(which carry marks) and constructed from those same nodes with `safe_load`'s YAML 1.1 rules,
exactly as MLflow reads an MLproject.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.reader import ReaderError

from mlrun_cli.errors import Problem, SpecError
from mlrun_cli.project.located_doc import LocatedDoc, Path_
from mlrun_cli.project.spec_text import not_yaml_problem, read_spec_text

MAX_DEPTH = 50  # an MLproject needs about six levels; deeper is a mistake or an attack
MAX_NODES = 100_000  # values after alias expansion
# A run of opening brackets is refused before parsing: PyYAML's scanner looks ahead over
# every one of them in quadratic time.
_OPENING_RUN = re.compile(rf"(?:[\[{{]\s*){{{MAX_DEPTH + 1}}}")
_MERGE_TAG = "tag:yaml.org,2002:merge"


def read_located(path: Path, label: str) -> LocatedDoc:
    """Read and parse an MLproject or env file, refusing what is not a small text file."""
    return load_located(read_spec_text(path, label), label)


def load_located(text: str, file_label: str) -> LocatedDoc:
    """Parse `text`; a syntax error becomes a SpecError naming the file and line."""
    if _OPENING_RUN.search(text):
        reason = f"nested more than {MAX_DEPTH} levels deep"
        raise SpecError([not_yaml_problem(file_label, reason)])
    try:
        loader = _DepthLimitedLoader(text)
    except ReaderError as exc:
        raise SpecError([not_yaml_problem(file_label, _reader_reason(exc))]) from None
    try:
        node = _compose(loader, text, file_label)
        if node is None:
            return LocatedDoc(data=None)
        problems = shape_problems(node, file_label)
        if problems:
            raise SpecError(problems)
        try:
            data = loader.construct_document(node)
        except yaml.MarkedYAMLError as exc:
            raise SpecError([_syntax_problem(exc, text, file_label)]) from None
        except (yaml.YAMLError, RecursionError, ValueError, OverflowError) as exc:
            raise SpecError([not_yaml_problem(file_label, str(exc).splitlines()[0])]) from None
    finally:
        loader.dispose()
    lines = {(): node.start_mark.line + 1}
    lines.update(_node_lines(node, ()))
    return LocatedDoc(data=data, lines=lines)


class _TooDeepError(Exception):
    pass


class _DepthLimitedLoader(yaml.SafeLoader):
    """Stops composing at MAX_DEPTH: PyYAML's scanner slows down quadratically with the
    nesting of flow collections (3000 `[` take 10 s), and its composer recurses."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH + 1:
                raise _TooDeepError
            node: yaml.Node | None = super().compose_node(parent, index)
            return node
        finally:
            self._depth -= 1


def _compose(loader: yaml.SafeLoader, text: str, file_label: str) -> yaml.Node | None:
    try:
        return loader.get_single_node()
    except (RecursionError, _TooDeepError):
        reason = f"nested more than {MAX_DEPTH} levels deep"
        raise SpecError([not_yaml_problem(file_label, reason)]) from None
    except ReaderError as exc:
        raise SpecError([not_yaml_problem(file_label, _reader_reason(exc))]) from None
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_syntax_problem(exc, text, file_label)]) from None
    except yaml.YAMLError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SpecError([not_yaml_problem(file_label, reason)]) from None


def _reader_reason(exc: ReaderError) -> str:
    character = exc.character
    code = character if isinstance(character, int) else ord(character)
    return f"character #x{code:04x} is not allowed in YAML, at position {exc.position}"


def shape_problems(root: yaml.Node, label: str) -> list[Problem]:
    """What a parsed YAML tree must not be: deeper than MAX_DEPTH, recursive through an
    alias, larger than MAX_NODES once aliases are expanded (a billion laughs), or a mapping
    that repeats a key (PyYAML would silently keep the last one).

    Each distinct node is visited once, without recursion; its expanded size and depth are
    computed from its children's, so a billion laughs costs a few dozen steps."""
    problems: list[Problem] = []
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        children = _children(node)
        if finished:
            on_path.discard(key)
            size[key] = min(MAX_NODES + 1, 1 + sum(size[id(c)] for c in children))
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > MAX_NODES:
                return [
                    not_yaml_problem(
                        label, f"more than {MAX_NODES} values once aliases are expanded"
                    )
                ]
            if depth[key] > MAX_DEPTH + 1:
                return [not_yaml_problem(label, f"nested more than {MAX_DEPTH} levels deep")]
            continue
        if key in size:
            continue
        if key in on_path:
            return [not_yaml_problem(label, "an alias refers to a value that contains it")]
        on_path.add(key)
        if isinstance(node, yaml.MappingNode):
            problems.extend(_duplicate_keys(node, label))
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in size)
    return problems


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _duplicate_keys(node: yaml.MappingNode, label: str) -> Iterator[Problem]:
    first: dict[Any, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
            continue
        try:
            key = _scalar_key(key_node)
            hash(key)
        except (yaml.YAMLError, TypeError, ValueError):
            continue
        line = key_node.start_mark.line + 1
        if key in first:
            message = f"duplicate key (first on line {first[key]}; YAML would keep only the last)"
            shown = str(key) if str(key).isprintable() else repr(key)
            yield Problem(label, line, shown, message)
        else:
            first[key] = line


def _syntax_problem(exc: yaml.MarkedYAMLError, text: str, file_label: str) -> Problem:
    """PyYAML's problem mark can sit past the last line; its context says where it began."""
    last_line = max(1, len(text.splitlines()))
    mark = exc.problem_mark or exc.context_mark
    line = min(mark.line + 1, last_line) if mark is not None else None
    message = f"YAML syntax error: {exc.problem or 'invalid YAML'}"
    if exc.context and exc.context_mark is not None:
        message += f" ({exc.context} started on line {exc.context_mark.line + 1})"
    return Problem(file_label, line, "", message)


def _node_lines(node: yaml.Node, path: Path_) -> Iterator[tuple[Path_, int]]:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = _scalar_key(key_node)
            yield (*path, key), key_node.start_mark.line + 1
            yield from _node_lines(value_node, (*path, key))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield (*path, index), item.start_mark.line + 1
            yield from _node_lines(item, (*path, index))


def _scalar_key(node: yaml.Node) -> Any:
    """The key as safe_load constructs it (`yes:` is True in YAML 1.1), so paths line up."""
    if isinstance(node, yaml.ScalarNode):
        return yaml.constructor.SafeConstructor().construct_object(node)
    return node.start_mark.line
