"""The layers a candidate's child process puts on itself before it runs any candidate code.

Capabilities and (when root) the uid, rlimits, Landlock, a seccomp filter built once in the worker,
an audit hook (a tripwire: code that escapes the gate can remove it, so it is never the only wall)
and restricted builtins. Each returns or raises so that the worker can report what really works.

This module is shipped to the sandbox worker as source text with the other modules the worker
needs (see ``launch.SHIPPED``): inside bubblewrap the project folder is not visible. It imports
only the standard library, numpy, pandas and the sandbox modules shipped before it.
"""

from __future__ import annotations

import errno
import math
import os
import re
import struct
import sys
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_SET_CHILD_SUBREAPER = 36
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
CLONE_THREAD = 0x00010000
TIOCSTI = 0x5412
PR_CAPBSET_DROP = 24
NOBODY = 65534  # the unprivileged uid and gid a child started as root runs as
# ioctl requests a child may make (terminal size and mode queries, non-blocking and close-on-exec
# flags); every other request, FS_IOC_SETFLAGS and TIOCSTI included, is refused by seccomp.
IOCTL_ALLOWED = (0x5401, 0x5413, 0x541B, 0x5421, 0x5450, 0x5451)
SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446

DENIED_SYSCALLS = (
    "execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
    "kcmp", "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "socket", "socketpair", "connect",
    "bind", "listen", "accept", "accept4", "creat", "rename", "renameat", "renameat2", "unlink",
    "unlinkat", "rmdir", "mkdir", "mkdirat", "link", "linkat", "symlink", "symlinkat", "chmod",
    "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat", "truncate",
    "ftruncate", "utime", "utimes", "utimensat", "futimesat", "mknod", "mknodat", "setxattr",
    "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr", "mount", "umount2",
    "pivot_root", "chroot", "swapon", "swapoff", "reboot", "sethostname", "setdomainname",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "bpf",
    "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key", "unshare", "setns",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "fanotify_init", "acct", "quotactl",
    "open_by_handle_at", "name_to_handle_at", "setrlimit", "personality", "syslog", "vhangup",
    "iopl", "ioperm", "modify_ldt", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "shmget", "shmat", "msgget", "semget", "mq_open", "move_mount", "open_tree", "fsopen",
    "fsmount", "fspick", "mount_setattr", "kill", "tkill", "tgkill", "rt_sigqueueinfo",
    "rt_tgsigqueueinfo", "setsid", "setpgid", "setpriority", "sched_setscheduler", "sched_setparam",
    "sched_setaffinity", "sched_setattr", "ioprio_set", "setuid", "setgid", "setreuid", "setregid", "setresuid",
    "setresgid", "setfsuid", "setfsgid", "setgroups", "capset", "migrate_pages", "move_pages",
)
BLOCKED_EVENT_PREFIXES = (
    "socket.", "ctypes.", "shutil.", "subprocess.", "os.exec", "os.spawn", "os.posix_spawn",
    "os.fork", "os.forkpty", "os.kill", "os.killpg", "os.system", "os.remove", "os.rename",
    "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.chflags", "os.lchflags", "os.link",
    "os.symlink", "os.truncate", "os.utime", "os.startfile", "os.setxattr", "os.removexattr",
    "os.add_dll_directory", "os.chdir", "pty.", "sqlite3.", "urllib.", "http.", "ftplib.",
    "smtplib.", "poplib.", "imaplib.", "nntplib.", "telnetlib.", "webbrowser.", "tempfile.",
    "resource.setrlimit", "resource.prlimit", "code.__new__", "pickle.find_class",
    "builtins.input", "builtins.breakpoint", "mmap.__new__", "sys.remote_exec", "syslog.",
    "signal.pthread_kill", "fcntl.ioctl", "winreg.", "msvcrt.",
)
IMPORTABLE_UNDER_CANDIDATE = frozenset({
    "numpy", "pandas", "dateutil", "pytz", "tzdata", "zoneinfo", "datetime", "math", "cmath",
    "decimal", "fractions", "numbers", "copyreg", "warnings", "calendar", "locale", "time", "re",
    "string", "collections", "functools", "itertools", "abc", "enum",
})
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def load_libc() -> Any:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if hasattr(libc, "syscall"):
        libc.syscall.restype = ctypes.c_long
    return libc


def prctl(libc: Any, option: int, value: int = 0) -> int:
    """``prctl`` where the platform has it (Linux); elsewhere nothing happens (-1)."""
    call = getattr(libc, "prctl", None)
    return -1 if call is None else int(call(option, value, 0, 0, 0))


