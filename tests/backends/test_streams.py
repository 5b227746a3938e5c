"""What every backend shares: secret masking in a stream, stop signals taken safely."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlrun_cli.backends.streams import Redactor, StopRequest


@pytest.mark.parametrize("split", range(1, 12))
def test_a_secret_split_across_chunks_is_still_masked(split: int) -> None:
    redactor = Redactor(("s3cr3t-val",))
    text = b"before s3cr3t-val after"
    cut = 7 + split
    out = redactor.feed(text[:cut]) + redactor.feed(text[cut:]) + redactor.flush()
    assert out == b"before *** after"


def test_output_that_cannot_start_a_secret_passes_at_once() -> None:
    """The last line shows live (and reaches the log before a kill -9) with secrets set."""
    redactor = Redactor(("s3cr3t-val", "tok-123"))
    assert redactor.feed(b"epoch 3: loss 0.25\n") == b"epoch 3: loss 0.25\n"
    assert redactor.feed(b"token is s3cr") == b"token is "  # may go on as the secret
    assert redactor.feed(b"ew driver\n") == b"s3crew driver\n"


@given(
    st.lists(st.sampled_from([b"s3cr3t", b"s3c", b"tok", b"tok-1", b"x", b"\n", b"s", b"***"])),
    st.lists(st.integers(min_value=0, max_value=40)),
)
def test_any_split_of_any_output_is_masked_as_the_whole_would_be(
    pieces: list[bytes], cuts: list[int]
) -> None:
    secrets = ("s3cr3t", "tok-1")
    text = b"".join(pieces)
    whole = Redactor(secrets)
    expected = whole.feed(text) + whole.flush()
    redactor = Redactor(secrets)
    out, start = b"", 0
    for cut in sorted({min(c, len(text)) for c in cuts}):
        out += redactor.feed(text[start:cut])
        start = cut
    out += redactor.feed(text[start:]) + redactor.flush()
    assert out == expected
    assert b"s3cr3t" not in out and b"tok-1" not in out


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
