"""YAML loading that remembers where every key and item stands in the file.

Errors must name the line of the offending key, so the document is composed into PyYAML nodes
(which carry marks) and constructed from those same nodes with `safe_load`'s YAML 1.1 rules,
exactly as MLflow reads an MLproject.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from mlrun_cli.errors import Problem, SpecError
from mlrun_cli.project.located_doc import LocatedDoc, Path_

__all__ = ["LocatedDoc", "Path_", "load_located"]


def load_located(text: str, file_label: str) -> LocatedDoc:
    """Parse `text`; a syntax error becomes a SpecError naming the file and line."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return LocatedDoc(data=None)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise SpecError([_syntax_problem(exc, text, file_label)]) from exc
    except yaml.YAMLError as exc:
        raise SpecError([Problem(file_label, None, "", f"YAML error: {exc}")]) from exc
    finally:
        loader.dispose()
    lines = {(): node.start_mark.line + 1}
    lines.update(_node_lines(node, ()))
    return LocatedDoc(data=data, lines=lines)


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
