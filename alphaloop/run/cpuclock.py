"""CPU seconds spent by this process and every process under it: a cost per iteration the machine's load does not move.

Why: the wall time between two commits moves with whatever else the machine runs (a 3,000-iteration night
compared its start and end by wall time and read 0.65x, because the load fell during it). CPU time counts
the work done, so a night's first and last iterations compare under any load (contention for caches and
memory still moves it a little; far less than the load moves the wall clock).

What is counted: the loop's evaluations run in long-lived sandbox workers (under bubblewrap: bwrap ->
its init -> the worker, which forks a child per frame). ``getrusage(RUSAGE_CHILDREN)`` sees a child's CPU
only once the child has exited and been waited for, so a worker's work would appear only at the end of
the run. The clock therefore adds, to this process's own times (``os.times``: every thread, and every
child already waited for), each live descendant's ``/proc/PID/stat`` utime + stime + cutime + cstime (its
own CPU and that of the children it waited for: the frames). Each process is counted exactly once: by
itself while it lives, then inside its parent's children's time once reaped. Lost: a descendant orphaned
before being reaped (its parent died first). The descendants are found by a scan of /proc (~100
processes: a few ms) at the start, every ``RESCAN_EVERY`` readings and whenever a known one is gone;
between scans a reading is a handful of small file reads. Where /proc is absent the clock counts this
process and its waited-for children only.
"""

from __future__ import annotations

import os
from pathlib import Path

RESCAN_EVERY = 50  # readings between scans of /proc for new descendants (a worker replaced, one started late)
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PROC = Path("/proc")


def _stat(pid: int) -> tuple[int, int, float] | None:
    """(parent pid, start time in ticks, CPU seconds incl. waited-for children) of ``pid``, None if gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()  # after the command name, which may hold spaces
    try:  # fields[0] is the state (stat field 3): ppid is field 4, utime..cstime 14-17, starttime 22
        return int(fields[1]), int(fields[19]), sum(int(f) for f in fields[11:15]) / _TICK
    except (IndexError, ValueError):
        return None


def _own() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class TreeClock:
    """``seconds()``: the CPU seconds of this process and its descendants so far; ``lap()``: since the last lap."""

    def __init__(self) -> None:
        self._known: dict[int, int] = {}  # descendant pid -> its start time (a reused pid is another process)
        self._readings = 0
        self._proc = _PROC.is_dir()
        self._last = self.seconds()

    def _scan(self) -> None:
        """Every live descendant of this process, from the parent pid of each process in /proc."""
        parents: dict[int, list[tuple[int, int]]] = {}
        for entry in os.scandir(_PROC):
            if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
                parents.setdefault(st[0], []).append((int(entry.name), st[1]))
        self._known, todo = {}, [os.getpid()]
        while todo:
            for pid, start in parents.get(todo.pop(), ()):
                if pid not in self._known:
                    self._known[pid] = start
                    todo.append(pid)

    def seconds(self) -> float:
        """CPU seconds so far: this process's own (with its waited-for children) and each live descendant's."""
        own = _own()
        if not self._proc:
            return own
        if self._readings % RESCAN_EVERY == 0:
            self._scan()
        self._readings += 1
        total, gone = 0.0, False
        for pid, start in self._known.items():
            st = _stat(pid)
            if st is None or st[1] != start:
                gone = True
                continue
            total += st[2]
        if gone:  # reaped meanwhile: its CPU moved into its parent's; rescan so nothing is counted twice
            self._scan()
            total = sum(st[2] for pid, start in self._known.items()
                        if (st := _stat(pid)) is not None and st[1] == start)
        return _own() + total if gone else own + total

    def lap(self) -> float:
        """CPU seconds since the previous lap (or since the clock was made)."""
        now = self.seconds()
        out, self._last = max(0.0, now - self._last), now
        return out
