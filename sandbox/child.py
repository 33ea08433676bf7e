"""What runs in a frame's child: read its one frame, lock down, run the candidate, send arrays, exit.

Each frame of a run (the full run, every probe, every rerun) gets a child of its own, forked by the
zygote (``sandbox/worker.py``), a process that imported the libraries and the task drivers but never
held any frame's or candidate's data. The child reads its region and its frame from its own pipe,
closes it, locks itself down (rlimits, Landlock, seccomp, an audit hook and restricted builtins),
executes the region in fresh globals, calls the task driver's ``run_frame(namespace, frame)`` and
writes back only named float64 arrays (a JSON header and raw buffers, never pickle), then exits:
nothing it computed, cached or left in freed memory can reach another frame, and its outputs are
sealed the moment it exits. The parent validates every array.

This module is shipped to the worker as source text (see ``launch.SHIPPED``): inside bubblewrap the
project folder is not visible. It imports only the standard library, numpy, pandas and the sandbox
modules shipped before it.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from typing import Any

import numpy as np
import pandas as pd

from sandbox.lockdown import (
    PR_SET_PDEATHSIG,
    apply_landlock,
    apply_seccomp,
    drop_privileges,
    install_tripwire,
    prctl,
    set_rlimits,
    vm_size,
)
from sandbox.wire import decode_frames, encode_arrays, fd_reader, pack_message, read_message, write_all

CANDIDATE_FILENAME = "<candidate>"
DRIVER_FILENAME = "<driver>"
RESULT_FD = 3


def child_main(zygote: Any, fds: list[int], max_input: int) -> None:
    """In the forked child: take the frame from ``fds`` (input, result, log pipes); never returns."""
    in_r, res_w, log_w = fds
    # Every child inherits the zygote's numpy generator state, so unseeded draws would agree across frames
    # and pass the probes unseen; a fresh state per child makes them differ, and the full-run rerun names them.
    np.random.seed(int.from_bytes(os.urandom(4), "little"))
    try:
        os.setpgid(0, 0)
        prctl(zygote.libc, PR_SET_PDEATHSIG, signal.SIGKILL)
        os.dup2(in_r, 0)
        os.dup2(log_w, 1)
        os.dup2(log_w, 2)
        os.dup2(res_w, RESULT_FD)
        os.closerange(RESULT_FD + 1, 1 << 16)
        header, body = read_message(fd_reader(0), 1 << 26, max_input)
        null = os.open("/dev/null", os.O_RDONLY)  # the input pipe goes: nothing more can arrive through it
        os.dup2(null, 0)
        os.close(null)
        frame = tuple(decode_frames(header["frame"], body))
        del body
        driver = zygote.drivers[header["task"]]
        region = header["region"]
        timeout, memory_mb = float(header["timeout"]), int(header["memory_mb"])
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        set_rlimits(timeout, vm_size() + memory_mb * (1 << 20))
    except BaseException as exc:
        _send({"status": "exception", "reason": f"sandbox setup failed: {type(exc).__name__}: {exc}"})
        os._exit(71)
    _run(zygote, driver, region, frame)



def _run(zygote: Any, driver: Any, region: str, frame: tuple[pd.DataFrame, ...]) -> None:
    sent = False

    def violation(what: str) -> None:
        nonlocal sent
        if not sent:
            sent = True
            _send({"status": "exception", "reason": f"sandbox violation: blocked {what}"})
        os._exit(72)

    try:
        code = compile(region, CANDIDATE_FILENAME, "exec")
        _lock_down(zygote)
        if zygote.want["tripwires"]:
            install_tripwire(zygote.read_roots, violation)
            env: dict[str, Any] = {"__builtins__": dict(zygote.builtins)}
        else:
            import builtins

            env = {"__builtins__": builtins}
        env.update({"__name__": "candidate", "pd": pd, "np": np})
        exec(code, env)
        missing = [name for name in getattr(driver, "FUNCTIONS", ()) if not callable(env.get(name))]
        if missing:
            sent = True
            _send({"status": "missing_output", "reason": f"the region does not define {' and '.join(missing)}"})
            return
        described, parts = encode_arrays(driver.run_frame(env, frame))
        sent = True
        _send({"status": "ok", "arrays": described}, parts)
    except BaseException as exc:
        if not sent:
            sent = True
            try:
                failure = _describe_failure(exc, region, driver)
            except BaseException:
                failure = {"status": "exception", "reason": f"{type(exc).__name__} (unprintable)"}
            _send(failure)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(0)


# Bar columns some data lacks (index and FX files have no Volume, close-only files only Close): a KeyError
# naming one is the data's shape, not a bug in the candidate's logic, and the reason says so.
BAR_COLUMNS = frozenset({"Open", "High", "Low", "Close", "Volume", "Adj Close"})


def _lock_down(zygote: Any) -> None:
    """The layers the worker proved work here, applied to this child before any candidate code runs."""
    if zygote.layers.get("privileges") == "ok":
        state = drop_privileges(zygote.libc, zygote.pid_namespace)
        if state != "ok":
            raise RuntimeError(state)
    if zygote.want["landlock"] and zygote.layers.get("landlock") == "ok":
        state = apply_landlock(zygote.libc, zygote.read_roots)
        if state != "ok":
            raise RuntimeError(state)
    if zygote.seccomp is not None and zygote.layers.get("seccomp") == "ok":
        apply_seccomp(zygote.libc, zygote.seccomp)


def _describe_failure(exc: BaseException, region: str, driver: Any) -> dict[str, Any]:
    if isinstance(exc, MemoryError):
        return {"status": "memory", "reason": f"MemoryError{_where(exc, region)}"}
    if isinstance(exc, getattr(driver, "BadOutput", ())):
        return {"status": "bad_output", "reason": _one_line(str(exc))}
    frames = traceback.extract_tb(exc.__traceback__)
    if frames and frames[-1].filename == DRIVER_FILENAME and isinstance(exc, (TypeError, ValueError)):
        return {"status": "bad_output", "reason": _one_line(str(exc))}
    message = _one_line(str(exc))
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    if isinstance(exc, KeyError) and exc.args and exc.args[0] in BAR_COLUMNS:
        text += f": the data has no {exc.args[0]} column (its manifest's missing_columns lists what it lacks)"
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


def _send(header: dict[str, Any], parts: list[bytes | memoryview] | None = None) -> None:
    try:
        write_all(RESULT_FD, pack_message(header, parts))
    except (OSError, ValueError, TypeError):
        pass
