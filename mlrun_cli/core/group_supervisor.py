"""The leader of an entry point's process group: it ends the group when mlrun dies.

mlrun (`processes.spawn_group`) starts this file with its own interpreter
(`python -I -S group_supervisor.py FD GRACE COMMAND...`) as the leader of a new session, and
keeps the write end of a pipe whose read end is FD. The supervisor starts COMMAND (the entry point)
in its session, waits for it and exits the way it exited (same code, same signal), so the
runner sees the entry point's own outcome. If the pipe reaches end-of-file while the entry
point runs, mlrun is gone, however it died (`kill -9` included, since the kernel closes a dead
process's descriptors): the supervisor sends SIGTERM to the whole group, and SIGKILL after
GRACE seconds, itself included. An entry point thus never outlives a killed runner.

Why this and not `PR_SET_PDEATHSIG` in a tiny exec wrapper: the death signal fires when the
parent *thread* that forked the child ends (a sweep or an embedding host launches from worker
threads that may end first), it reaches only the direct child (`bash -c 'a; b'` leaves `a`
and `b` running), and it exists only on Linux. A pipe's end-of-file fires on the death of the
whole process, on every POSIX system, and the supervisor ends the whole group. The cost is one
small interpreter per run (about 20 ms; it imports only the standard library).

The supervisor records the stop signals mlrun forwards to the group and leaves them to the
entry point, which starts with every signal at its default and decides. When the entry point
has ended after a stop, the supervisor ends what is left of the group (a `sleep 300 &` that
bash started with SIGINT ignored): SIGTERM, and SIGKILL after the grace period. Whenever it
ends the group it returns as soon as no other live process is left in it (read from /proc;
without /proc it waits the whole grace period).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Signals the entry point gets at their defaults: the stop signals caught here, and those
# Python ignores in every interpreter (a pipeline like `yes | head` needs SIGPIPE).
_DEFAULTED = (*STOP_SIGNALS, signal.SIGPIPE, signal.SIGXFSZ)
_POLL_SECONDS = 0.02


class _State:
    """Plain attributes, set by a signal handler and by the watcher thread."""

    stopped = False  # a stop signal reached the group
    runner_gone = False  # mlrun died while the entry point ran


def main(args: list[str]) -> None:
    watch_fd, grace, argv = int(args[0]), float(args[1]), args[2:]
    os.set_inheritable(watch_fd, False)  # the entry point does not hold mlrun's lifeline
    for signum in STOP_SIGNALS:
        signal.signal(signum, _record_stop)
    try:
        pid = os.posix_spawnp(argv[0], argv, os.environ, setsigdef=_DEFAULTED)
    except OSError as exc:
        sys.stderr.write(f"mlrun: cannot start {argv[0]!r}: {exc.strerror}\n")
        os._exit(127)
    watcher = threading.Thread(
        target=_end_group_when_runner_dies, args=(watch_fd, grace), daemon=True
    )
    watcher.start()
    _, status = os.waitpid(pid, 0)
    if _State.runner_gone:
        watcher.join()  # it ends the rest of the group
    elif _State.stopped:
        end_group(grace)
    _exit_like(status)


def _record_stop(_signum: int, _frame: object) -> None:
    _State.stopped = True


def _end_group_when_runner_dies(watch_fd: int, grace: float) -> None:
    while os.read(watch_fd, 512):
        pass
    _State.runner_gone = True
    end_group(grace)


def end_group(grace: float) -> None:
    """SIGTERM to the group; SIGKILL (this process included) if others outlive `grace`."""
    os.killpg(0, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if _others_in_group() is False:
            return
        time.sleep(_POLL_SECONDS)
    os.killpg(0, signal.SIGKILL)


def _others_in_group() -> bool | None:
    """Whether a live process other than this one is in its group; None without /proc."""
    me, group = os.getpid(), os.getpgid(0)
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if fields[0] != b"Z" and int(fields[2]) == group:
            return True
    return False


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
