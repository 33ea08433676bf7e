"""Rejection text that names no host path: what a candidate learns from a refusal is the rule, never
whether a file exists or where the project, the interpreter or a library lives."""

from __future__ import annotations

import re

# an absolute path (POSIX or Windows), or a home-relative one, with at least one separator inside
PATH = re.compile(r"(?<![\w.:/])(?:~|[A-Za-z]:)?(?:[\\/][\w.\-+@%~]+){2,}[\\/]?|(?<![\w.])~[\\/][\w.\-+@%~/\\]*")
HIDDEN = "<path>"


def redact_paths(text: str) -> str:
    """``text`` with every host path replaced by ``<path>`` (a time zone such as Europe/Paris has no
    leading separator and stays)."""
    return PATH.sub(HIDDEN, text)
