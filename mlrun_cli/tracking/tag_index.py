"""A derived index of the runs that carry a tag of one prefix, so that a question asked before
every run ("which runs of this project recorded outputs?") reads those runs only, not a
listing of every run folder (10,000 runs made a noop run take twice as long).

    mlruns/<experiment>/.mlrun-tagged-<prefix>     one run id per line

Only mlrun writes the indexed tags (`mlrun.output.*`). A run that gets one adds its id with one
O_APPEND write after the tag exists. The run folders stay the source of truth: an id whose run
is gone, deleted or no longer tagged is skipped by the reader, and a missing file is rebuilt
from the folders once. An id the file misses (a writer that died between the tag and its line,
an older mlrun) costs a rerun where a reuse was possible, never a wrong reuse: the earlier
outputs only ever make the code digest leave files out.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from mlrun_cli.tracking.tags import OUTPUT_TAG_PREFIX

INDEXED_PREFIXES = (OUTPUT_TAG_PREFIX,)
_HEX = frozenset("0123456789abcdef")


def index_path(experiment_dir: Path, prefix: str) -> Path:
    return experiment_dir / f".mlrun-tagged-{prefix}"


def record_tagged(experiment_dir: Path, run_id: str, tags: Iterable[str]) -> None:
    """Add the run to the index of each indexed prefix its new tags start with; never fails
    the write of the tags (a missed line only costs a reuse)."""
    for prefix in INDEXED_PREFIXES:
        if not any(tag.startswith(prefix) for tag in tags):
            continue
        with contextlib.suppress(OSError):
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
            descriptor = os.open(index_path(experiment_dir, prefix), flags, 0o644)
            try:
                os.write(descriptor, f"{run_id}\n".encode())
            finally:
                os.close(descriptor)


def tagged_run_ids(
    experiment_dir: Path, prefix: str, scan: Callable[[], Iterable[str]]
) -> list[str]:
    """The ids the index lists (each once, possibly stale); `scan()` lists the tagged runs
    from the folders when there is no index yet, and its answer becomes the index."""
    path = index_path(experiment_dir, prefix)
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        found = list(scan())
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with contextlib.suppress(OSError):
            temporary.write_text("".join(f"{run_id}\n" for run_id in found), encoding="ascii")
            os.replace(temporary, path)
        return found
    except OSError:
        return list(scan())
    ids = (line for line in text.split("\n") if len(line) == 32 and set(line) <= _HEX)
    return list(dict.fromkeys(ids))  # a torn or foreign line is no run of this store
