"""Landlock: file, TCP and IPC limits that the kernel enforces, for the sandbox child, through three syscalls.

A ruleset declares the access rights it handles; every right it handles is denied except beneath the paths
it allows. ``restrict_self`` binds the calling process and every process it starts, for good: native code
(``ctypes``), spawned interpreters and ``exec`` are held exactly as Python code is. Rights come from the
kernel's ABI version: newer ones (truncate, TCP bind/connect from ABI 4, scoping of abstract Unix sockets
and signals from ABI 6) are handled only where the kernel has them, and :class:`Applied` says what was.

A small ``ctypes`` module rather than the ``landlock`` package from PyPI: that binding (a development
release) handles file rights only, from a fixed list, so it can neither cut TCP nor scope signals, nor
adapt its rights to an older kernel. The constants are the kernel's ``uapi/linux/landlock.h``.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same on x86_64 and arm64
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
_PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_MAKE_AND_REMOVE = sum(1 << bit for bit in range(4, 13))  # remove dir/file, make char/dir/reg/sock/fifo/block/sym
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
BIND_TCP, CONNECT_TCP = 1 << 0, 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
#: The rights a rule on a regular file (not a folder) may carry.
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]  # fmt: skip


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@dataclass(frozen=True)
class Policy:
    """What the process may still do: read (and map) beneath ``read``, read the single files ``read_files``,
    read and write the files ``read_write_files``, do anything beneath ``write``. Nothing else, and no TCP."""

    read: tuple[str, ...]
    read_files: tuple[str, ...]
    read_write_files: tuple[str, ...]
    write: tuple[str, ...]


@dataclass(frozen=True)
class Applied:
    """What the kernel enforces now (``abi`` 0: no Landlock at all)."""

    abi: int
    tcp: bool = False
    scoped: bool = False

    def describe(self) -> str:
        if not self.abi:
            return "landlock: unavailable"
        extras = [name for name, on in (("tcp", self.tcp), ("signals+abstract sockets", self.scoped)) if on]
        return f"landlock ABI {self.abi}: files" + "".join(f", {e}" for e in extras)


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when the kernel has none or it is disabled."""
    try:
        version = _syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except OSError:
        return 0
    return max(int(version), 0)


def restrict(policy: Policy) -> Applied:
    """Bind this process (and all it starts) to ``policy``; returns what is enforced. Raises ``OSError``
    when the kernel has Landlock but refuses the ruleset: a half-applied sandbox must not run a tool."""
    abi = abi_version()
    if not abi:
        return Applied(0)
    attr = _RulesetAttr(_fs_rights(abi), BIND_TCP | CONNECT_TCP if abi >= 4 else 0,
                        SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0)  # fmt: skip
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = int(_syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0)))
    try:
        handled = attr.handled_access_fs
        for path in policy.write:
            _allow(ruleset, path, handled)
        for path in policy.read:
            _allow(ruleset, path, EXECUTE | READ_FILE | READ_DIR)
        for path in policy.read_files:
            _allow(ruleset, path, READ_FILE)
        for path in policy.read_write_files:
            _allow(ruleset, path, READ_FILE | WRITE_FILE | (TRUNCATE if abi >= 3 else 0))
        _syscall_libc("prctl", ctypes.c_int(_PR_SET_NO_NEW_PRIVS), ctypes.c_ulong(1), ctypes.c_ulong(0),
                      ctypes.c_ulong(0), ctypes.c_ulong(0))  # fmt: skip
        _syscall(_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))
    finally:
        os.close(ruleset)
    return Applied(abi, tcp=abi >= 4, scoped=abi >= 6)


def _fs_rights(abi: int) -> int:
    rights = EXECUTE | WRITE_FILE | READ_FILE | READ_DIR | _MAKE_AND_REMOVE
    return rights | (REFER if abi >= 2 else 0) | (TRUNCATE if abi >= 3 else 0) | (IOCTL_DEV if abi >= 5 else 0)


def _allow(ruleset: int, path: str, rights: int) -> None:
    """A rule for ``path`` (a folder: everything beneath it; a file: that file). Missing paths are skipped."""
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not os.path.isdir(path):
            rights &= _FILE_RIGHTS
        rule = _PathBeneathAttr(rights, fd)
        _syscall(_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(rule),
                 ctypes.c_uint32(0))  # fmt: skip
    finally:
        os.close(fd)


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _syscall(number: int, *args: object) -> int:
    result = _libc.syscall(ctypes.c_long(number), *args)
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"landlock syscall {number}: {os.strerror(errno)}")
    return int(result)


def _syscall_libc(name: str, *args: object) -> None:
    if getattr(_libc, name)(*args) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{name}: {os.strerror(errno)}")