def restricted_builtins(names: list[str]) -> dict[str, Any]:
    """The candidate's builtins: the gate's safe names, and an ``__import__`` limited to the
    numeric stack, which C code (numpy, Cython) looks up in the calling frame's builtins when it
    imports lazily underneath a candidate's lambda."""
    import builtins

    real_import = builtins.__import__

    def guarded_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if level == 0 and name.partition(".")[0] in IMPORTABLE_UNDER_CANDIDATE:
            return real_import(name, globals, locals, fromlist, level)
        raise ImportError(f"import of {name!r} is not allowed in a candidate")

    table = {name: getattr(builtins, name) for name in names if hasattr(builtins, name)}
    table["__import__"] = guarded_import
    return table


IANA_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*")  # "Europe/Paris", "Etc/GMT+5", "UTC"


def confine_time_zones() -> None:
    """dateutil's ``gettz`` reads whatever path it is handed (an absolute one, one climbing out of the
    zoneinfo folders, or the host's local time with no name): a computed time-zone string such as
    ``"dateutil/" + path`` could then tell whether a host file exists by how pandas answers. From here
    on it looks up plain IANA names only and answers every other name as it answers an unknown zone
    (None), in the process and in every child forked from it. ``zoneinfo`` and ``pytz`` refuse such
    keys themselves."""
    import dateutil.tz
    import pandas._libs.tslibs.timezones as pandas_zones

    lookup = dateutil.tz.gettz

    def gettz(name: Any = None) -> Any:
        if not isinstance(name, str) or not IANA_NAME.fullmatch(name):
            return None
        return lookup(name)

    dateutil.tz.gettz = dateutil.tz.tz.gettz = gettz
    pandas_zones.dateutil_gettz = gettz  # pandas' "dateutil/<name>" time zones go through this name


def set_rlimits(timeout: float, address_space: int) -> None:
    """CPU seconds, address space, no files written, few descriptors, no core dumps."""
    import resource

    cpu = int(math.ceil(timeout)) + 1
    for which, soft, hard in ((resource.RLIMIT_CPU, cpu, cpu + 2), (resource.RLIMIT_CORE, 0, 0),
                              (resource.RLIMIT_FSIZE, 0, 0), (resource.RLIMIT_NOFILE, 32, 32),
                              (resource.RLIMIT_AS, address_space, address_space)):
        current = resource.getrlimit(which)[1]
        if current != resource.RLIM_INFINITY:
            soft, hard = min(soft, current), min(hard, current)
        try:
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError):
            if sys.platform.startswith("linux"):
                raise


def vm_size() -> int:
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def drop_privileges(libc: Any, pid_namespace: bool) -> str:
    """No capabilities (bounding set included), no_new_privs, and when root outside a namespace,
    the unprivileged uid/gid ``NOBODY``: the parent's /proc entries, its priority, CPU affinity and
    files are then another user's. Returns "ok" or why not."""
    for cap in range(64):
        prctl(libc, PR_CAPBSET_DROP, cap)
    if os.geteuid() == 0 and not pid_namespace:
        try:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
        except OSError as exc:
            return f"could not switch to uid {NOBODY} ({exc.strerror})"
    if prctl(libc, PR_SET_NO_NEW_PRIVS, 1) != 0:
        return "could not set no_new_privs"
    try:
        with open("/proc/self/status", "rb") as fh:
            caps = {k: v for k, v in (line.split(b":", 1) for line in fh if line.startswith(b"Cap"))}
    except OSError:
        return "ok" if os.geteuid() != 0 else "could not read the capability sets"
    held = [k.decode() for k in (b"CapPrm", b"CapEff", b"CapAmb") if int(caps.get(k, b"0").strip(), 16)]
    return f"capabilities still held ({', '.join(held)})" if held else "ok"


