"""What every backend shares: secret masking in a stream."""

from __future__ import annotations

import pytest

from mlrun_cli.backends.streams import Redactor


@pytest.mark.parametrize("split", range(1, 12))
def test_a_secret_split_across_chunks_is_still_masked(split: int) -> None:
    redactor = Redactor(("s3cr3t-val",))
    text = b"before s3cr3t-val after"
    cut = 7 + split
    out = redactor.feed(text[:cut]) + redactor.feed(text[cut:]) + redactor.flush()
    assert out == b"before *** after"
