"""The host a run ran on, described without what the standard library pays for it.

`socket.gethostname()` costs importing socket, and `platform.platform()` starts `uname -p` on
Linux; both are read here from `os.uname()` (the same name and kernel facts) and the C library.
"""

from __future__ import annotations

import os
from functools import cache


def host_name() -> str:
    """What `socket.gethostname()` returns."""
    return os.uname().nodename


@cache
def host_description() -> str:
    """Like `platform.platform()`: system, release, machine and C library."""
    uname = os.uname()
    parts = [uname.sysname, uname.release, uname.machine]
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        libc = ""  # not glibc (macOS, musl)
    if libc:
        parts += ["with", libc.replace(" ", "")]
    return "-".join(parts)