def apply_landlock(libc: Any, roots: list[str]) -> str:
    """Allow reading only the Python installation; deny every write, TCP, and signals outward."""
    import ctypes

    abi = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return f"landlock unsupported by this kernel (errno {ctypes.get_errno()})"
    fs = (1 << 13) - 1
    fs |= (1 << 13) if abi >= 2 else 0
    fs |= (1 << 14) if abi >= 3 else 0
    fs |= (1 << 15) if abi >= 5 else 0
    net = 3 if abi >= 4 else 0
    scoped = 3 if abi >= 6 else 0
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    attr = ctypes.create_string_buffer(struct.pack("<QQQ", fs, net, scoped)[:size], size)
    ruleset = libc.syscall(SYS_LANDLOCK_CREATE_RULESET, attr, ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return f"landlock ruleset refused (errno {ctypes.get_errno()})"
    read_file, read_dir = 1 << 2, 1 << 3
    try:
        for root in roots:
            try:
                pfd = os.open(root, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            access = read_file | read_dir if os.path.isdir(root) else read_file
            rule = ctypes.create_string_buffer(struct.pack("<Qi", access, pfd), 12)
            added = libc.syscall(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(1), rule,
                                 ctypes.c_uint32(0))
            os.close(pfd)
            if added < 0:
                return f"landlock rule refused for {root} (errno {ctypes.get_errno()})"
        if prctl(libc, PR_SET_NO_NEW_PRIVS, 1) != 0:
            return "could not set no_new_privs"
        if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            return f"landlock restrict_self refused (errno {ctypes.get_errno()})"
    finally:
        os.close(ruleset)
    return "ok"


def seccomp_program(sc: Any) -> tuple[Any, Any]:
    """Build the filter once in the worker and compile it to BPF, so a child only has to load it.

    Denied (EPERM): exec, new processes (clone without CLONE_THREAD: threads stay possible),
    sockets, any open for writing, file-system changes, signals (the child may signal nobody),
    ptrace and friends, raising rlimits, namespaces, mounts, keyrings, bpf, io_uring, changing
    priorities, CPU affinity, schedulers, uids, gids or capabilities, and every ioctl outside
    ``IOCTL_ALLOWED``.
    """
    import ctypes

    deny = sc.ERRNO(errno.EPERM)
    flt = sc.SyscallFilter(sc.ALLOW)
    for name in DENIED_SYSCALLS:
        try:
            flt.add_rule(deny, name)
        except OSError:
            pass
    for name in ("clone3", "openat2"):
        try:
            flt.add_rule(sc.ERRNO(errno.ENOSYS), name)
        except OSError:
            pass
    flt.add_rule(deny, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
    bits = [os.O_WRONLY, os.O_RDWR, os.O_CREAT, os.O_TRUNC, os.O_APPEND]
    tmpfile = getattr(os, "O_TMPFILE", 0) & ~getattr(os, "O_DIRECTORY", 0)
    if tmpfile:
        bits.append(tmpfile)
    for bit in bits:
        for name, arg in (("open", 1), ("openat", 2)):
            try:
                flt.add_rule(deny, name, sc.Arg(arg, sc.MASKED_EQ, bit, bit))
            except OSError:
                pass
    flt.add_rule(deny, "prlimit64", sc.Arg(2, sc.NE, 0))
    low, high = min(IOCTL_ALLOWED), max(IOCTL_ALLOWED)
    flt.add_rule(deny, "ioctl", sc.Arg(1, sc.LT, low))
    flt.add_rule(deny, "ioctl", sc.Arg(1, sc.GT, high))
    for request in range(low, high + 1):
        if request not in IOCTL_ALLOWED:
            flt.add_rule(deny, "ioctl", sc.Arg(1, sc.EQ, request))
    r, w = os.pipe()
    try:
        with os.fdopen(w, "wb", closefd=True) as sink:
            flt.export_bpf(sink)
        program = b""
        while chunk := os.read(r, 65536):
            program += chunk
    finally:
        os.close(r)
    if not program or len(program) % 8:
        raise RuntimeError("libseccomp exported no BPF program")

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    code = ctypes.create_string_buffer(program, len(program))
    return code, SockFprog(len(program) // 8, ctypes.addressof(code))


def apply_seccomp(libc: Any, program: tuple[Any, Any]) -> None:
    import ctypes

    if prctl(libc, PR_SET_NO_NEW_PRIVS, 1) != 0:
        raise OSError(ctypes.get_errno(), "could not set no_new_privs")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program[1]), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "seccomp filter refused")


def probe_seccomp() -> str:
    import socket

    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
        return "socket() was not blocked"
    except PermissionError:
        pass
    try:
        os.close(os.open("/tmp/.alphaloop-probe", os.O_WRONLY | os.O_CREAT, 0o600))
        return "open for writing was not blocked"
    except PermissionError:
        pass
    return "ok"


def probe_landlock() -> str:
    for path in ("/proc/self/status", "/etc/hostname", "/dev/null"):
        if os.path.exists(path):
            try:
                os.close(os.open(path, os.O_RDONLY))
                return f"landlock let {path} be read"
            except PermissionError:
                return "ok"
    return "ok"


def install_tripwire(roots: list[str], report: Callable[[str], None]) -> None:
    """An audit hook: any attempt at files outside Python, processes or sockets ends the child."""
    prefixes = tuple(os.path.realpath(r).rstrip(os.sep) + os.sep for r in roots)
    exact = tuple(os.path.realpath(r) for r in roots)
    blocked = BLOCKED_EVENT_PREFIXES

    def allowed_path(path: Any) -> bool:
        if isinstance(path, int):
            return True
        try:
            real = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return real in exact or real.startswith(prefixes)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & WRITE_FLAGS)
            if writing or not allowed_path(path):
                report(f"open({str(path)[:120]!r}, {mode!r})")
        elif event in ("os.listdir", "os.scandir"):
            if not args or args[0] is None or not allowed_path(args[0]):
                report(f"{event}({str(args[0] if args else None)[:120]!r})")
        elif event.startswith(blocked):
            report(event)

    sys.addaudithook(hook)
