"""The sandbox worker and its zygote: a clean process per frame, forked from a process that holds no data.

The worker is started once by the parent (``sandbox/runner.py``), inside bubblewrap when that works.
It builds the shipped modules and the task drivers from source, imports pandas and numpy, warms
pandas' lazy imports on a synthetic frame, probes which lockdown layers work, and then forks the
ZYGOTE, before it has read any request. From then on the worker reads requests and results (so its
memory holds data), but it never forks again: every frame's child is forked by the zygote, which
only ever receives three pipe descriptors and a size over a socket. A child therefore starts from
libraries, drivers and synthetic warm-up state only: no earlier frame, run or candidate left
anything in its memory (``np.empty`` included) or in its module globals.

Flow of one run: the parent sends the region and every frame; for each frame in turn the worker
makes three pipes (input, result, log), hands the child's ends to the zygote, which forks the child
and reports its pid, then its exit status and peak memory once it has reaped it and killed
anything it left behind. The worker writes the child's message (the region and that frame's bytes,
nothing of another frame) into the input pipe, collects the result and the log, kills the child
at the run's deadline, and stops at the first frame that fails. Each frame's arrays are final when
its child exits (sealed): no later frame can rewrite them.

This module is shipped to the worker as source text (see ``launch.SHIPPED``) and imports only the
standard library, numpy, pandas and the sandbox modules shipped before it.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from sandbox.child import DRIVER_FILENAME, child_main
from sandbox.lockdown import (
    PR_SET_CHILD_SUBREAPER,
    PR_SET_DUMPABLE,
    PR_SET_PDEATHSIG,
    apply_landlock,
    apply_seccomp,
    confine_time_zones,
    drop_privileges,
    load_libc,
    prctl,
    probe_landlock,
    probe_seccomp,
    restricted_builtins,
    seccomp_program,
    set_rlimits,
)
from sandbox.watch import Watch, ZygoteGone, is_bwrap_init, reap_all
from sandbox.wire import (
    ProtocolError,
    decode_frames,
    encode_arrays,
    encode_panels,
    fd_reader,
    max_result_bytes,
    pack_message,
    read_message,
    write_all,
)

SPAWN = struct.Struct("<q")
EXITED = struct.Struct("<qqd")


def worker_main(init: dict[str, Any]) -> None:
    """Serve run requests on fd 0/1 until the parent closes the pipe; one child per frame."""
    resp_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.dont_write_bytecode = True
    worker = Worker(init, resp_fd)
    booted = init.get("drivers")
    if booted is not None:  # a command that knew its task: warm and fork now, while the parent still imports
        worker.start(booted)
    try:
        header, _ = read_message(fd_reader(0), 1 << 24, 0)  # the drivers: sent when the parent takes this worker
    except (ProtocolError, EOFError):
        return
    if booted is None:
        worker.start(header.get("drivers"))
    elif header.get("drivers") != booted:
        os._exit(3)  # the parent takes a worker only with the drivers it booted with; anything else is a fault
    write_all(resp_fd, pack_message(worker.handshake()))
    while True:
        try:
            header, body = read_message(fd_reader(0), 1 << 26, 1 << 34)
        except (ProtocolError, EOFError):
            return
        if header.get("op") != "run":
            return
        reply, parts = worker.run(header, body)
        del body
        try:
            message = pack_message(reply, parts)
        except (TypeError, ValueError) as exc:  # whatever a child sent, the worker keeps serving
            message = pack_message({"status": "bad_output", "reason": f"unencodable result ({type(exc).__name__})"})
        write_all(resp_fd, message)



def _module_from_source(name: str, source: str, filename: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = filename
    sys.modules[name] = module  # dataclasses and typing look their module up by name
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


class Worker:
    """The long-lived process: libraries imported and layers probed once, then the zygote forked."""

    def __init__(self, init: dict[str, Any], resp_fd: int) -> None:
        self.want: dict[str, bool] = init["want"]
        self.read_roots: list[str] = [r for r in init["read_roots"] if os.path.exists(r)]
        self.libc = load_libc()
        prctl(self.libc, PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != init["parent_pid"] and not init["pid_namespace"]:
            os._exit(4)
        self.pid_namespace = bool(init["pid_namespace"]) and os.getpid() == 2 and is_bwrap_init()
        if not self.pid_namespace:
            prctl(self.libc, PR_SET_CHILD_SUBREAPER, 1)
        prctl(self.libc, PR_SET_DUMPABLE, 0)
        self.resp_fd = resp_fd
        self.frames_at_once = max(1, int(init.get("frames_at_once", 1)))  # zygotes: frames run side by side
        self.drivers: dict[str, types.ModuleType] = {}
        self.builtins = restricted_builtins(init["builtins"])
        self.seccomp: Any = None
        self.notes: dict[str, str] = {}
        if self.want["seccomp"]:
            self._prepare_seccomp(init.get("libs", {}))
        confine_time_zones()  # before any child exists: a computed time-zone name cannot probe host paths
        "sandbox".encode("idna")  # a codec loaded from disk: a child running as another uid may not read it
        self.layers: dict[str, Any] = {}
        self._probing = self._start_probe()  # runs on another core while the drivers are built and warmed

    def start(self, drivers: Any) -> None:
        """Build and warm the task drivers, then fork the zygote: the last step before any request."""
        if not isinstance(drivers, list):
            os._exit(3)
        self.drivers = {name: _module_from_source(f"sandbox_driver_{name}", source, DRIVER_FILENAME)
                        for name, source in drivers}
        for driver in self.drivers.values():
            _prewarm(driver)
        self.layers = self._finish_probe(*self._probing)
        # BOOT turned the cyclic collector off for the imports and the warm-up (a collection then only walks
        # the libraries' objects, which stay: a full one found nothing to free and cost 10-20 ms); now they are
        # frozen, so neither this process nor a child ever walks them again: fewer pages copied on write.
        gc.freeze()
        gc.enable()
        self.zygotes: list[Zygote] = []
        for _ in range(self.frames_at_once):
            self.zygotes.append(Zygote(self, self.resp_fd, [z.sock for z in self.zygotes]))

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
            self.seccomp = seccomp_program(pyseccomp)
        except Exception as exc:
            self.notes["seccomp"] = f"could not build a seccomp filter ({type(exc).__name__}: {exc})"

    def _start_probe(self) -> tuple[int, int]:
        """Fork once, lock down, and try what each layer must stop; ``_finish_probe`` reads what really works."""
        import socket as _socket  # noqa: F401  (imported here: the probe child may no longer read the stdlib)

        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            report: dict[str, Any] = {}
            try:
                set_rlimits(600, 1 << 40)
                report["privileges"] = drop_privileges(self.libc, self.pid_namespace)
                report["landlock"] = apply_landlock(self.libc, self.read_roots) if self.want["landlock"] else "disabled"
                if self.seccomp is not None:
                    apply_seccomp(self.libc, self.seccomp)
                    report["seccomp"] = probe_seccomp()
                else:
                    report["seccomp"] = self.notes.get("seccomp", "disabled")
                if report["landlock"] == "ok":
                    report["landlock"] = probe_landlock()
            except BaseException as exc:
                report["error"] = f"{type(exc).__name__}: {exc}"
            write_all(w, [json.dumps(report).encode()])
            os._exit(0)
        os.close(w)
        return pid, r

    @staticmethod
    def _finish_probe(pid: int, r: int) -> dict[str, Any]:
        """The probe child's report (it exits once written)."""
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        try:
            return json.loads(data.decode() or "{}")
        except ValueError:
            return {"error": "probe child died"}

    def handshake(self) -> dict[str, Any]:
        return {
            "op": "ready", "layers": self.layers, "pid_namespace": self.pid_namespace,
            "zygote_pid": self.zygotes[0].pid,
            "python": sys.version.split()[0], "numpy": np.__version__, "pandas": pd.__version__,
        }

    def run(self, header: dict[str, Any], body: bytearray) -> tuple[dict[str, Any], list[bytes | memoryview]]:
        """Run the region on every frame of the request, each in a fresh child, up to one child per zygote
        at a time; the earliest frame that fails is the run's outcome (later frames are not started).

        The longest frames start first: a frame's child costs ~15 ms however short the frame, so starting
        the full-length ones last left one zygote running the last of them alone (14 probe frames of a
        4,276-row history: ~8 ms of ~150 ms). Every frame before a failed one still runs, so the outcome
        is the one running them in order gives."""
        started = time.monotonic()
        try:
            timeout, memory_mb = float(header["timeout"]), int(header["memory_mb"])
            task, region, frames = header["task"], header["region"], header["frames"]
            if task not in self.drivers or not isinstance(region, str) or not isinstance(frames, list):
                raise ValueError(f"unknown task {task!r} or malformed request")
            rows = [sum(int(spec["n"]) for spec in frame["specs"]) for frame in frames]
        except (KeyError, TypeError, ValueError) as exc:
            return {"status": "crash", "reason": f"worker could not read the request: {exc}"}, []
        deadline = started + timeout
        view = memoryview(body)
        done: dict[int, tuple[dict[str, Any], bytearray]] = {}
        order = sorted(range(len(frames)), key=lambda k: -rows[k])  # longest first, then in request order
        state = {"next": 0, "failed": len(frames)}
        lock = threading.Lock()

        def serve(zygote: Zygote) -> None:
            while True:
                with lock:
                    while state["next"] < len(order) and order[state["next"]] >= state["failed"]:
                        state["next"] += 1
                    if state["next"] >= len(order):
                        return
                    i = order[state["next"]]
                    state["next"] += 1
                frame = frames[i]
                left = deadline - time.monotonic()
                if left <= 0:
                    outcome: tuple[dict[str, Any], bytearray] = (
                        {"status": "timeout", "reason": f"exceeded the {timeout:g} s time limit"}, bytearray())
                else:
                    start, nbytes = int(frame["offset"]), int(frame["nbytes"])
                    child_header = {"region": region, "task": task, "frame": frame["specs"], "timeout": left,
                                    "memory_mb": memory_mb}
                    message = pack_message(child_header, [view[start:start + nbytes]])
                    try:
                        outcome = zygote.run(message, max_result_bytes(rows[i]), deadline, timeout, memory_mb,
                                             lambda i=i: state["failed"] < i)  # killed once an earlier frame failed
                    except ZygoteGone:
                        os._exit(5)  # the parent sees the worker die and restarts it: never fork from this process
                with lock:
                    done[i] = outcome
                    if outcome[0]["status"] != "ok":
                        state["failed"] = min(state["failed"], i)

        helpers = [threading.Thread(target=serve, args=(z,), daemon=True) for z in self.zygotes[1:len(frames)]]
        for helper in helpers:
            helper.start()
        serve(self.zygotes[0])
        for helper in helpers:
            helper.join()
        return _assemble([done[i] for i in range(min(state["failed"] + 1, len(frames)))])


