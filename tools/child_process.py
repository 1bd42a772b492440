"""The process plumbing of a sandbox child: dying with its parent, closing what it inherited, a user,
network and process-id namespace of its own, process 1 of that namespace, and ending as the process it
waited for. :mod:`tools.sandbox_child` calls these in order before any tool code runs.
"""

from __future__ import annotations

import ctypes
import os
import resource
import select
import signal
from typing import NoReturn

_CLONE_NEWNET, _CLONE_NEWUSER, _CLONE_NEWPID = 0x40000000, 0x10000000, 0x20000000
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """SIGKILL when the process that started this one dies (a server killed, a Ray task cancelled with
    ``force``): the tool's own process dies with this one in turn (``become_init``)."""
    parent = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def close_inherited(keep: int) -> None:
    """Close every descriptor but the standard three and the progress pipe: the network namespace and
    Landlock do not cut what is already open, so an inherited socket or pipe would be a way out."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    os.closerange(3, keep)
    os.closerange(keep + 1, soft if soft > 0 else 1 << 20)  # 1 << 20: the kernel's own most, for "unlimited"
    # That closed the pipe to the server's multiprocessing resource tracker, which unlinks what it is told
    # of; a tool that wants one must start its own, which the sandbox refuses.
    from multiprocessing import resource_tracker

    resource_tracker._resource_tracker._fd = None  # type: ignore[attr-defined]


def unshare_namespaces() -> bool:
    """A user namespace (so no privilege is needed, and root loses its power over other users' files) with
    a network namespace of its own (only a loopback that is down) and a process-id namespace for the
    processes it starts. The ids map to themselves."""
    uid, gid = os.getuid(), os.getgid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET | _CLONE_NEWPID) != 0:
            return False
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w", encoding="ascii") as handle:
                handle.write(text)
    except OSError:
        return False
    return True


def become_init(cpu_seconds: int) -> None:
    """Fork the process that runs the tool as process 1 of the new pid namespace: when it ends, or is
    killed, the kernel kills every process it started, however they hid (a new session, a double fork).
    This process only waits, and ends as the tool's process did, so the caller reads the same exit."""
    alive, holder = os.pipe()  # open here as long as this process lives
    pid = os.fork()
    if pid == 0:
        os.close(holder)
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if select.select([alive], [], [], 0)[0]:  # end of file: this process died before the line above
            os._exit(1)
        os.close(alive)
        # The init of a namespace ignores a signal it has no handler for: end at the CPU limit's warning.
        signal.signal(signal.SIGXCPU, lambda *_: os._exit(128 + signal.SIGXCPU))
        return
    os.close(alive)
    _, status, usage = os.wait4(pid, 0)
    warned = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 128 + signal.SIGXCPU
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    if warned or (killed and usage.ru_utime + usage.ru_stime >= cpu_seconds):  # its CPU limit ended it
        _end_by(signal.SIGXCPU)
    exit_as(status)


def exit_as(status: int) -> NoReturn:
    """End this process as the child whose wait ``status`` this is ended: by the same signal, or code."""
    if os.WIFSIGNALED(status):
        _end_by(os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status))


def _end_by(code: int) -> NoReturn:
    if code not in (signal.SIGKILL, signal.SIGSTOP):  # those two have no handler to reset
        signal.signal(code, signal.SIG_DFL)
    os.kill(os.getpid(), code)
    os._exit(128 + code)  # a signal this process cannot die of
