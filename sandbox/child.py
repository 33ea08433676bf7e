"""What runs inside the sandbox: the warm worker, and the per-candidate child it forks.

This file is shipped to the worker as source text (inside bubblewrap the project folder is not
visible), so it imports nothing from the project: the parent sends the source of
``alphaloop/candidate.py`` along with it and the worker builds that module from text. The parent
imports this file too, for the wire format and the frame encoding both sides share.

Flow of one run: the parent sends the region and the input frames; the worker rebuilds the
frames, forks a child, and the child locks itself down (rlimits, Landlock, seccomp, an audit hook
and restricted builtins), runs the candidate, and writes back only arrays: the signals and the
numeric feature columns, as raw little-endian float64 buffers described by a JSON header (never
pickle). The worker watches the clock, kills the child and anything it left behind, and reports
how it ended. The child never computes a score; the parent validates every array it receives.
"""

from __future__ import annotations

import errno
import json
import math
import os
import select
import signal
import struct
import sys
import time
import traceback
from typing import Any, Callable

import numpy as np
import pandas as pd

MAGIC = b"ALSB"
PREFIX = struct.Struct("<4sIQ")
MAX_FEATURES = 256
MAX_NAME_CHARS = 200
LOG_TAIL_BYTES = 4096
CHILD_STATUSES = ("ok", "exception", "bad_output", "missing_output", "memory")
CANDIDATE_FILENAME = "<candidate>"
CANDIDATE_MODULE_FILENAME = "<alphaloop/candidate.py>"
RESULT_FD = 3

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


class ProtocolError(RuntimeError):
    """A message on a sandbox pipe was truncated, oversized or malformed."""


# --- wire format -------------------------------------------------------------------------------

def pack_message(header: dict[str, Any], body: list[bytes | memoryview] | None = None) -> list[bytes | memoryview]:
    """Frame a JSON header and raw buffers: magic, header length, body length, header, body."""
    parts = list(body or [])
    head = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    total = sum(len(p) for p in parts)
    return [PREFIX.pack(MAGIC, len(head), total), head, *parts]


def write_all(fd: int, parts: list[bytes | memoryview]) -> None:
    """Write every part to ``fd``, however many calls the pipe needs."""
    for part in parts:
        view = memoryview(part).cast("B")
        while view:
            written = os.write(fd, view)
            view = view[written:]


def read_message(read_exact: Callable[[int], bytes], max_header: int, max_body: int) -> tuple[dict[str, Any], bytearray]:
    """Read one framed message, refusing anything larger than the caller allows."""
    magic, head_len, body_len = PREFIX.unpack(read_exact(PREFIX.size))
    if magic != MAGIC:
        raise ProtocolError("bad message magic")
    if head_len > max_header or body_len > max_body:
        raise ProtocolError(f"message too large ({head_len} + {body_len} bytes)")
    try:
        header = json.loads(read_exact(head_len).decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"malformed header: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not an object")
    body = bytearray(read_exact(body_len)) if body_len else bytearray()
    return header, body


def _refuse_constant(name: str) -> Any:
    """NaN and Infinity are not JSON: a header carrying one is forged, and refused before use."""
    raise ValueError(f"non-JSON constant {name}")


def buffer_reader(data: bytes | bytearray) -> Callable[[int], bytes]:
    """A ``read_exact`` over bytes already in memory."""
    view = memoryview(data)
    pos = 0

    def read_exact(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(view):
            raise ProtocolError("message truncated")
        chunk = bytes(view[pos:pos + n])
        pos += n
        return chunk

    return read_exact


def array_at(body: bytearray, spec: Any, count: int, dtype: str = "<f8") -> np.ndarray:
    """View ``count`` items of ``dtype`` at the place ``spec`` names, checking it stays in bounds."""
    if not isinstance(spec, dict):
        raise ProtocolError("array descriptor is not an object")
    offset, nbytes = spec.get("offset"), spec.get("nbytes")
    itemsize = np.dtype(dtype).itemsize
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (offset, nbytes)):
        raise ProtocolError("array descriptor without integer offset and size")
    if nbytes != count * itemsize or offset < 0 or offset + nbytes > len(body) or offset % 8:
        raise ProtocolError(f"array descriptor out of bounds (offset {offset}, {nbytes} bytes)")
    return np.frombuffer(body, dtype=dtype, count=count, offset=offset)


