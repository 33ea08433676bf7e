"""The parent's side of the worker process: cleaning what it says, keeping its stderr, killing it.

Runs in the trusted parent only (never shipped to the worker); imports nothing from alphaloop.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import unicodedata
from typing import Any

_ESCAPES = re.compile(r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
                      r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
                      r"|\x1b[\x20-\x2f]*[\x30-\x7e]?")


def clean_text(text: Any, limit: int, keep_newlines: bool) -> str:
    """What the worker said, with no escape sequence, control or bidi character left in it.

    Escape sequences go whole (no residue such as ``[31m``); other whitespace becomes a space; a log
    keeps its line breaks and tabs and its tail, a reason is one line and keeps its head.
    """
    if not isinstance(text, str):
        return ""
    keep = "\n\t" if keep_newlines else ""
    out = []
    for ch in _ESCAPES.sub("", text):
        if ch in keep:
            out.append(ch)
        elif ch.isspace():
            out.append(" ")
        elif ch.isprintable() and unicodedata.category(ch) != "Cf":
            out.append(ch)
    cleaned = "".join(out)
    return cleaned[-limit:] if keep_newlines else " ".join(cleaned.split())[:limit]


class StderrTail(threading.Thread):
    """Keep the last few KB the worker wrote to stderr, for diagnosing a worker that died."""

    def __init__(self, stream: Any) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.data = bytearray()
        self.lock = threading.Lock()

    def run(self) -> None:
        while True:
            try:
                chunk = self.stream.read1(65536)
            except (OSError, ValueError):
                return
            if not chunk:
                return
            with self.lock:
                self.data += chunk
                del self.data[:-8192]

    def tail(self) -> str:
        with self.lock:
            return self.data.decode("utf-8", "replace").strip()


def kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """Kill the worker's process group (with bwrap, its whole pid namespace goes with it)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        proc.kill()
    except OSError:
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    for stream in (proc.stdin, proc.stdout):
        try:
            if stream is not None:
                stream.close()
        except OSError:
            pass


_WARNED: set[str] = set()


def warn_once(description: str, no_bwrap: bool) -> None:
    """The reduced-isolation warning, printed once per process (a command may start several sandboxes)."""
    if _WARNED:
        return
    _WARNED.add(description)
    fix = "; install bubblewrap (apt-get install bubblewrap) for the full sandbox" if no_bwrap else ""
    sys.stderr.write(f"alphaloop sandbox WARNING: running with reduced isolation; {description}{fix}; "
                     "the static gate still applies\n")
