"""What a population member is, in words: its strategy, not only the last change that made it.

An offline-search region records its spec, which reads as a whole strategy ("enter when ...; exit
on ..."); any other region is told by its lineage, the chain of changes from the first iteration
of its line, oldest first, so a reader sees everything the member carries.
"""

from __future__ import annotations

from alphaloop.candidate import RegionError
from alphaloop.present.report.data import Run
from alphaloop.present.text import clip_middle, flat
from alphaloop.propose.offline.spec import describe as describe_spec
from alphaloop.propose.offline.spec import spec_of
from alphaloop.run.records import IterationRecord
from alphaloop.run.rows import describe
from alphaloop.run.workdir import Workdir


def lineage(run: Run, n: int, limit: int = 12) -> list[int]:
    """Iteration numbers from the oldest known ancestor of ``n`` down to ``n`` (at most ``limit``)."""
    chain, seen = [], set()
    current: int | None = n
    while current is not None and current not in seen and len(chain) < limit:
        seen.add(current)
        chain.append(current)
        parent = (run.record(current) or {}).get("parent")
        current = int(parent) if isinstance(parent, int) else None
    return chain[::-1]


def what_it_is(run: Run, n: int, width: int = 240) -> str:
    """The member's strategy as one line: its recorded spec in words, else its chain of changes."""
    try:
        spec = spec_of(Workdir(run.workdir).region(n))
    except (OSError, UnicodeDecodeError, RegionError):
        spec = None
    if spec is not None:
        try:
            return flat(describe_spec(spec))
        except (KeyError, TypeError, ValueError):
            pass
    steps = []
    for i in lineage(run, n):
        record = run.record(i)
        if record is not None:
            steps.append(f"iter {i}: {describe(IterationRecord.from_json(record), 400)}")
    return flat(clip_middle(" → ".join(steps), width)) if steps else ""