class BodyBuilder:
    """Collect raw buffers for a message body, each 8-byte aligned, and describe where they are."""

    def __init__(self) -> None:
        self.parts: list[bytes | memoryview] = []
        self.size = 0

    def add(self, array: np.ndarray, dtype: str = "<f8") -> dict[str, int]:
        data = np.ascontiguousarray(array, dtype=dtype)
        raw = memoryview(data).cast("B")
        spec = {"offset": self.size, "nbytes": len(raw)}
        self.parts.append(raw)
        self.size += len(raw)
        pad = -self.size % 8
        if pad:
            self.parts.append(b"\0" * pad)
            self.size += pad
        return spec


# --- input frames --------------------------------------------------------------------------------

def encode_frames(frames: list[pd.DataFrame]) -> tuple[list[dict[str, Any]], BodyBuilder]:
    """Describe OHLCV frames as raw column buffers plus their index, exactly enough to rebuild them."""
    body = BodyBuilder()
    specs: list[dict[str, Any]] = []
    for i, df in enumerate(frames):
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"frame {i} is a {type(df).__name__}, not a DataFrame")
        index = df.index
        if isinstance(index, pd.DatetimeIndex):
            ix: dict[str, Any] = {
                "kind": "datetime", "unit": index.unit, "tz": None if index.tz is None else str(index.tz),
                "freq": index.freqstr, **body.add(index.asi8, "<i8"),
            }
        elif isinstance(index, pd.RangeIndex):
            ix = {"kind": "range", "start": index.start, "stop": index.stop, "step": index.step}
        elif pd.api.types.is_integer_dtype(index.dtype):
            ix = {"kind": "int", **body.add(index.to_numpy(dtype=np.int64), "<i8")}
        else:
            raise TypeError(f"frame {i}: unsupported index type {type(index).__name__}")
        ix["name"] = index.name if isinstance(index.name, str) or index.name is None else str(index.name)
        columns = []
        if df.columns.has_duplicates:
            raise TypeError(f"frame {i}: column names must be unique")
        for pos, name in enumerate(df.columns):
            if not isinstance(name, str):
                raise TypeError(f"frame {i}: column names must be strings, got {name!r}")
            values = df.iloc[:, pos].to_numpy()
            if values.dtype.kind not in "biuf":
                raise TypeError(f"frame {i}: column {name!r} has unsupported dtype {values.dtype}")
            dtype = values.dtype.newbyteorder("<").str
            columns.append({"name": name, "dtype": dtype, **body.add(values, dtype)})
        specs.append({"n": len(df), "index": ix, "columns": columns})
    return specs, body


def decode_frames(specs: list[dict[str, Any]], body: bytearray) -> list[pd.DataFrame]:
    """Rebuild the frames ``encode_frames`` described (writable copies, dates and dtypes intact)."""
    frames = []
    for spec in specs:
        n = int(spec["n"])
        ix = spec["index"]
        if ix["kind"] == "datetime":
            values = array_at(body, ix, n, "<i8").view(f"datetime64[{ix['unit']}]").copy()
            index = pd.DatetimeIndex(values, name=ix["name"])
            if ix["tz"] is not None:
                index = index.tz_localize("UTC").tz_convert(ix["tz"])
            if ix["freq"] is not None:
                index = pd.DatetimeIndex(index, freq=ix["freq"])
        elif ix["kind"] == "range":
            index = pd.RangeIndex(ix["start"], ix["stop"], ix["step"], name=ix["name"])
        else:
            index = pd.Index(array_at(body, ix, n, "<i8").copy(), name=ix["name"])
        data = {c["name"]: array_at(body, c, n, c["dtype"]).copy() for c in spec["columns"]}
        frames.append(pd.DataFrame(data, index=index))
    return frames


# --- the worker ------------------------------------------------------------------------------------

