"""Starting the sandbox worker process, possibly before the parent has imported pandas.

Runs in the trusted parent only (never shipped); imports only the standard library and the
parent-side sandbox modules, never numpy or pandas, so a one-shot command can call ``begin_early``
as its first act: the worker boots (bubblewrap, Python, numpy and pandas, the lockdown probe) on
another core while the parent imports its own libraries. The worker's start has three messages:
the PATH message (where numpy and pandas are), written before ``Launch`` returns, so the worker
imports them at once; the BOOT message (the shipped modules' source, what it may read, which
layers to apply, and the drivers when the command already knows them), built by a thread while the
worker imports, and the DRIVERS message (each task's driver source), sent by ``runner.Sandbox`` when
it takes the process over. A worker booted with drivers warms them and forks its zygotes before the
parent has finished importing, and the DRIVERS message must then name the same drivers; otherwise
the worker warms them when they arrive. No data crosses any of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from sandbox.gate_tables import SAFE_BUILTINS
from sandbox.mounts import WORKER_ENV, bwrap_argv, libraries, read_roots, seccomp_importable, sys_path
from sandbox.parent import StderrTail, kill_tree

SANDBOX_DIR = Path(__file__).resolve().parent
Drivers = Sequence[tuple[str, str]]  # (task name, driver module source), in the order the sandbox lists them
SHIPPED = ("wire", "lockdown", "watch", "child", "worker")  # sandbox modules the worker runs, in dependency order
# The worker's first code: read where its libraries are and import them (a parent thread meanwhile puts the
# rest of the boot message together), then build the shipped modules from their source under their own
# names (so ``from sandbox.wire import ...`` inside them finds them, never a copy on disk). The cyclic
# collector stays off until the worker freezes what its boot built (``Worker.start``).
BOOT = (
    "import gc,os,sys,json,types\n"
    "gc.disable()\n"
    "def rd(n):\n"
    "    b=b''\n"
    "    while len(b)<n:\n"
    "        c=os.read(0,n-len(b))\n"
    "        if not c: os._exit(3)\n"
    "        b+=c\n"
    "    return b\n"
    "def msg(): return json.loads(rd(int.from_bytes(rd(8),'little')))\n"
    "sys.path[:0]=[p for p in msg() if p not in sys.path]\n"
    "import numpy,pandas\n"
    "init=msg()\n"
    "pkg=types.ModuleType('sandbox');pkg.__path__=[];sys.modules['sandbox']=pkg\n"
    "for name,src in init['modules']:\n"
    "    m=types.ModuleType('sandbox.'+name);m.__file__='<sandbox/'+name+'.py>'\n"
    "    sys.modules[m.__name__]=m;setattr(pkg,name,m)\n"
    "    exec(compile(src,m.__file__,'exec'),m.__dict__)\n"
    "sys.modules['sandbox.worker'].worker_main(init)\n"
)


class Settings(NamedTuple):
    """The layers a worker is started with and how many frames it runs side by side: a worker started
    early is taken over only by a sandbox that asks for exactly these."""

    bwrap: bool
    seccomp: bool
    landlock: bool
    tripwires: bool
    frames_at_once: int = 1  # zygotes, each running one frame's child at a time


class Launch:
    """A worker process started and sent its boot message (from a thread, so the caller goes on at once).

    Python runs isolated (-I) and without ``site`` (-S): the PATH message names the folders of its
    libraries, and ``site`` would only run the environment's .pth hooks (an editable install's import
    finder: ~14 ms before the first import).

    The process is started by the calling thread: bubblewrap's --die-with-parent ties the worker to
    the thread that started it, so only a thread that outlives the sandbox may start one.
    """

    def __init__(self, settings: Settings, token: str, drivers: Drivers | None = None) -> None:
        self.settings, self.token = settings, token
        self.drivers = None if drivers is None else tuple((str(name), str(source)) for name, source in drivers)
        python = sys.executable
        prefix = bwrap_argv(python) if settings.bwrap else [python]
        self.proc = subprocess.Popen(
            prefix + ["-I", "-S", "-B", "-c", BOOT, token], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=dict(WORKER_ENV), cwd="/", start_new_session=True, close_fds=True,
        )
        assert self.proc.stdin is not None and self.proc.stderr is not None
        try:  # a few hundred bytes: the pipe takes them at once, and the worker starts importing pandas
            write_framed(self.proc.stdin.fileno(), json.dumps(sys_path()).encode("utf-8"))
        except OSError:
            pass  # the worker died at once: whoever takes it over finds out (its boot message cannot be sent)
        self.stderr = StderrTail(self.proc.stderr)
        self.stderr.start()
        self.error: BaseException | None = None
        self._writer = threading.Thread(target=self._send_boot, daemon=True, name="sandbox-boot")
        self._writer.start()

    def _send_boot(self) -> None:
        try:
            assert self.proc.stdin is not None
            write_framed(self.proc.stdin.fileno(), boot_message(self.settings, self.drivers))
        except BaseException as exc:  # reported to whoever takes the process over
            self.error = exc

    def boot_sent(self, deadline: float) -> None:
        """Wait until the boot message is written; ``OSError`` if it could not be (the worker died)."""
        self._writer.join(max(0.0, deadline - time.monotonic()))
        if self._writer.is_alive():
            raise TimeoutError("the worker did not read its boot message")
        if self.error is not None:
            raise OSError(f"could not send the boot message ({type(self.error).__name__}: {self.error})")

    def kill(self) -> None:
        kill_tree(self.proc)
        self.stderr.join(timeout=2)


def write_framed(fd: int, data: bytes) -> None:
    """``data`` after its length (8 bytes, little-endian): the framing BOOT reads."""
    view = memoryview(len(data).to_bytes(8, "little") + data)
    while view:
        view = view[os.write(fd, view):]


def boot_message(settings: Settings, drivers: Drivers | None = None) -> bytes:
    """Everything the worker needs before any request but its libraries' folders (the PATH message): its
    modules, what it may read, the layers, and the drivers if known (``None``: they come with the DRIVERS
    message)."""
    init = {
        "modules": [[name, (SANDBOX_DIR / f"{name}.py").read_text(encoding="utf-8")] for name in SHIPPED],
        "read_roots": read_roots(),
        "builtins": sorted(SAFE_BUILTINS),
        "libs": libraries() if settings.seccomp else {},
        "want": {"seccomp": settings.seccomp, "landlock": settings.landlock, "tripwires": settings.tripwires},
        "parent_pid": os.getpid(),
        "pid_namespace": settings.bwrap,
        "frames_at_once": settings.frames_at_once,
        "drivers": None if drivers is None else [[name, source] for name, source in drivers],
    }
    return json.dumps(init).encode("utf-8")


_EARLY: list[Launch] = []
_EARLY_LOCK = threading.Lock()


def default_settings() -> Settings:
    """What a sandbox with every layer left at "use it when it works" asks for, decided without running
    bubblewrap (a worker that fails under it is discarded and the sandbox decides as usual)."""
    import shutil

    linux = sys.platform.startswith("linux")
    return Settings(bwrap=linux and shutil.which("bwrap") is not None, seccomp=seccomp_importable() is None,
                    landlock=linux, tripwires=True, frames_at_once=frames_at_once())


def frames_at_once(share: int = 1) -> int:
    """Frames a worker runs side by side by default: the cores this process may use, shared by ``share``
    workers, at most two (a candidate has about a dozen frames; more children would only queue)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(2, cores // max(1, share)))


def begin_early(drivers: Drivers | None = None) -> None:
    """Start one default worker now, for the next ``Sandbox`` with default layers (and, if given, exactly
    these ``(task, driver source)`` pairs) to take over.

    For one-shot commands (``harness.py check``), called before they import pandas; call it from the
    thread that will open the sandbox. Never raises: if anything fails, the sandbox starts as usual.
    """
    if not hasattr(os, "fork"):
        return
    try:
        launch = Launch(default_settings(), f"alphaloop-sandbox-{os.getpid()}-early-{time.time_ns():x}", drivers)
    except (OSError, RuntimeError, ValueError):
        return
    with _EARLY_LOCK:
        _EARLY.append(launch)


def take_early() -> Launch | None:
    """The worker ``begin_early`` started, if it is still running (the taker checks its settings)."""
    with _EARLY_LOCK:
        launch = _EARLY.pop() if _EARLY else None
    if launch is not None and launch.proc.poll() is not None:
        launch.kill()
        return None
    return launch