def _assemble(outcomes: list[tuple[dict[str, Any], bytearray]]) -> tuple[dict[str, Any], list[bytes | memoryview]]:
    """One reply for the frames in order: their logs joined, and the first failure or every frame's arrays."""
    described: list[dict[str, Any]] = []
    parts: list[bytes | memoryview] = []
    size, log, dropped = 0, "", 0
    for i, (reply, result) in enumerate(outcomes):
        log = (log + reply.pop("log", ""))[-8192:]
        dropped += int(reply.pop("log_dropped", 0))
        if reply["status"] != "ok":
            return {**reply, "frame": i, "log": log, "log_dropped": dropped}, []
        arrays = []
        for spec in reply["arrays"]:
            if not isinstance(spec, dict) or not all(isinstance(spec.get(k), int) for k in ("offset", "nbytes")):
                return {"status": "bad_output", "reason": "malformed array description from the candidate process",
                        "log": log, "log_dropped": dropped}, []
            arrays.append({**spec, "offset": spec["offset"] + size})
        described.append({"arrays": arrays})
        parts.append(result)
        size += len(result)
    return {"status": "ok", "frames": described, "log": log, "log_dropped": dropped}, parts


def _prewarm(driver: Any) -> None:
    """Run the driver once on a synthetic frame, so pandas' lazy imports happen before the zygote forks."""
    source = getattr(driver, "PREWARM_REGION", None)
    if not source:
        return
    idx = pd.date_range("2020-01-01", periods=64, freq="B", name="Date")
    close = np.linspace(100.0, 110.0, 64)
    df = pd.DataFrame({"Open": close, "High": close + 1, "Low": close - 1, "Close": close,
                       "Volume": np.full(64, 1e6)}, index=idx)
    env: dict[str, Any] = {"pd": pd, "np": np}
    exec(compile(source, "<prewarm>", "exec"), env)
    specs, parts = encode_panels([(df, df.copy())])  # the child's whole path: rebuild the frame, run, encode
    body = bytearray(b"".join(bytes(memoryview(part).cast("B")) for part in parts))
    encode_arrays(driver.run_frame(env, tuple(decode_frames(specs[0]["specs"], body))))


