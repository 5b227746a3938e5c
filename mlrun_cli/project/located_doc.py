"""A parsed document plus the line of each key path in it, without importing a YAML parser.

The runner's fast path rebuilds one from a cached JSON copy (see `checked_docs`), so this
class lives apart from the PyYAML code that builds it the first time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Path_ = tuple[Any, ...]


@dataclass(frozen=True)
class LocatedDoc:
    """A parsed YAML document plus the 1-based line of each key path inside it."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int:
        """The line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1