def worker_main(init: dict[str, Any]) -> None:
    """Serve run requests on fd 0/1 until the parent closes the pipe; one fork per request."""
    resp_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.dont_write_bytecode = True
    worker = Worker(init)
    write_all(resp_fd, pack_message(worker.handshake()))
    while True:
        try:
            header, body = read_message(_fd_reader(0), 1 << 26, 1 << 34)
        except (ProtocolError, EOFError):
            return
        if header.get("op") != "run":
            return
        reply, parts = worker.run(header, body)
        try:
            message = pack_message(reply, parts)
        except (TypeError, ValueError) as exc:  # whatever a child sent, the worker keeps serving
            message = pack_message({"status": "bad_output", "reason": f"unencodable result ({type(exc).__name__})"})
        write_all(resp_fd, message)


def _fd_reader(fd: int) -> Callable[[int], bytes]:
    def read_exact(n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise EOFError("pipe closed")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    return read_exact


def _load_libc() -> Any:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if hasattr(libc, "syscall"):
        libc.syscall.restype = ctypes.c_long
    return libc


def _prctl(libc: Any, option: int, value: int = 0) -> int:
    """``prctl`` where the platform has it (Linux); elsewhere nothing happens (-1)."""
    call = getattr(libc, "prctl", None)
    return -1 if call is None else int(call(option, value, 0, 0, 0))


class Worker:
    """The long-lived process: pandas imported once, layers probed once, a fork per candidate."""

    def __init__(self, init: dict[str, Any]) -> None:
        self.want: dict[str, bool] = init["want"]
        self.read_roots: list[str] = [r for r in init["read_roots"] if os.path.exists(r)]
        self.libc = _load_libc()
        _prctl(self.libc, PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != init["parent_pid"] and not init["pid_namespace"]:
            os._exit(4)
        self.pid_namespace = bool(init["pid_namespace"]) and os.getpid() == 2 and _is_bwrap_init()
        if not self.pid_namespace:
            _prctl(self.libc, PR_SET_CHILD_SUBREAPER, 1)
        _prctl(self.libc, PR_SET_DUMPABLE, 0)
        self.candidate = _module_from_source("alphaloop_candidate", init["candidate_src"])
        self.builtins = _restricted_builtins(init["builtins"])
        self.seccomp: Any = None
        self.notes: dict[str, str] = {}
        if self.want["seccomp"]:
            self._prepare_seccomp(init.get("libs", {}))
        _prewarm(self.candidate)
        self.layers = self._probe()

    def _prepare_seccomp(self, libs: dict[str, str]) -> None:
        import ctypes.util

        original = ctypes.util.find_library
        ctypes.util.find_library = lambda name: libs.get(name) or original(name)
        try:
            import pyseccomp
        except Exception as exc:
            self.notes["seccomp"] = f"pyseccomp unavailable ({type(exc).__name__}: {exc})"
            return
        finally:
            ctypes.util.find_library = original
        try:
            self.seccomp = _seccomp_program(pyseccomp)
        except Exception as exc:
            self.notes["seccomp"] = f"could not build a seccomp filter ({type(exc).__name__}: {exc})"

    def _probe(self) -> dict[str, Any]:
        """Fork once, lock down, and try what each layer must stop; report what really works."""
        import socket  # noqa: F401  (imported here: the probe child may no longer read the stdlib)

        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            report: dict[str, Any] = {}
            try:
                _set_rlimits(600, 1 << 40)
                report["privileges"] = _drop_privileges(self.libc, self.pid_namespace)
                report["landlock"] = _apply_landlock(self.libc, self.read_roots) if self.want["landlock"] else "disabled"
                if self.seccomp is not None:
                    _apply_seccomp(self.libc, self.seccomp)
                    report["seccomp"] = _probe_seccomp()
                else:
                    report["seccomp"] = self.notes.get("seccomp", "disabled")
                if report["landlock"] == "ok":
                    report["landlock"] = _probe_landlock()
            except BaseException as exc:
                report["error"] = f"{type(exc).__name__}: {exc}"
            write_all(w, [json.dumps(report).encode()])
            os._exit(0)
        os.close(w)
        data = b""
        while True:
            chunk = os.read(r, 65536)
            if not chunk:
                break
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        try:
            report = json.loads(data.decode() or "{}")
        except ValueError:
            report = {"error": "probe child died"}
        return report

    def handshake(self) -> dict[str, Any]:
        return {
            "op": "ready", "layers": self.layers, "pid_namespace": self.pid_namespace,
            "python": sys.version.split()[0], "numpy": np.__version__, "pandas": pd.__version__,
        }

    def run(self, header: dict[str, Any], body: bytearray) -> tuple[dict[str, Any], list[bytes | memoryview]]:
        """Fork one child for all frames of the request; watch it; describe how it ended."""
        started = time.monotonic()
        timeout = float(header["timeout"])
        memory_mb = int(header["memory_mb"])
        try:
            frames = decode_frames(header["frames"], body)
        except Exception as exc:
            return {"status": "crash", "reason": f"worker could not rebuild the input frames: {exc}"}, []
        del body
        max_body = sum(len(f) for f in frames) * 8 * (MAX_FEATURES + 1) + (1 << 20)
        res_r, res_w = os.pipe()
        log_r, log_w = os.pipe()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in (res_r, res_w, log_r, log_w):
                os.close(fd)
            return {"status": "crash", "reason": f"could not start the candidate process: {exc}"}, []
        if pid == 0:
            os.close(res_r)
            os.close(log_r)
            _child_main(self, header["region"], frames, timeout, memory_mb, res_w, log_w)
            os._exit(70)
        os.close(res_w)
        os.close(log_w)
        watch = _Watch(pid, res_r, log_r, max_body)
        watch.follow(started + timeout)
        self._sweep(pid)
        watch.drain(time.monotonic() + 0.5)
        os.close(res_r)
        os.close(log_r)
        return watch.outcome(timeout, memory_mb), watch.result_parts

    def _sweep(self, pid: int) -> None:
        """Kill everything the child may have left behind (a detached grandchild included)."""
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        if self.pid_namespace:
            try:
                os.kill(-1, signal.SIGKILL)
            except OSError:
                pass
            _reap_all()
            return
        for _ in range(200):
            _reap_all()
            children = _children_of(os.getpid())
            if not children:
                return
            for child in children:
                try:
                    os.kill(child, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.002)


class _Watch:
    """The worker's view of one running child: its pipes, its deadline, its exit."""

    def __init__(self, pid: int, res_r: int, log_r: int, max_body: int) -> None:
        self.pid = pid
        self.res_r, self.log_r = res_r, log_r
        self.max_body = max_body
        self.max_result = max_body + (1 << 24)
        self.result = bytearray()
        self.log = bytearray()
        self.log_dropped = 0
        self.open = {res_r, log_r}
        self.exit_status: int | None = None
        self.rusage: Any = None
        try:
            self.pidfd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):
            self.pidfd = None
        self.timed_out = False
        self.oversize = False
        self.result_parts: list[bytes | memoryview] = []

    def _read_ready(self, wait: float) -> None:
        watched = list(self.open)
        if self.pidfd is not None and self.exit_status is None:
            watched.append(self.pidfd)
        if not watched:
            time.sleep(wait)
            return
        ready, _, _ = select.select(watched, [], [], wait)
        for fd in ready:
            if fd == self.pidfd:
                continue
            try:
                chunk = os.read(fd, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                self.open.discard(fd)
            elif fd == self.res_r:
                if len(self.result) + len(chunk) > self.max_result:
                    self.oversize = True
                    self.open.discard(fd)
                else:
                    self.result += chunk
            else:
                self.log += chunk
                if len(self.log) > 2 * LOG_TAIL_BYTES:
                    cut = len(self.log) - LOG_TAIL_BYTES
                    self.log_dropped += cut
                    del self.log[:cut]

    def _poll_exit(self) -> bool:
        if self.exit_status is None:
            pid, status, usage = os.wait4(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.exit_status, self.rusage = status, usage
        return self.exit_status is not None

    def follow(self, deadline: float) -> None:
        while not self._poll_exit():
            if self.oversize:
                os.kill(self.pid, signal.SIGKILL)
            left = deadline - time.monotonic()
            if left <= 0:
                self.timed_out = True
                os.kill(self.pid, signal.SIGKILL)
                _, self.exit_status, self.rusage = os.wait4(self.pid, 0)
                return
            self._read_ready(left if self.pidfd is not None else min(left, 0.02))

    def drain(self, deadline: float) -> None:
        while self.open and time.monotonic() < deadline:
            self._read_ready(0.05)
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    def outcome(self, timeout: float, memory_mb: int) -> dict[str, Any]:
        reply: dict[str, Any] = {"log": self.log[-LOG_TAIL_BYTES:].decode("utf-8", "replace"),
                                 "log_dropped": self.log_dropped + max(0, len(self.log) - LOG_TAIL_BYTES)}
        status = self.exit_status or 0
        maxrss_mb = (self.rusage.ru_maxrss / 1024) if self.rusage is not None else 0.0
        if self.timed_out:
            return {**reply, "status": "timeout", "reason": f"exceeded the {timeout:g} s time limit"}
        if self.oversize:
            return {**reply, "status": "bad_output", "reason": "the candidate process sent more output than its frames allow"}
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            if sig == signal.SIGXCPU:
                return {**reply, "status": "timeout", "reason": "exceeded its CPU time limit"}
            if maxrss_mb >= 0.8 * memory_mb:
                return {**reply, "status": "memory", "reason": f"killed at {maxrss_mb:.0f} MB resident (limit {memory_mb} MB)"}
            return {**reply, "status": "crash", "reason": f"candidate process killed by {name}"}
        if not self.result:
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
            return {**reply, "status": "missing_output", "reason": f"candidate process exited with code {code} without a result"}
        try:
            header, body = read_message(buffer_reader(self.result), 1 << 24, self.max_body)
        except (ProtocolError, struct.error) as exc:
            return {**reply, "status": "bad_output", "reason": f"malformed result from the candidate process ({exc})"}
        child_status = header.get("status")
        if child_status not in CHILD_STATUSES:
            return {**reply, "status": "bad_output", "reason": "the candidate process reported an unknown status"}
        self.result_parts = [body] if child_status == "ok" else []
        return {**reply, "status": child_status, "reason": str(header.get("reason", ""))[:1000],
                "frames": header.get("frames") if child_status == "ok" else None}


def _is_bwrap_init() -> bool:
    try:
        with open("/proc/1/cmdline", "rb") as fh:
            return os.path.basename(fh.read().split(b"\0")[0]) == b"bwrap"
    except OSError:
        return False


def _children_of(pid: int) -> list[int]:
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _reap_all() -> bool:
    reaped = False
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped = True


def _module_from_source(name: str, source: str) -> Any:
    import types

    module = types.ModuleType(name)
    module.__file__ = CANDIDATE_MODULE_FILENAME
    exec(compile(source, CANDIDATE_MODULE_FILENAME, "exec"), module.__dict__)
    return module


def _restricted_builtins(names: list[str]) -> dict[str, Any]:
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


def _prewarm(candidate: Any) -> None:
    """Trigger pandas' lazy imports once in the worker, so forked children rarely touch the disk."""
    idx = pd.date_range("2020-01-01", periods=64, freq="B", name="Date")
    close = np.linspace(100.0, 110.0, 64)
    df = pd.DataFrame({"Open": close, "High": close + 1, "Low": close - 1, "Close": close,
                       "Volume": np.full(64, 1e6)}, index=idx)

    def features(d: pd.DataFrame) -> pd.DataFrame:
        d["a"] = d["Close"].rolling(5).mean() + d["Close"].ewm(span=5).mean()
        d["b"] = d["Close"].rolling(5).apply(lambda x: x[-1], raw=True).rank(pct=True)
        d["c"] = d.groupby(d.index.month)["Close"].transform("mean").pct_change().fillna(0)
        d["d"] = np.where(d["a"] > d["b"], 1, 0) + d["Close"].rolling(5).agg(["mean", "std"]).sum(axis=1)
        d["e"] = d["Close"].rolling(5).quantile(0.5).diff().clip(-1, 1).shift(1).ffill()
        list(d.head(2).itertuples())
        str(d.tail(2))
        return d

    candidate.compute_signals(features, lambda row: 0, df)
    "sandbox".encode("idna")  # a codec loaded from disk: a child running as another uid may not read it


# --- lockdown layers -------------------------------------------------------------------------------

def _set_rlimits(timeout: float, address_space: int) -> None:
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


def _vm_size() -> int:
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _drop_privileges(libc: Any, pid_namespace: bool) -> str:
    """No capabilities (bounding set included), no_new_privs, and when root outside a namespace,
    the unprivileged uid/gid ``NOBODY``: the parent's /proc entries, its priority, CPU affinity and
    files are then another user's. Returns "ok" or why not."""
    for cap in range(64):
        _prctl(libc, PR_CAPBSET_DROP, cap)
    if os.geteuid() == 0 and not pid_namespace:
        try:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
        except OSError as exc:
            return f"could not switch to uid {NOBODY} ({exc.strerror})"
    if _prctl(libc, PR_SET_NO_NEW_PRIVS, 1) != 0:
        return "could not set no_new_privs"
    try:
        with open("/proc/self/status", "rb") as fh:
            caps = {k: v for k, v in (line.split(b":", 1) for line in fh if line.startswith(b"Cap"))}
    except OSError:
        return "ok" if os.geteuid() != 0 else "could not read the capability sets"
    held = [k.decode() for k in (b"CapPrm", b"CapEff", b"CapAmb") if int(caps.get(k, b"0").strip(), 16)]
    return f"capabilities still held ({', '.join(held)})" if held else "ok"


def _apply_landlock(libc: Any, roots: list[str]) -> str:
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
            added = libc.syscall(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(1), rule, ctypes.c_uint32(0))
            os.close(pfd)
            if added < 0:
                return f"landlock rule refused for {root} (errno {ctypes.get_errno()})"
        if _prctl(libc, PR_SET_NO_NEW_PRIVS, 1) != 0:
            return "could not set no_new_privs"
        if libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) < 0:
            return f"landlock restrict_self refused (errno {ctypes.get_errno()})"
    finally:
        os.close(ruleset)
    return "ok"


def _seccomp_program(sc: Any) -> tuple[Any, Any]:
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


def _apply_seccomp(libc: Any, program: tuple[Any, Any]) -> None:
    import ctypes

    if _prctl(libc, PR_SET_NO_NEW_PRIVS, 1) != 0:
        raise OSError(ctypes.get_errno(), "could not set no_new_privs")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(program[1]), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "seccomp filter refused")


def _probe_seccomp() -> str:
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


def _probe_landlock() -> str:
    for path in ("/proc/self/status", "/etc/hostname", "/dev/null"):
        if os.path.exists(path):
            try:
                os.close(os.open(path, os.O_RDONLY))
                return f"landlock let {path} be read"
            except PermissionError:
                return "ok"
    return "ok"


def _install_tripwire(roots: list[str], report: Callable[[str], None]) -> None:
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


# --- the child -----------------------------------------------------------------------------------

def _child_main(worker: Worker, region: str, frames: list[pd.DataFrame], timeout: float,
                memory_mb: int, res_w: int, log_w: int) -> None:
    """Lock down, run the candidate on every frame, send back arrays; never returns."""
    try:
        os.setpgid(0, 0)
        _prctl(worker.libc, PR_SET_PDEATHSIG, signal.SIGKILL)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_w, 1)
        os.dup2(log_w, 2)
        os.dup2(res_w, RESULT_FD)
        os.closerange(RESULT_FD + 1, 1 << 16)
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        _set_rlimits(timeout, _vm_size() + memory_mb * (1 << 20))
    except BaseException as exc:
        _send(RESULT_FD, {"status": "exception", "reason": f"sandbox setup failed: {exc}"})
        os._exit(71)
    _child_run(worker, region, frames)


