"""The worker's side of one frame's child: its input, its pipes, its deadline, how it ended.

This module is shipped to the sandbox worker as source text with the other modules the worker
needs (see ``launch.SHIPPED``): inside bubblewrap the project folder is not visible. It imports
only the standard library and the sandbox modules shipped before it.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from sandbox.wire import ProtocolError, buffer_reader, read_message

LOG_TAIL_BYTES = 4096
CHILD_STATUSES = ("ok", "exception", "bad_output", "missing_output", "memory")
EXITED = struct.Struct("<qqd")  # pid, wait status, peak resident KB: what the zygote reports when a child ends
REPORT_GRACE_S = 5.0  # how long a killed child's exit report may take before the zygote counts as gone
STOP_POLL_S = 0.02  # how often a child running beside others checks whether its frame is still wanted


class ZygoteGone(Exception):
    """The zygote died or stopped answering: the worker must not fork children itself, so it exits."""


class Watch:
    """One running child: write its input, read its result and log, kill it at the deadline."""

    def __init__(self, pid: int, zygote: socket.socket, in_w: int, message: list[Any], res_r: int, log_r: int,
                 max_body: int) -> None:
        self.pid, self.zygote = pid, zygote
        self.in_w: int | None = in_w
        self.pending = [memoryview(p).cast("B") for p in message if len(memoryview(p).cast("B"))]
        self.res_r, self.log_r = res_r, log_r
        self.max_body = max_body
        self.max_result = max_body + (1 << 24)
        self.result = bytearray()
        self.log = bytearray()
        self.log_dropped = 0
        self.open = {res_r, log_r}
        self.exit_status: int | None = None
        self.maxrss_kb = 0.0
        self.timed_out = False
        self.oversize = False
        if not self.pending:
            self._close_input()

    def _close_input(self) -> None:
        if self.in_w is not None:
            os.close(self.in_w)
            self.in_w = None

    def _write_some(self) -> None:
        assert self.in_w is not None
        try:
            written = os.write(self.in_w, self.pending[0][:1 << 16])
        except (BrokenPipeError, OSError):  # the child stopped reading (it died): its input no longer matters
            self.pending.clear()
            self._close_input()
            return
        self.pending[0] = self.pending[0][written:]
        if not len(self.pending[0]):
            self.pending.pop(0)
        if not self.pending:
            self._close_input()

    def _step(self, wait: float) -> None:
        readable = list(self.open) + ([self.zygote] if self.exit_status is None else [])
        writable = [self.in_w] if self.in_w is not None else []
        ready, can_write, _ = select.select(readable, writable, [], max(wait, 0.0))
        if can_write:
            self._write_some()
        for fd in ready:
            if fd is self.zygote:
                self._exit_report()
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
                    self._kill()
                else:
                    self.result += chunk
            else:
                self.log += chunk
                if len(self.log) > 2 * LOG_TAIL_BYTES:
                    cut = len(self.log) - LOG_TAIL_BYTES
                    self.log_dropped += cut
                    del self.log[:cut]

    def _exit_report(self) -> None:
        try:
            data = self.zygote.recv(64)
        except OSError as exc:
            raise ZygoteGone(str(exc)) from None
        if len(data) != EXITED.size:
            raise ZygoteGone("the zygote closed its socket")
        pid, status, maxrss = EXITED.unpack(data)
        if pid != self.pid:
            raise ZygoteGone("the zygote reported another process")
        self.exit_status, self.maxrss_kb = status, maxrss

    def _kill(self) -> None:
        for kill in (os.killpg, os.kill):
            try:
                kill(self.pid, signal.SIGKILL)
            except OSError:
                pass

    def follow(self, deadline: float, stop: Callable[[], bool] | None = None) -> None:
        """Until the zygote reports the child's exit; at the deadline, or once ``stop()`` says its frame is
        no longer wanted (an earlier frame of the run failed), the child is killed."""
        while self.exit_status is None:
            left = deadline - time.monotonic()
            if (left <= 0 or (stop is not None and stop())) and not self.timed_out:
                self.timed_out = True
                self._kill()
                self.pending.clear()
                self._close_input()
                deadline = time.monotonic() + REPORT_GRACE_S
                continue
            if left <= 0:
                raise ZygoteGone("no exit report for a killed child")
            self._step(left if stop is None or self.timed_out else min(left, STOP_POLL_S))

    def drain(self, deadline: float) -> None:
        """What the child wrote before it ended (the zygote killed anything it left holding the pipes)."""
        while self.open and time.monotonic() < deadline:
            self._step(0.05)

    def close(self) -> None:
        self._close_input()
        for fd in (self.res_r, self.log_r):
            try:
                os.close(fd)
            except OSError:
                pass

    def outcome(self, timeout: float, memory_mb: int) -> tuple[dict[str, Any], bytearray]:
        """How the child ended, as the worker reports it, and its result body (empty unless ok)."""
        reply: dict[str, Any] = {"log": self.log[-LOG_TAIL_BYTES:].decode("utf-8", "replace"),
                                 "log_dropped": self.log_dropped + max(0, len(self.log) - LOG_TAIL_BYTES)}
        status = self.exit_status or 0
        maxrss_mb = self.maxrss_kb / 1024
        if self.timed_out:
            return {**reply, "status": "timeout", "reason": f"exceeded the {timeout:g} s time limit"}, bytearray()
        if self.oversize:
            return {**reply, "status": "bad_output",
                    "reason": "the candidate process sent more output than its frame allows"}, bytearray()
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
            if sig == signal.SIGXCPU:
                return {**reply, "status": "timeout", "reason": "exceeded its CPU time limit"}, bytearray()
            if maxrss_mb >= 0.8 * memory_mb:
                return {**reply, "status": "memory",
                        "reason": f"killed at {maxrss_mb:.0f} MB resident (limit {memory_mb} MB)"}, bytearray()
            return {**reply, "status": "crash", "reason": f"candidate process killed by {name}"}, bytearray()
        if not self.result:
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
            return {**reply, "status": "missing_output",
                    "reason": f"candidate process exited with code {code} without a result"}, bytearray()
        try:
            header, body = read_message(buffer_reader(self.result), 1 << 24, self.max_body)
        except (ProtocolError, struct.error) as exc:
            return {**reply, "status": "bad_output",
                    "reason": f"malformed result from the candidate process ({exc})"}, bytearray()
        child_status = header.get("status")
        if child_status not in CHILD_STATUSES:
            return {**reply, "status": "bad_output", "reason": "the candidate process reported an unknown status"}, \
                bytearray()
        if child_status != "ok":
            return {**reply, "status": child_status, "reason": str(header.get("reason", ""))[:1000]}, bytearray()
        if not isinstance(header.get("arrays"), list):
            return {**reply, "status": "bad_output", "reason": "the candidate process sent no array list"}, bytearray()
        return {**reply, "status": "ok", "arrays": header["arrays"]}, body


def is_bwrap_init() -> bool:
    try:
        with open("/proc/1/cmdline", "rb") as fh:
            return os.path.basename(fh.read().split(b"\0")[0]) == b"bwrap"
    except OSError:
        return False


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
