"""What the sandbox worker may see: the folders it reads, bubblewrap's command line, its environment.

Runs in the trusted parent only (never shipped). The project folder and the user's home are
carved out of everything exposed; the environment is a fixed list, so no API key or token ever
reaches the worker.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MODULES = ("numpy", "pandas", "dateutil", "tzdata", "six", "pyseccomp")
WORKER_ENV = {
    "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TMPDIR": "/tmp",
    "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1", "NUMBA_NUM_THREADS": "1",
}


def is_within(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


@functools.lru_cache(maxsize=1)
def hidden_paths() -> tuple[Path, ...]:
    """Folders the sandbox must never expose, even partly: the project and the user's home."""
    hidden = [PROJECT_ROOT]
    try:
        hidden.append(Path.home().resolve())
    except (RuntimeError, KeyError, OSError):
        pass
    return tuple(hidden)


def module_dir(name: str) -> Path | None:
    """The folder a top-level module is imported from (its site-packages), without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return None
    origin = Path(spec.origin).resolve()
    return origin.parent.parent if spec.submodule_search_locations else origin.parent


def carve(root: Path, hidden: tuple[Path, ...]) -> list[Path]:
    """``root`` minus every hidden folder inside it, as the largest pieces that can be exposed."""
    if root in hidden:
        return []
    if not any(root in h.parents for h in hidden):
        return [root]
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return []
    pieces: list[Path] = []
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            pieces += carve(entry, hidden)
        elif entry not in hidden:
            pieces.append(entry)
    return pieces


def minimal(paths: list[Path]) -> list[Path]:
    """Drop paths already covered by another path in the list."""
    ordered = sorted(set(paths), key=lambda p: (len(p.parts), str(p)))
    kept: list[Path] = []
    for path in ordered:
        if not any(is_within(path, k) for k in kept):
            kept.append(path)
    return kept


@functools.lru_cache(maxsize=1)
def python_roots() -> tuple[str, ...]:
    """What the worker must read: the interpreter and the packages it imports (nothing hidden)."""
    found: list[Path] = []
    prefixes = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix]
    prefixes += [p for p in (sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")) if p]
    for path in [Path(p) for p in prefixes] + [d for d in map(module_dir, MODULES) if d is not None]:
        try:
            real = path.resolve()
        except OSError:
            continue
        if real.is_dir() and real != Path("/"):
            found += carve(real, hidden_paths())
    return tuple(str(p) for p in minimal(found))


@functools.lru_cache(maxsize=1)
def system_roots() -> tuple[str, ...]:
    """System folders the interpreter's shared libraries (and zoneinfo) come from."""
    found: list[Path] = []
    for name in ("/usr", "/lib", "/lib64", "/lib32", "/libx32"):
        path = Path(name)
        if path.is_dir() and not path.is_symlink():
            found += carve(path, hidden_paths())
    return tuple(str(p) for p in minimal(found))


def sys_path() -> list[str]:
    """Where the worker finds numpy, pandas and pyseccomp, then this Python's other site folders (the
    worker runs without ``site``, and a dependency of pandas may sit in another one); never the project,
    the cwd or a folder holding either."""
    import site

    dirs = [d for d in map(module_dir, MODULES) if d is not None]
    dirs += [Path(d) for d in site.getsitepackages() if Path(d).is_dir()]
    return [str(d) for d in dict.fromkeys(dirs) if not any(is_within(h, d) for h in hidden_paths())]


def read_roots() -> list[str]:
    """What Landlock and the audit hook let the child read: Python and the system libraries."""
    return [str(p) for p in minimal([Path(p) for p in (*python_roots(), *system_roots())])]


@functools.lru_cache(maxsize=1)
def libraries() -> dict[str, str]:
    """Sonames resolved here, so the worker needs no ldconfig (or /etc) to load libseccomp."""
    import ctypes.util  # here, not at the top: a command starting its worker early should not wait for it

    out = {}
    for name in ("c", "seccomp"):
        found = ctypes.util.find_library(name)
        if found:
            out[name] = found
    return out


def seccomp_importable() -> str | None:
    """None when pyseccomp is installed, else why not. Found, not imported: importing it here would only
    cost the parent time; the worker imports it and the layer probe reports a missing libseccomp."""
    if not sys.platform.startswith("linux"):
        return "not Linux"
    try:
        found = importlib.util.find_spec("pyseccomp") is not None
    except (ImportError, ValueError) as exc:
        return f"pyseccomp unavailable ({type(exc).__name__}: {exc})"
    return None if found else "pyseccomp unavailable (ModuleNotFoundError: No module named 'pyseccomp')"


def bwrap_argv(python: str) -> list[str]:
    binary = shutil.which("bwrap") or "bwrap"
    argv = [binary, "--unshare-all", "--die-with-parent", "--new-session", "--clearenv",
            "--cap-drop", "ALL"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            argv += ["--symlink", os.readlink(path), str(path)]
    argv += ["--size", str(64 << 20), "--tmpfs", "/tmp"]  # before the binds: a venv under /tmp stays visible
    for root in minimal([Path(p) for p in (*system_roots(), *python_roots())]):
        argv += ["--ro-bind", str(root), str(root)]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += ["--chdir", "/tmp", "--hostname", "sandbox"]
    for key, value in WORKER_ENV.items():
        argv += ["--setenv", key, value]
    return argv + ["--", python]


@functools.lru_cache(maxsize=1)
def bwrap_status() -> str | None:
    """Probe bubblewrap once per process: None when it works here, else the reason it does not."""
    if not sys.platform.startswith("linux"):
        return "not Linux"
    if shutil.which("bwrap") is None:
        return "bwrap not installed"
    argv = bwrap_argv(sys.executable) + ["-I", "-c", "import os; os.listdir('/usr')"]
    try:
        proc = subprocess.run(argv, env=dict(WORKER_ENV), capture_output=True, timeout=30, cwd="/")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap failed to start ({type(exc).__name__})"
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        return f"bwrap refused to run here ({detail[-1] if detail else f'exit {proc.returncode}'})"
    return None
