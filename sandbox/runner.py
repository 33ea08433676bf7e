"""Run a candidate region in isolated child processes, one per frame, and get back only checked arrays.

The parent (this module) owns one warm worker process: started once, inside bubblewrap when that
works here, with pandas, numpy and the task drivers imported. The worker forks a ZYGOTE before it
has seen any data; every frame of every ``Sandbox.run`` (the full run, each probe, each rerun) runs
in its own child forked from that zygote, so no frame, run or candidate can read what another one
computed, cached or freed (``sandbox/worker.py``). A frame is a panel: a tuple of DataFrames, one per
instrument (a bare DataFrame is a panel of one). What a task does in the child is its DRIVER, handed
in as source text (``Driver``): its ``run_frame(namespace, frame)`` returns named float64 arrays, and
the driver's ``decode`` (trusted, in the parent) validates them into results. This module checks
every byte it gets back, never lets anything the child printed count as a result, and imports
nothing from alphaloop: the trust boundary does not depend on the code it protects.

Layers, strongest first, each reported in ``Sandbox.layers`` only when the worker proved it works:
bwrap (no project, home, /etc or network; own pid namespace; dies with the parent), landlock
(reads only the Python installation, no writes, no TCP, no signals outward), seccomp (no exec,
fork, sockets, writing opens, priority/scheduler/uid changes, off-list ioctls), no-privileges (no
capabilities, no_new_privs, uid 65534 when started as root outside bwrap), rlimits (CPU, address
space, file size, descriptors, no core), timeout (wall clock, the whole process tree killed), and
two in-process tripwires (an audit hook and restricted builtins: code past the gate can disable
them, so they are never the only wall). ``run`` does not apply the gate: the pipeline calls
``gate.check`` first.
"""

from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sandbox import wire
from sandbox.gate_text import redact_paths
from sandbox.launch import Launch, Settings, take_early
from sandbox.launch import frames_at_once as default_frames_at_once
from sandbox.mounts import (  # noqa: F401  (PROJECT_ROOT, WORKER_ENV, bwrap_status: re-exported)
    PROJECT_ROOT,
    WORKER_ENV,
    bwrap_status,
    seccomp_importable,
)
from sandbox.parent import StderrTail, clean_text, kill_tree, warn_once
from sandbox.wire import ProtocolError

# Printable ASCII without quotes for JSON, braces, angle brackets or backslashes: a name cannot carry a
# terminal escape, a line break, markup or a forged verdict line into logs, prompts or the report.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.:+%()\[\],'/=*\-][A-Za-z0-9_ .:+%()\[\],'/=*\-]*")
STATUSES = ("ok", "timeout", "memory", "crash", "exception", "bad_output", "missing_output")
LAYER_ORDER = ("bwrap", "landlock", "seccomp", "no-privileges", "rlimits", "timeout", "audit-hook",
               "restricted-builtins")
LOG_LIMIT = 4096
REASON_LIMIT = 500
START_TIMEOUT_S = 120.0
GRACE_S = 10.0
Frame = pd.DataFrame | tuple[pd.DataFrame, ...]  # a panel (one DataFrame per instrument); a bare one is a panel of one
Arrays = dict[str, np.ndarray]
Decoder = Callable[[Arrays, tuple[pd.DataFrame, ...]], tuple[Any, ...]]


@dataclass(frozen=True)
class Driver:
    """What a task runs in the child and how its output is read back in the parent.

    ``source`` is the text of a module importing only the standard library, numpy and pandas, with
    ``FUNCTIONS`` (the names the region must define), ``run_frame(namespace, frame) -> dict[str,
    ndarray]``, optionally ``BadOutput`` (an exception reported as ``bad_output``) and
    ``PREWARM_REGION`` (a region run once on synthetic data before the zygote forks). ``decode`` runs in
    the parent: the arrays of one frame and its panel in, one result per instrument out, or
    ``ValueError`` naming what is wrong; ``None`` hands the raw arrays back as they are.
    """

    source: str
    decode: Decoder | None = None


@dataclass
class RunOutcome:
    """How a run ended; ``results`` only when ``status == "ok"``; ``log`` is never a result."""

    status: str
    reason: str
    results: list[Any] | None  # per frame: the decoded tuple (a bare DataFrame's: its one result) or raw arrays
    log: str
    seconds: float
    worker_fault: bool = False  # the worker itself died or could not restart: not the candidate's doing

    def __post_init__(self) -> None:
        """Every outcome's reason names no host path (``gate_text.redact_paths``), whoever made it: it reaches the
        record, the prompt and the report, and a candidate must not learn from it which files exist."""
        self.reason = redact_paths(self.reason)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class _Deadline(Exception):
    pass


class _WorkerGone(Exception):
    pass


