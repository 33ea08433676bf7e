"""The candidate region of trade.py: find it, replace it, and turn it into signals.

Only the text between the two marker lines is ever taken from a proposal; everything else in a
candidate file is ignored, so a proposal cannot edit the backtester or the data loading. Running a
region's functions on a frame is the task drivers' (``alphaloop/tasks/<task>/driver.py``, which the
sandbox child runs); ``compute_signals`` is re-exported here for in-process tests and benchmarks.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from alphaloop.tasks.trade.driver import Row, check_signals, compute_signals

__all__ = ["REGION_START", "REGION_END", "RegionError", "Row", "compute_signals",
           "extract_region", "splice_region", "template_text", "validate_signals"]

REGION_START = "# === ALPHALOOP CANDIDATE REGION START (generate_features, strategy_logic) ==="
REGION_END = "# === ALPHALOOP CANDIDATE REGION END ==="
TRADE_PY = Path(__file__).resolve().parent.parent / "trade.py"
# The original weekend harness marks its editable part with this line, a dashed comment line under it, and
# (often) another dashed line after the functions; files written for it are read unchanged.
WEEKEND_START = "# --- THESE ARE THE FUNCTIONS THE AGENT SHOULD MODIFY ---"
DASHED = re.compile(r"^#\s*-{3,}\s*$")
TOP_LEVEL_END = re.compile(r"^(class\s|if\s+__name__\b|# --- )")


class RegionError(ValueError):
    """The text has no usable candidate region (missing, repeated or unbalanced markers)."""


def _marker_lines(lines: list[str], marker: str) -> list[int]:
    key = marker.split("(")[0].strip()
    return [i for i, line in enumerate(lines) if line.strip().startswith(key)]


def weekend_region(lines: list[str]) -> str | None:
    """The part under the weekend harness's marker: after its dashed line(s), up to the next dashed line,
    ``class``, ``if __name__`` or ``# ---`` section line (or the end); None when the marker is absent."""
    starts = [i for i, line in enumerate(lines) if line.strip().upper().startswith(WEEKEND_START.upper())]
    if len(starts) != 1:
        if len(starts) > 1:
            raise RegionError(f"expected one '{WEEKEND_START}' line, found {len(starts)}")
        return None
    i = starts[0] + 1
    while i < len(lines) and DASHED.match(lines[i].strip()):
        i += 1
    end = next((j for j in range(i, len(lines)) if DASHED.match(lines[j].strip()) or TOP_LEVEL_END.match(lines[j])),
               len(lines))
    return "\n".join(lines[i:end]).strip("\n") + "\n"


def extract_region(text: str) -> str:
    """Return the region between the markers (alphaloop's, else the weekend harness's), or the whole text
    when it has no markers at all."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    starts, ends = _marker_lines(lines, REGION_START), _marker_lines(lines, REGION_END)
    if not starts and not ends:
        weekend = weekend_region(lines)
        return weekend if weekend is not None else text.strip("\n") + "\n"
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise RegionError(
            f"expected exactly one region start and one end marker in order, found "
            f"{len(starts)} start and {len(ends)} end marker(s)"
        )
    return "\n".join(lines[starts[0] + 1 : ends[0]]).strip("\n") + "\n"


LINE_REF = re.compile(r"\bline (\d+)")


def region_origins(source: str, region: str) -> tuple[int | None, ...]:
    """For each line of ``region``, its line number (1-based) in ``source``, the text the user or the model
    wrote: a region is cut out of a file, or reduced and reordered from a reply, so its own numbering is
    not theirs. Lines are matched by content, in order where possible; a blank line follows the line above."""
    src = source.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    where: dict[str, list[int]] = {}
    for j, line in enumerate(src, 1):
        if line.strip():
            where.setdefault(line.rstrip(), []).append(j)
    out: list[int | None] = []
    last = 0
    for line in region.split("\n"):
        hits = where.get(line.rstrip(), []) if line.strip() else []
        j = next((h for h in hits if h > last), hits[0] if hits else None)
        if j is None and last:
            j = last + 1  # a blank line (or one the reduction wrote): the line after the one above
        if j is not None:
            last = j
        out.append(j)
    return tuple(out)


def renumber(reason: str, origins: tuple[int | None, ...], of: str = "") -> str:
    """A reason's ``line N`` (the gate's, the sandbox's) in the numbering of the text it came from."""
    def to_source(m: re.Match[str]) -> str:
        n = int(m.group(1))
        j = origins[n - 1] if 0 < n <= len(origins) else None
        return f"line {j}{of}" if j is not None else m.group(0)

    return LINE_REF.sub(to_source, reason) if origins else reason


def splice_region(template: str, region: str) -> str:
    """Put ``region`` between the markers of ``template`` (a full trade.py text)."""
    lines = template.split("\n")
    starts, ends = _marker_lines(lines, REGION_START), _marker_lines(lines, REGION_END)
    if len(starts) != 1 or len(ends) != 1:
        raise RegionError("the trade.py template must hold exactly one candidate region")
    body = region.strip("\n").split("\n")
    return "\n".join(lines[: starts[0] + 1] + [""] + body + [""] + lines[ends[0] :])


FIXED_PART = '''"""{doc} for alphaloop, and the command that evaluates it on train and validation.

Only the region between the two marker comments is the candidate; the loop rewrites nothing else,
and a proposal's text outside the markers is ignored. ``pd`` and ``np`` are in scope there.

    python {file} [--data DIR] [--cost-bps N] [--eval-timeout S] [--max-gross G]

judges the region as `python harness.py check --task {task} {file}` does (train and validation only).
"""

import sys

import numpy as np
import pandas as pd

from alphaloop.commands.tradefile import main

if __name__ == "__main__":  # the region below is read as text and judged in the sandbox, never run here
    sys.exit(main(__file__, task="{task}"))

# === ALPHALOOP CANDIDATE REGION START ({functions}) ===

# === ALPHALOOP CANDIDATE REGION END ===
'''


def template_text(task: Any = None) -> str:
    """The text whose fixed part frames every iteration file of ``task`` (an ``alphaloop.tasks.protocol.Task``):
    the project's own trade.py for the trade task (and without a task), else a file saying what the task's
    candidate is (``Task.file_doc``) that runs itself through the task's ``check`` when run as a script."""
    if task is None or task.name == "trade":
        return TRADE_PY.read_text(encoding="utf-8")
    return FIXED_PART.format(doc=task.file_doc(), task=task.name, functions=", ".join(task.functions),
                             file=f"iter_N_{task.name}.py")


def validate_signals(raw: Any, n: int) -> np.ndarray:
    """Check a signal vector from untrusted code; return it as int8 or raise ValueError (the child's own check,
    run again in the parent: what the child sent is not trusted)."""
    return check_signals(raw, n).astype(np.int8)