def _child_run(worker: Worker, region: str, frames: list[pd.DataFrame]) -> None:
    sent = False

    def violation(what: str) -> None:
        nonlocal sent
        if not sent:
            sent = True
            _send(RESULT_FD, {"status": "exception", "reason": f"sandbox violation: blocked {what}"})
        os._exit(72)

    try:
        code = compile(region, CANDIDATE_FILENAME, "exec")
        if worker.layers.get("privileges") == "ok":
            state = _drop_privileges(worker.libc, worker.pid_namespace)
            if state != "ok":
                raise RuntimeError(state)
        if worker.want["landlock"] and worker.layers.get("landlock") == "ok":
            state = _apply_landlock(worker.libc, worker.read_roots)
            if state != "ok":
                raise RuntimeError(state)
        if worker.seccomp is not None and worker.layers.get("seccomp") == "ok":
            _apply_seccomp(worker.libc, worker.seccomp)
        if worker.want["tripwires"]:
            _install_tripwire(worker.read_roots, violation)
            env: dict[str, Any] = {"__builtins__": dict(worker.builtins)}
        else:
            import builtins

            env = {"__builtins__": builtins}
        env.update({"__name__": "candidate", "pd": pd, "np": np})
        exec(code, env)
        gf, sl = env.get("generate_features"), env.get("strategy_logic")
        missing = [n for n, f in (("generate_features", gf), ("strategy_logic", sl)) if not callable(f)]
        if missing:
            sent = True
            _send(RESULT_FD, {"status": "missing_output", "reason": f"the region does not define {' and '.join(missing)}"})
            return
        header, parts = _compute(worker.candidate, gf, sl, frames)
        sent = True
        _send(RESULT_FD, header, parts)
    except BaseException as exc:
        if not sent:
            sent = True
            try:
                failure = _describe_failure(exc, region)
            except BaseException:
                failure = {"status": "exception", "reason": f"{type(exc).__name__} (unprintable)"}
            _send(RESULT_FD, failure)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(0)


