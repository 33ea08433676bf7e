"""What runs inside the sandbox: the warm worker, and the per-candidate child it forks.

This module is shipped to the worker as source text after ``wire``, ``lockdown`` and ``watch``
(see ``runner.SHIPPED``; inside bubblewrap the project folder is not visible); the parent sends
the source of ``alphaloop/candidate.py`` along with them and the worker builds that module from
text. The wire format lives in ``sandbox/wire.py``, the lockdown layers in ``sandbox/lockdown.py``.

Flow of one run: the parent sends the region and the input frames; the worker rebuilds the
frames, forks a child, and the child locks itself down (rlimits, Landlock, seccomp, an audit hook
and restricted builtins), runs the candidate, and writes back only arrays: the signals and the
numeric feature columns, as raw little-endian float64 buffers described by a JSON header (never
pickle); for the forecast task also the probabilities and codes of ``sandbox/forecasts.py``.
The worker watches the clock, kills the child and anything it left behind, and reports
how it ended. The child never computes a score; the parent validates every array it receives.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from sandbox.forecasts import decode_forecasts
from sandbox.lockdown import (
    PR_SET_CHILD_SUBREAPER,
    PR_SET_DUMPABLE,
    PR_SET_PDEATHSIG,
    apply_landlock,
    apply_seccomp,
    drop_privileges,
    install_tripwire,
    load_libc,
    prctl,
    probe_landlock,
    probe_seccomp,
    restricted_builtins,
    seccomp_program,
    set_rlimits,
    vm_size,
)
from sandbox.watch import Watch, children_of, is_bwrap_init, reap_all
from sandbox.wire import (
    MAX_FEATURES,
    MAX_NAME_CHARS,
    BodyBuilder,
    ProtocolError,
    decode_frames,
    max_result_bytes,
    pack_message,
    read_message,
    write_all,
)

CANDIDATE_FILENAME = "<candidate>"
CANDIDATE_MODULE_FILENAME = "<alphaloop/candidate.py>"
RESULT_FD = 3


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


class Worker:
    """The long-lived process: pandas imported once, layers probed once, a fork per candidate."""

    def __init__(self, init: dict[str, Any]) -> None:
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
        self.candidate = _module_from_source("alphaloop_candidate", init["candidate_src"])
        self.builtins = restricted_builtins(init["builtins"])
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
            self.seccomp = seccomp_program(pyseccomp)
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
            horizons = _forecast_horizons(header)
        except Exception as exc:
            return {"status": "crash", "reason": f"worker could not rebuild the input frames: {exc}"}, []
        del body
        max_body = max_result_bytes(sum(len(f) for f in frames), len(horizons or ()))
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
            _child_main(self, header["region"], frames, timeout, memory_mb, res_w, log_w, horizons)
            os._exit(70)
        os.close(res_w)
        os.close(log_w)
        watch = Watch(pid, res_r, log_r, max_body)
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
            reap_all()
            return
        for _ in range(200):
            reap_all()
            children = children_of(os.getpid())
            if not children:
                return
            for child in children:
                try:
                    os.kill(child, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.002)


def _forecast_horizons(header: dict[str, Any]) -> tuple[int, ...] | None:
    """None for the trade task; the horizons to decode for the forecast task (``header["task"]``)."""
    task = header.get("task", "trade")
    if task == "trade":
        return None
    horizons = header.get("horizons")
    if task != "forecast" or not isinstance(horizons, list) or not horizons or not all(
            isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in horizons):
        raise ValueError(f"unknown task {task!r} or bad horizons")
    return tuple(horizons)


def _module_from_source(name: str, source: str) -> Any:
    import types

    module = types.ModuleType(name)
    module.__file__ = CANDIDATE_MODULE_FILENAME
    exec(compile(source, CANDIDATE_MODULE_FILENAME, "exec"), module.__dict__)
    return module


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


def _child_main(worker: Worker, region: str, frames: list[pd.DataFrame], timeout: float,
                memory_mb: int, res_w: int, log_w: int, horizons: tuple[int, ...] | None = None) -> None:
    """Lock down, run the candidate on every frame, send back arrays; never returns."""
    try:
        os.setpgid(0, 0)
        prctl(worker.libc, PR_SET_PDEATHSIG, signal.SIGKILL)
        null = os.open("/dev/null", os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log_w, 1)
        os.dup2(log_w, 2)
        os.dup2(res_w, RESULT_FD)
        os.closerange(RESULT_FD + 1, 1 << 16)
        sys.stdout = open(1, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        sys.stderr = open(2, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)
        set_rlimits(timeout, vm_size() + memory_mb * (1 << 20))
    except BaseException as exc:
        _send(RESULT_FD, {"status": "exception", "reason": f"sandbox setup failed: {exc}"})
        os._exit(71)
    _child_run(worker, region, frames, horizons)


def _child_run(worker: Worker, region: str, frames: list[pd.DataFrame], horizons: tuple[int, ...] | None) -> None:
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
            state = drop_privileges(worker.libc, worker.pid_namespace)
            if state != "ok":
                raise RuntimeError(state)
        if worker.want["landlock"] and worker.layers.get("landlock") == "ok":
            state = apply_landlock(worker.libc, worker.read_roots)
            if state != "ok":
                raise RuntimeError(state)
        if worker.seccomp is not None and worker.layers.get("seccomp") == "ok":
            apply_seccomp(worker.libc, worker.seccomp)
        if worker.want["tripwires"]:
            install_tripwire(worker.read_roots, violation)
            env: dict[str, Any] = {"__builtins__": dict(worker.builtins)}
        else:
            import builtins

            env = {"__builtins__": builtins}
        env.update({"__name__": "candidate", "pd": pd, "np": np})
        exec(code, env)
        second = "strategy_logic" if horizons is None else "forecast"
        gf, sl = env.get("generate_features"), env.get(second)
        missing = [n for n, f in (("generate_features", gf), (second, sl)) if not callable(f)]
        if missing:
            sent = True
            _send(RESULT_FD, {"status": "missing_output",
                              "reason": f"the region does not define {' and '.join(missing)}"})
            return
        header, parts = _compute(worker.candidate, gf, sl, frames, horizons)
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


# Bar columns some data lacks (index and FX files have no Volume, close-only files only Close): a KeyError
# naming one is the data's shape, not a bug in the candidate's logic, and the reason says so.
BAR_COLUMNS = frozenset({"Open", "High", "Low", "Close", "Volume", "Adj Close"})


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


def _compute(candidate: Any, gf: Callable[..., Any], sl: Callable[..., Any], frames: list[pd.DataFrame],
             horizons: tuple[int, ...] | None = None) -> tuple[dict[str, Any], list[bytes | memoryview]]:
    """Run the candidate on every frame; the arrays to send and their description.

    Trade task: ``sl`` is ``strategy_logic`` and the signals are checked here (and again by the parent).
    Forecast task: ``sl`` is ``forecast``; its per-row mappings are decoded into probabilities and codes
    (``sandbox.forecasts``) and sent with all-zero signals; only the parent judges them.
    """
    body = BodyBuilder()
    out = []
    for i, df in enumerate(frames):
        extra: dict[str, Any] = {}
        if horizons is None:
            features, raw = candidate.compute_signals(gf, sl, df)
        else:
            features, rows = candidate.compute_forecast_rows(gf, sl, df)
            decoded = decode_forecasts(rows, horizons)
            extra = {"forecasts": body.add(decoded.probs), "codes": body.add(decoded.codes, "<i1")}
            raw = np.zeros(len(df), dtype=np.int8)
        if not features.index.equals(df.index):  # signals are matched to bars by position: order must hold
            raise _BadOutput(f"frame {i}: generate_features changed the index; keep one row per input bar, in order")
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
        out.append({"n": len(df), "signals": body.add(signals.astype(np.float64)), "features": columns, **extra})
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


def _send(fd: int, header: dict[str, Any], parts: list[bytes | memoryview] | None = None) -> None:
    try:
        write_all(fd, pack_message(header, parts))
    except (OSError, ValueError):
        pass
