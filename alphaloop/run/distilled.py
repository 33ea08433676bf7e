"""The distilled head of ``learnings.md``: what a person (and the model) should know after any iteration.

Kept current at every iteration by folding each entry in, never by rereading the past, so it costs
the same at iteration 500 as at 5 and a replay of the same records gives the same text. It holds
the best so far against buy and hold on validation, the ideas that helped (by how much, against
their parent), the ones that did not, and every rejection reason seen, each list bounded by
construction (``DISTILLED_CHARS``) so the prompt can carry the section whole for the whole run.
"""

from __future__ import annotations

import copy
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from alphaloop.present.text import clip
from alphaloop.run.grading import EPS
from alphaloop.run.quoting import harness_only

HELPED_ITEMS = 5  # the ideas with the largest gain against their parent
FAILED_ITEMS = 6  # the latest ideas that did not help, one line each
ENTERED_WORSE_ITEMS = 3  # the latest that entered the population (it had room) though worse than their parent
OLDER_FAILED_ITEMS = 8  # older failed ideas kept as a short gist on one line; beyond, a count
REJECTION_STAGES = 8  # distinct stages a rejection can name: the loop's "proposal", pipeline.STAGES, and spare
GIST = 80  # characters of an idea's description
OLDER_GIST = 36
REASON = 110  # characters of a rejection reason
# The most the section can take, from the caps above: five head lines of at most ~100 characters, then
# each list's lines at their widest (prefix, figure, gist, the "kept out" note); tests/test_notebook.py fills it.
DISTILLED_CHARS = (500 + HELPED_ITEMS * (GIST + 70) + FAILED_ITEMS * (GIST + 100)
                   + 40 + OLDER_FAILED_ITEMS * (OLDER_GIST + 30) + 40 + REJECTION_STAGES * (REASON + 80)
                   + 90 + ENTERED_WORSE_ITEMS * (GIST + 70))