class _BadOutput(Exception):
    pass


NUMBER_TYPES = (bool, int, float, np.integer, np.floating, np.bool_)


def _check_element_types(raw: Any) -> None:
    """Every element of an object-dtype signal vector must be a number, not only the first rows."""
    arr = np.asarray(raw)
    if arr.dtype == object:
        kinds = set(map(type, arr.ravel().tolist()))
        bad = [k for k in kinds if not issubclass(k, NUMBER_TYPES)]
        if bad:
            raise ValueError(f"signals must be numbers, got {bad[0].__name__}")


def _compute(candidate: Any, gf: Callable[..., Any], sl: Callable[..., Any],
             frames: list[pd.DataFrame]) -> tuple[dict[str, Any], list[bytes | memoryview]]:
    body = BodyBuilder()
    out = []
    for i, df in enumerate(frames):
        features, raw = candidate.compute_signals(gf, sl, df)
        try:
            _check_element_types(raw)
            signals = candidate.validate_signals(raw, len(df))
        except ValueError as exc:
            raise _BadOutput(f"frame {i}: {exc}") from None
        columns, seen = [], set()
        for pos, name in enumerate(features.columns):
            column = features.iloc[:, pos]
            dtype = column.dtype
            if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
                continue
            label = name if isinstance(name, str) else str(name)
            label = label[:MAX_NAME_CHARS]
            if label in seen:
                continue
            seen.add(label)
            if len(columns) >= MAX_FEATURES:
                raise _BadOutput(f"frame {i}: more than {MAX_FEATURES} numeric feature columns")
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
            columns.append({"name": label, **body.add(values)})
        out.append({"n": len(df), "signals": body.add(signals.astype(np.float64)), "features": columns})
    return {"status": "ok", "frames": out}, body.parts


