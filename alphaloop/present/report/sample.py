"""Which iterations the report's per-iteration tables list once a run is long.

A night of 100,000 iterations made tables of 100,000 rows: tens of megabytes of HTML that a browser
takes minutes to lay out. Up to ``TABLE_ROWS`` rows every iteration is listed; beyond, the rows a
reader looks for: the baseline, the population, the iterations with the highest validation figure and
the latest ones, in iteration order, with a line saying how many were left out and counting them by
outcome (accepted, or the stage that rejected them; ``results.tsv`` lists every iteration). Charts are
PNGs, whose size does not grow with the points drawn; the progress chart draws a bounded thinning of
its points (``thin``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

TABLE_ROWS = 600  # iterations listed in full; beyond, the selection below
TOP_ROWS = 250  # highest validation figures listed when a run is longer
LATEST_ROWS = 250  # latest iterations listed when a run is longer


def table_records(records: Sequence[dict], population: Sequence[int], value: Callable[[dict], float | None],
                  limit: int = TABLE_ROWS) -> tuple[list[dict], str]:
    """The records a per-iteration table lists, and the line that says what was left out ("" if nothing)."""
    if len(records) <= limit:
        return list(records), ""
    scored = [(v, r["iteration"]) for r in records if (v := value(r)) is not None]
    keep = {0, *population, *(n for _, n in sorted(scored, reverse=True)[:TOP_ROWS]),
            *(r.get("iteration") for r in records[-LATEST_ROWS:])}
    shown = [r for r in records if r.get("iteration") in keep]
    return shown, (f"{len(shown):,} of {len(records):,} iterations listed: the baseline, the population, the "
                   f"{TOP_ROWS} highest on validation and the {LATEST_ROWS} latest (results.tsv lists every one); "
                   f"{left_out_words([r for r in records if r.get('iteration') not in keep])}")


def left_out_words(records: Sequence[dict]) -> str:
    """The iterations a table leaves out, counted: how many were accepted, and where the others stopped."""
    stages = Counter(str(r.get("stage")) for r in records if r.get("status") != "accepted")
    rejected = sum(stages.values())
    where = ", ".join(f"{stage} {count:,}" for stage, count in stages.most_common())
    return (f"of the {len(records):,} left out, {len(records) - rejected:,} were accepted and {rejected:,} rejected"
            + (f" (at {where})" if where else ""))