@dataclass
class Distilled:
    """Running facts of a run. Lists hold ``[iteration, delta, text]``; JSON-ready as they stand."""

    metric: str = ""
    best: dict[str, Any] | None = None  # iteration, val, bh, selection of the best population member
    member_vals: dict[str, float] = field(default_factory=dict)  # the val metric of each entered iteration a later
    # one may still build on (``keep_parents``)
    helped: list[list[Any]] = field(default_factory=list)
    failed: list[list[Any]] = field(default_factory=list)
    older_failed: list[list[Any]] = field(default_factory=list)
    older_failed_dropped: int = 0
    entered_worse: list[list[Any]] = field(default_factory=list)
    rejections: dict[str, dict[str, Any]] = field(default_factory=dict)  # stage -> count, distinct, latest
    left: dict[str, int] = field(default_factory=dict)  # an entered iteration -> the commit it left the population at

    def add(self, entry: Any) -> None:
        """Fold one learnings ``Entry`` in (duck-typed to keep learnings -> distilled one way)."""
        if not entry.status:  # an entry written before the distilled section: nothing to fold
            return
        self.metric = entry.metric or self.metric
        n = entry.iteration
        parent_val = self.member_vals.get(str(entry.parent)) if entry.parent is not None else None
        delta = entry.val - parent_val if entry.val is not None and parent_val is not None else None
        if entry.entered and entry.val is not None:
            self.member_vals[str(n)] = entry.val
            if entry.selection is not None and (self.best is None or entry.selection > self.best["selection"]):
                self.best = {"iteration": n, "val": entry.val, "bh": entry.bh, "selection": entry.selection}
        if n == 0:
            return
        gist = entry.change or entry.hypothesis or "(no description)"
        # the parent and the value itself stand beside the gain, so a clipped description cannot flip what it says
        where = f"against iter {entry.parent}, val {entry.val:.3f}" if entry.val is not None else ""
        if entry.status != "accepted":
            self._rejected(n, entry.stage or "unknown", entry.reason or entry.headline)
        elif delta is not None and entry.entered and delta > EPS:
            self.helped.append([n, delta, clip(gist, GIST), where])
            self.helped = sorted(self.helped, key=lambda i: (-i[1], i[0]))[:HELPED_ITEMS]
        elif delta is not None and entry.entered:  # a free place in the population, not a success
            self.entered_worse = [*self.entered_worse, [n, delta, clip(gist, GIST), where]][-ENTERED_WORSE_ITEMS:]
        elif delta is not None and not getattr(entry, "duplicate", False):
            self.failed.append([n, delta, clip(gist, GIST), where])
            while len(self.failed) > FAILED_ITEMS:
                old = self.failed.pop(0)
                self.older_failed.append([old[0], old[1], clip(old[2], OLDER_GIST)])
            while len(self.older_failed) > OLDER_FAILED_ITEMS:
                self.older_failed.pop(0)
                self.older_failed_dropped += 1

    def keep_parents(self, members: Collection[int], at: int, proposed_from: int) -> None:
        """Forget the val of an entered iteration no later one can build on, so the notes stay the same size
        through a night: a parent is a member of the population an iteration proposes from, and those states
        only move forward (``proposed_from`` never decreases from one commit to the next); one that left the
        population at commit ``e`` is in none of them once ``proposed_from`` reaches ``e``. ``members``: the
        population after commit ``at``."""
        for key in self.member_vals:
            if int(key) not in members:
                self.left.setdefault(key, at)
        for key in [key for key, e in self.left.items() if e <= proposed_from]:
            del self.left[key]
            self.member_vals.pop(key, None)

    def _rejected(self, n: int, stage: str, reason: str) -> None:
        if stage not in self.rejections and len(self.rejections) >= REJECTION_STAGES:
            stage = "other"
        seen = self.rejections.setdefault(stage, {"count": 0, "kinds": [], "latest": [n, ""]})
        seen["count"] += 1
        reason = harness_only(reason)  # the head reaches every later prompt: never a word the candidate wrote
        kind = clip(reason, 40)
        if kind not in seen["kinds"] and len(seen["kinds"]) < 50:
            seen["kinds"].append(kind)
        seen["latest"] = [n, clip(reason, REASON)]

    def lines(self, tally_text: str) -> list[str]:
        """The section's lines (markdown bullets); ``tally_text`` is the hit rate from ``grading``."""
        m = self.metric or "metric"
        out = []
        if self.best is None:
            out.append("- Best so far: no candidate has entered the population yet.")
        else:
            b = self.best
            vs = (f" against buy and hold {b['bh']:.3f} (the equal-weight one when there are several instruments), "
                  f"{abs(b['val'] - b['bh']):.3f} "
                  f"{'above' if b['val'] > b['bh'] else 'below'} it" if b.get("bh") is not None else "")
            out.append(f"- Best so far: iter {b['iteration']}, val {m} {b['val']:.3f}{vs} (validation split).")
        out.append(f"- Researcher hit rate: {tally_text}.")
        out.append(f"- Helped (entered the population with a val {m} gain against the parent):"
                   + (" none." if not self.helped else ""))
        out += [_item(i) for i in self.helped]
        out.append(f"- Did not help (kept out of the population; val {m} change against the parent; duplicates "
                   "left out):" + (" none." if not (self.failed or self.older_failed) else ""))
        out += [_item(i) for i in reversed(self.failed)]
        if self.older_failed:
            more = f"; and {self.older_failed_dropped} earlier" if self.older_failed_dropped else ""
            out.append("  - earlier: " + "; ".join(_older(i) for i in self.older_failed) + more)
        if self.entered_worse:
            out.append(f"- Entered the population though its val {m} fell against the parent (the population had "
                       "room; not a success):")
            out += [_item(i) for i in reversed(self.entered_worse)]
        out.append("- Rejection reasons seen:" + (" none: no candidate was rejected." if not self.rejections else ""))
        for stage, seen in self.rejections.items():
            kinds = len(seen["kinds"])
            n, reason = seen["latest"]
            out.append(f"  - at {stage}, {seen['count']} time{'s' if seen['count'] != 1 else ''}"
                       f"{f' ({kinds} kinds)' if kinds > 1 else ''}; latest iter {n}: {reason}")
        return out

    def to_json(self) -> dict[str, Any]:
        """A deep copy, so the state's JSON never aliases the lists this object keeps folding into."""
        return copy.deepcopy(self.__dict__)

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Distilled:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in (d or {}).items() if k in known})


def _item(item: list[Any]) -> str:
    """One idea's line: its gain against the parent, which parent and the value it reached, then its gist
    (items written before the parent was kept have no ``where``)."""
    n, d, text, *rest = item
    where = f" ({rest[0]})" if rest and rest[0] else ""
    return f"  - iter {n}: {d:+.3f}{where}, {text}"


def _older(item: list[Any]) -> str:
    """An older failed idea on the gist line, its change against the parent kept (``[n, text]`` when older)."""
    if len(item) >= 3:
        return f"iter {item[0]} {item[1]:+.3f} {item[2]}"
    return f"iter {item[0]} {item[1]}"