def _describe_failure(exc: BaseException, region: str) -> dict[str, Any]:
    if isinstance(exc, MemoryError):
        return {"status": "memory", "reason": f"MemoryError{_where(exc, region)}"}
    if isinstance(exc, _BadOutput):
        return {"status": "bad_output", "reason": str(exc)}
    frames = traceback.extract_tb(exc.__traceback__)
    if frames and frames[-1].filename == CANDIDATE_MODULE_FILENAME and isinstance(exc, (TypeError, ValueError)):
        return {"status": "bad_output", "reason": _one_line(str(exc))}
    message = _one_line(str(exc))
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return {"status": "exception", "reason": f"{text}{_where(exc, region)}"}


def _where(exc: BaseException, region: str) -> str:
    own = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == CANDIDATE_FILENAME]
    if not own and isinstance(exc, SyntaxError) and exc.filename == CANDIDATE_FILENAME and exc.lineno:
        lineno = exc.lineno
    elif own and own[-1].lineno:
        lineno = own[-1].lineno
    else:
        return ""
    lines = region.splitlines()
    text = lines[lineno - 1].strip()[:120] if 0 < lineno <= len(lines) else ""
    return f" at candidate line {lineno}: {text}" if text else f" at candidate line {lineno}"


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]


def _send(fd: int, header: dict[str, Any], parts: list[bytes | memoryview] | None = None) -> None:
    try:
        write_all(fd, pack_message(header, parts))
    except (OSError, ValueError):
        pass
