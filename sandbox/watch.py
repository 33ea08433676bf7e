"""The worker's side of one running child: its pipes, its deadline, its exit, and the reaper.

This module is shipped to the sandbox worker as source text with the other modules the worker
needs (see ``runner.SHIPPED``): inside bubblewrap the project folder is not visible. It imports
only the standard library, numpy, pandas and the sandbox modules shipped before it.
"""

from __future__ import annotations

import os
import select
import signal
import struct
import time
from typing import Any

from sandbox.wire import ProtocolError, buffer_reader, read_message

LOG_TAIL_BYTES = 4096
CHILD_STATUSES = ("ok", "exception", "bad_output", "missing_output", "memory")


class Watch:
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
            return {**reply, "status": "bad_output",
                    "reason": "the candidate process sent more output than its frames allow"}
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            if sig == signal.SIGXCPU:
                return {**reply, "status": "timeout", "reason": "exceeded its CPU time limit"}
            if maxrss_mb >= 0.8 * memory_mb:
                return {**reply, "status": "memory",
                        "reason": f"killed at {maxrss_mb:.0f} MB resident (limit {memory_mb} MB)"}
            return {**reply, "status": "crash", "reason": f"candidate process killed by {name}"}
        if not self.result:
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
            return {**reply, "status": "missing_output",
                    "reason": f"candidate process exited with code {code} without a result"}
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


def is_bwrap_init() -> bool:
    try:
        with open("/proc/1/cmdline", "rb") as fh:
            return os.path.basename(fh.read().split(b"\0")[0]) == b"bwrap"
    except OSError:
        return False


def children_of(pid: int) -> list[int]:
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


def reap_all() -> bool:
    reaped = False
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return reaped
        if pid == 0:
            return reaped
        reaped = True
