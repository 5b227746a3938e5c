"""The leader of an entry point's process group: it ends the group when mlrun dies.

mlrun (`processes.spawn_group`) starts this file with its own interpreter
(`python -I -S group_supervisor.py FD COMMAND...`) as the leader of a new session, and keeps
the write end of a pipe whose read end is FD. The supervisor starts COMMAND (the entry point)
in its session, waits for it and exits the way it exited (same code, same signal), so the
runner sees the entry point's own outcome. If the pipe reaches end-of-file while the entry
point runs, mlrun is gone, however it died (`kill -9` included, since the kernel closes a dead
process's descriptors): the supervisor sends SIGTERM to the whole group, and SIGKILL after a
grace period, itself included. An entry point thus never outlives a killed runner.

Why this and not `PR_SET_PDEATHSIG` in a tiny exec wrapper: the death signal fires when the
parent *thread* that forked the child ends (a sweep or an embedding host launches from worker
threads that may end first), it reaches only the direct child (`bash -c 'a; b'` leaves `a`
and `b` running), and it exists only on Linux. A pipe's end-of-file fires on the death of the
whole process, on every POSIX system, and the supervisor ends the whole group. The cost is one
small interpreter per run (about 20 ms; it imports only the standard library).

The supervisor ignores the stop signals mlrun forwards to the group (the entry point gets
them too, and decides); the entry point starts with every signal at its default.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

GRACE_SECONDS = 5.0
# Signals the entry point gets at their defaults: the stop signals ignored here, and those
# Python ignores in every interpreter (a pipeline like `yes | head` needs SIGPIPE).
_DEFAULTED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE, signal.SIGXFSZ)


def main(args: list[str]) -> None:
    watch_fd, argv = int(args[0]), args[1:]
    os.set_inheritable(watch_fd, False)  # the entry point does not hold mlrun's lifeline
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ, setsigdef=_DEFAULTED)
    except OSError as exc:
        sys.stderr.write(f"mlrun: cannot start {argv[0]!r}: {exc.strerror}\n")
        os._exit(127)
    watcher = threading.Thread(target=_end_group_when_runner_dies, args=(watch_fd,), daemon=True)
    watcher.start()
    _, status = os.waitpid(pid, 0)
    if _runner_gone.is_set():
        watcher.join()  # it ends the rest of the group, this process included
    _exit_like(status)


_runner_gone = threading.Event()


def _end_group_when_runner_dies(watch_fd: int) -> None:
    while os.read(watch_fd, 512):
        pass
    _runner_gone.set()
    os.killpg(0, signal.SIGTERM)
    threading.Event().wait(GRACE_SECONDS)
    os.killpg(0, signal.SIGKILL)


def _exit_like(status: int) -> None:
    """Exit with the entry point's code, or die by the signal that ended it."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        if signum not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        os._exit(128 + signum)  # a signal whose default is to go on
    os._exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main(sys.argv[1:])
