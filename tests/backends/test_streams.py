"""What every backend shares: secret masking in a stream, stop signals taken safely."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from mlrun_cli.backends.streams import Redactor, StopRequest


@pytest.mark.parametrize("split", range(1, 12))
def test_a_secret_split_across_chunks_is_still_masked(split: int) -> None:
    redactor = Redactor(("s3cr3t-val",))
    text = b"before s3cr3t-val after"
    cut = 7 + split
    out = redactor.feed(text[:cut]) + redactor.feed(text[cut:]) + redactor.flush()
    assert out == b"before *** after"


# A wait loop that polls its stop request while a thread of the same process sends it a storm
# of stop signals: the handler runs inside whatever the main thread does, the wait loop's own
# calls included, so a handler that takes a lock (threading.Event.set) deadlocks sooner or later.
STORM = """
import os, signal, sys, threading
from mlrun_cli.backends.streams import StopRequest, handling_signals

stop = StopRequest()
signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
with handling_signals(stop):
    def storm():
        for count in range(int(sys.argv[1])):
            os.kill(os.getpid(), signals[count % 3])
    sender = threading.Thread(target=storm)
    sender.start()
    taken = 0
    while sender.is_alive():
        taken += stop.take(0)
    sender.join()
    taken += stop.take(0)
print(stop.signum in signals, stop.forced, taken > 0)
"""


@pytest.mark.parametrize("signals", [2, 50, 200000])
def test_a_storm_of_stop_signals_never_blocks_the_wait_loop(signals: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", STORM, str(signals)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "True True True\n"


def test_a_stop_request_shared_by_a_later_child_sees_the_signal_at_once() -> None:
    parent = StopRequest()
    parent.handle(signal.SIGTERM, None)
    child = parent.sharing()
    assert child.take(0) and not child.take(0)
    assert (child.signum, child.forced) == (signal.SIGTERM, False)
    parent.handle(signal.SIGINT, None)
    assert child.take(0) and child.forced