class Sandbox:
    """Owns the warm worker; ``run`` one region on several frames, each in a fresh child of the zygote."""

    def __init__(self, timeout_s: float = 30.0, memory_mb: int = 2048, use_bwrap: bool | None = None,
                 use_seccomp: bool | None = None, *, use_landlock: bool | None = None,
                 tripwires: bool = True, drivers: Mapping[str, Driver] | None = None,
                 driver_source: str | None = None, decode: Decoder | None = None,
                 frames_at_once: int | None = None) -> None:
        """``None`` means use the layer when it works here; ``True`` demands it; ``False`` skips it.

        ``drivers`` names each task's ``Driver`` (``run(task=...)`` picks one; the first is the
        default); ``driver_source`` and ``decode`` give a single driver instead. ``frames_at_once``: how
        many frames of a run may run side by side, each in its own child (default: up to two, by cores).
        ``memory_mb`` is the address space a candidate may add on top of the warm worker's.
        ``tripwires=False`` (audit hook and restricted builtins off) exists for tests that check the
        outer layers alone.
        """
        if not hasattr(os, "fork"):
            raise RuntimeError("the sandbox needs a POSIX system with fork()")
        if driver_source is not None:
            drivers = {"default": Driver(driver_source, decode), **(drivers or {})}
        if not drivers:
            raise ValueError("the sandbox needs a task driver (driver_source= or drivers=); "
                             "alphaloop.evaluate.sandboxed.open_sandbox supplies the tasks' drivers")
        self.drivers: dict[str, Driver] = dict(drivers)
        self.timeout_s = float(timeout_s)
        self.memory_mb = int(memory_mb)
        self.tripwires = tripwires
        self.frames_at_once = default_frames_at_once() if frames_at_once is None else max(1, int(frames_at_once))
        self.missing: dict[str, str] = {}
        self.layers: list[str] = []
        self.worker_pid: int | None = None
        self.zygote_pid: int | None = None
        self.token = f"alphaloop-sandbox-{os.getpid()}-{id(self):x}-{time.time_ns():x}"
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: StderrTail | None = None
        self._finalizer: Any = None
        defaults = use_bwrap is None and use_seccomp is None and use_landlock is None and tripwires
        early = take_early()  # a worker a one-shot command started before its imports, or None
        trust_early = defaults and early is not None and early.settings.bwrap  # it is bwrap's probe: no second
        self._bwrap = self._decide("bwrap", use_bwrap, (lambda: None) if trust_early else bwrap_status)
        self._seccomp = self._decide("seccomp", use_seccomp, seccomp_importable)
        landlock_reason = None if sys.platform.startswith("linux") else "not Linux"
        self._landlock = self._decide("landlock", use_landlock, lambda: landlock_reason)
        self._demanded = {name for name, flag in (("bwrap", use_bwrap), ("seccomp", use_seccomp),
                                                   ("landlock", use_landlock)) if flag}
        booted = None if early is None else early.drivers
        if early is not None and (early.settings != self._settings() or booted is not None
                                  and booted != tuple((name, d.source) for name, d in self.drivers.items())):
            early.kill()
            early = None
        self._early = early
        self._start()
        if any(layer in self.missing for layer in ("bwrap", "landlock", "seccomp", "audit-hook")):
            warn_once(self.describe(), "bwrap" in self.missing)

    def _decide(self, layer: str, wanted: bool | None, probe: Any) -> bool:
        if wanted is False:
            self.missing[layer] = "disabled"
            return False
        reason = probe()
        if reason is None:
            return True
        if wanted:
            raise RuntimeError(f"{layer} was required but is unavailable: {reason}")
        self.missing[layer] = reason
        return False

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def alive(self) -> bool:
        """Whether the warm worker is running (a stopped or dead one restarts on the next run)."""
        return self._proc is not None and self._proc.poll() is None

    def describe(self) -> str:
        """One line: the layers in force and, for each missing one, why."""
        missing = ", ".join(f"{k}: {v}" for k, v in self.missing.items()) or "none"
        return f"isolation: {' + '.join(self.layers) or 'none'} (missing: {missing})"

    # --- worker lifecycle ----------------------------------------------------------------------

    def _settings(self) -> Settings:
        return Settings(self._bwrap, self._seccomp, self._landlock, self.tripwires, self.frames_at_once)

    def _start(self) -> None:
        early, self._early = self._early, None
        if early is not None:
            try:
                self._spawn(early)
                return
            except RuntimeError:
                if self._bwrap and "bwrap" not in self._demanded:  # it ran under bwrap unprobed: probe it now
                    self._bwrap = self._decide("bwrap", None, bwrap_status)
        try:
            self._spawn()
        except RuntimeError as exc:
            if not self._bwrap or "bwrap" in self._demanded:
                raise
            self._bwrap = False
            self.missing["bwrap"] = f"worker failed under bwrap ({exc})"
            self._spawn()

    def _spawn(self, launch: Launch | None = None) -> None:
        """Start a worker (or take over ``launch``, started earlier with the same layers), send it the
        task drivers and wait until its zygote is forked."""
        if launch is None:
            launch = Launch(self._settings(), self.token)
        self.token = launch.token
        proc, tail = launch.proc, launch.stderr
        self._proc, self._stderr = proc, tail
        drivers = wire.pack_message({"drivers": [[name, driver.source] for name, driver in self.drivers.items()]})
        try:
            launch.boot_sent(time.monotonic() + START_TIMEOUT_S)
            self._write(drivers, time.monotonic() + START_TIMEOUT_S)
            ready, _ = self._read_message(time.monotonic() + START_TIMEOUT_S, 1 << 20, 0)
        except (_Deadline, _WorkerGone, ProtocolError, OSError) as exc:
            kill_tree(proc)
            tail.join(timeout=2)
            detail = tail.tail().splitlines()
            self._proc = None
            raise RuntimeError(f"sandbox worker did not start: {type(exc).__name__}"
                               f"{': ' + detail[-1] if detail else ''}") from None
        self._finalizer = weakref.finalize(self, kill_tree, proc)
        self._record_layers(ready)

    def _record_layers(self, ready: dict[str, Any]) -> None:
        probed = ready.get("layers", {}) if isinstance(ready.get("layers"), dict) else {}
        active = []
        if self._bwrap:
            active.append("bwrap")
        for layer, enabled in (("landlock", self._landlock), ("seccomp", self._seccomp)):
            state = probed.get(layer)
            if enabled and state == "ok":
                active.append(layer)
                self.missing.pop(layer, None)
            elif enabled:
                self.missing[layer] = str(state or probed.get("error") or "probe failed")
                if layer in self._demanded:
                    self._stop_worker()
                    raise RuntimeError(f"{layer} was required but does not work here: {self.missing[layer]}")
        if probed.get("privileges") == "ok":
            active.append("no-privileges")
        else:
            self.missing["no-privileges"] = str(probed.get("privileges") or probed.get("error") or "probe failed")
        active += ["rlimits", "timeout"]
        if self.tripwires:
            active += ["audit-hook", "restricted-builtins"]
        else:
            self.missing["audit-hook"] = self.missing["restricted-builtins"] = "disabled"
        self.layers = [layer for layer in LAYER_ORDER if layer in active]
        self.worker_pid = self._proc.pid if self._proc is not None else None
        zygote = ready.get("zygote_pid")  # in the worker's pid namespace when bwrap gives it one
        self.zygote_pid = zygote if isinstance(zygote, int) and not isinstance(zygote, bool) else None

    def _stop_worker(self, wait: bool = True) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if self._finalizer is not None:
                self._finalizer.detach()
            kill_tree(proc)
        if self._stderr is not None and wait:  # its end of file: every process under the worker has exited
            self._stderr.join(timeout=2)

    def close(self, wait: bool = True) -> None:
        """Stop the worker and everything under it (killed at once: it holds nothing worth a clean exit).

        ``wait=False`` returns without waiting for the killed processes to be gone (tens of milliseconds
        while their memory is freed): for a command about to exit."""
        with self._lock:
            self._stop_worker(wait)

    # --- pipe helpers --------------------------------------------------------------------------

    def _write(self, data: bytes | list[Any], deadline: float) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        fd = proc.stdin.fileno()
        os.set_blocking(fd, False)
        parts = data if isinstance(data, list) else [data]
        for part in parts:
            view = memoryview(part).cast("B")
            while view:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Deadline()
                _, writable, _ = select.select([], [fd], [], left)
                if not writable:
                    continue
                try:
                    view = view[os.write(fd, view):]
                except BlockingIOError:
                    continue
                except (BrokenPipeError, OSError) as exc:
                    raise _WorkerGone(str(exc)) from None

    def _read_exact(self, n: int, deadline: float) -> bytes:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        chunks, left = [], n
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise _Deadline()
            ready, _, _ = select.select([fd], [], [], wait)
            if not ready:
                continue
            chunk = os.read(fd, min(left, 1 << 22))
            if not chunk:
                raise _WorkerGone("worker closed its pipe")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _read_message(self, deadline: float, max_header: int, max_body: int) -> tuple[dict[str, Any], bytearray]:
        return wire.read_message(lambda n: self._read_exact(n, deadline), max_header, max_body)

    # --- running -------------------------------------------------------------------------------

    def run(self, region: str, frames: list[Frame], timeout_s: float | None = None,
            task: str | None = None) -> RunOutcome:
        """Run ``region`` on every frame, each in its own fresh child; metrics are the caller's job.

        A frame is a tuple of DataFrames (one per instrument) and its result is the driver's decoded
        tuple (one per instrument); a bare DataFrame is a panel of one and its result is unwrapped.
        ``task`` picks the driver (default: the first). ``timeout_s`` bounds the whole run, all frames.
        """
        name = next(iter(self.drivers)) if task is None else task
        if name not in self.drivers:
            raise ValueError(f"unknown task {task!r}; this sandbox has drivers for {', '.join(self.drivers)}")
        if not isinstance(region, str):
            raise TypeError(f"region must be a str, got {type(region).__name__}")
        if not frames:
            raise ValueError("run() needs at least one frame")
        timeout = self.timeout_s if timeout_s is None else float(timeout_s)
        if not timeout > 0:
            raise ValueError(f"timeout must be positive, got {timeout_s!r}")
        panels = [tuple(f) if isinstance(f, tuple) else (f,) for f in frames]
        if any(not panel for panel in panels):
            raise ValueError("a frame needs at least one instrument")
        specs, parts = wire.encode_panels(panels)
        header = {"op": "run", "region": region, "timeout": timeout, "memory_mb": self.memory_mb,
                  "frames": specs, "task": name}
        max_body = sum(wire.max_result_bytes(sum(len(df) for df in panel)) for panel in panels)
        size = sum(spec["nbytes"] for spec in specs)
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._stop_worker()
                try:
                    self._start()
                except RuntimeError as exc:
                    return RunOutcome("crash", clean_text(f"could not restart the sandbox worker: {exc}",
                                                           REASON_LIMIT, False), None, "", 0.0, worker_fault=True)
            started = time.monotonic()
            deadline = started + timeout + GRACE_S + size / 20e6
            try:
                self._write(wire.pack_message(header, parts), deadline)
                reply, reply_body = self._read_message(deadline, 1 << 26, max_body)
            except _Deadline:
                self._stop_worker()
                return RunOutcome("timeout", f"exceeded the {timeout:g} s time limit (worker unresponsive)",
                                  None, "", time.monotonic() - started)
            except (_WorkerGone, ProtocolError, OSError) as exc:
                tail = self._stderr.tail() if self._stderr is not None else ""
                self._stop_worker()
                reason = f"sandbox worker died ({exc})"
                return RunOutcome("crash", clean_text(reason, REASON_LIMIT, False), None,
                                  clean_text(tail, LOG_LIMIT, True), time.monotonic() - started, worker_fault=True)
            seconds = time.monotonic() - started
        outcome = self._outcome(reply, reply_body, panels, seconds, self.drivers[name].decode)
        if outcome.results is not None and self.drivers[name].decode is not None:
            outcome.results = [r if isinstance(f, tuple) else r[0]
                               for f, r in zip(frames, outcome.results, strict=True)]
        return outcome

    def _outcome(self, reply: dict[str, Any], body: bytearray, panels: list[tuple[pd.DataFrame, ...]],
                 seconds: float, decode: Decoder | None) -> RunOutcome:
        status = reply.get("status")
        log = clean_text(reply.get("log"), LOG_LIMIT, True)
        dropped = reply.get("log_dropped")
        if isinstance(dropped, int) and dropped > 0:
            log = f"[... {dropped} earlier bytes of output dropped]\n{log}"
        if status not in STATUSES:
            return RunOutcome("crash", "the sandbox worker sent an unknown status", None, log, seconds)
        reason = clean_text(reply.get("reason"), REASON_LIMIT, False)
        if status != "ok":
            return RunOutcome(status, reason or status.replace("_", " "), None, log, seconds)
        try:
            results = self._results(reply.get("frames"), body, panels, decode)
        except (ProtocolError, ValueError, TypeError) as exc:
            return RunOutcome("bad_output", clean_text(str(exc), REASON_LIMIT, False), None, log, seconds)
        return RunOutcome("ok", "", results, log, seconds)

    @staticmethod
    def _results(described: Any, body: bytearray, panels: list[tuple[pd.DataFrame, ...]],
                 decode: Decoder | None) -> list[Any]:
        """Turn each frame's buffers into named arrays, then into the driver's results, trusting nothing.

        Every name must be plain text (``NAME_PATTERN``: names reach logs, prompts and the report); the
        driver's ``decode`` checks the arrays' shapes and values against the frame's instruments.
        """
        if not isinstance(described, list) or len(described) != len(panels):
            raise ProtocolError("result does not cover every input frame")
        results: list[Any] = []
        for desc, panel in zip(described, panels, strict=True):
            arrays = wire.decode_arrays(desc.get("arrays") if isinstance(desc, dict) else None, body)
            for name in arrays:
                if not NAME_PATTERN.fullmatch(name):
                    raise ValueError(f"feature name {ascii(name)[:60]} is not allowed: column names may use only "
                                     "letters, digits, spaces and _ . - + : % ( ) [ ] , ' / = * (rename the column)")
            results.append(tuple(decode(arrays, panel)) if decode is not None else arrays)
        return results