class Zygote:
    """The worker's handle on the zygote: a process forked before any data arrived, that forks children."""

    def __init__(self, worker: Worker, resp_fd: int, others: list[socket.socket]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            for sock in [ours, *others]:  # another zygote's socket: that zygote must see EOF when the worker goes
                sock.close()
            _zygote_main(worker, theirs, resp_fd)
            os._exit(0)
        theirs.close()
        self.pid, self.sock = pid, ours

    def run(self, message: list[bytes | memoryview], max_body: int, deadline: float, timeout: float,
            memory_mb: int, stop: Callable[[], bool] | None = None) -> tuple[dict[str, Any], bytearray]:
        """One frame in one fresh child: its reply (status, reason, arrays, log) and its result body."""
        fds = [os.pipe() for _ in range(3)]  # input, result, log
        (in_r, in_w), (res_r, res_w), (log_r, log_w) = fds
        max_input = sum(len(memoryview(p).cast("B")) for p in message)
        try:
            socket.send_fds(self.sock, [SPAWN.pack(max_input)], [in_r, res_w, log_w])
            answer = self.sock.recv(64)
        except OSError as exc:
            for fd in (in_r, in_w, res_r, res_w, log_r, log_w):
                os.close(fd)
            raise ZygoteGone(str(exc)) from None
        finally:
            for fd in (in_r, res_w, log_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
        pid = SPAWN.unpack(answer)[0] if len(answer) == SPAWN.size else -2
        if pid < 0:
            for fd in (in_w, res_r, log_r):
                os.close(fd)
            if pid == -2:
                raise ZygoteGone("no answer from the zygote")
            return {"status": "crash", "reason": "could not start the candidate process"}, bytearray()
        watch = Watch(pid, self.sock, in_w, message, res_r, log_r, max_body)
        try:
            watch.follow(deadline, stop)
            watch.drain(time.monotonic() + 0.5)
        finally:
            watch.close()
        return watch.outcome(timeout, memory_mb)


def _zygote_main(worker: Worker, sock: socket.socket, resp_fd: int) -> None:
    """Fork a child per request and report its pid, then its exit; never touches a frame's data."""
    prctl(worker.libc, PR_SET_PDEATHSIG, signal.SIGKILL)
    prctl(worker.libc, PR_SET_CHILD_SUBREAPER, 1)  # whatever a child leaves behind comes back here to be killed
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)  # the parent's request pipe: a child must never be able to read it
    os.close(null)
    os.close(resp_fd)
    while True:
        try:
            request, fds, _, _ = socket.recv_fds(sock, 64, 3)
        except OSError:
            os._exit(0)
        if len(request) != SPAWN.size or len(fds) != 3:
            for fd in fds:
                os.close(fd)
            if not request:
                os._exit(0)
            continue
        try:
            pid = os.fork()
        except OSError:
            pid = -1
        if pid == 0:
            child_main(worker, fds, SPAWN.unpack(request)[0])
            os._exit(70)
        for fd in fds:
            os.close(fd)
        sock.send(SPAWN.pack(pid))
        if pid < 0:
            continue
        _, status, usage = os.wait4(pid, 0)
        _sweep(pid)
        sock.send(EXITED.pack(pid, status, float(usage.ru_maxrss)))


def _sweep(pid: int) -> None:
    """Kill whatever the child left behind (a detached grandchild comes back to the zygote, a subreaper)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass
    for _ in range(200):
        reap_all()
        try:
            os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return  # no child left at all: the usual case, decided without reading /proc
        for child in _children():
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.002)


def _children() -> list[int]:
    """This process's children, from /proc/self/task/*/children."""
    found: list[int] = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/children", "rb") as fh:
                found += [int(p) for p in fh.read().split()]
        except (OSError, ValueError):
            continue
    return found
