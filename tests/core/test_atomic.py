"""The store never writes a file in place: concurrent replacements of one file all succeed."""

from __future__ import annotations

import threading
from pathlib import Path

from mlrun_cli.core.atomic import write_atomic


def test_threads_replacing_the_same_file_never_fail_and_leave_one_whole_value(
    tmp_path: Path,
) -> None:
    target = tmp_path / "tags" / "shared"
    start = threading.Barrier(16)
    errors: list[BaseException] = []

    def replace(n: int) -> None:
        start.wait()
        try:
            for i in range(20):
                write_atomic(target, f"writer {n} value {i}" * 50, durable=n % 2 == 0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=replace, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    value = target.read_text()
    assert value.endswith("value 19") and value == value[: len(value) // 50] * 50
    assert sorted(p.name for p in target.parent.iterdir()) == ["shared"]
