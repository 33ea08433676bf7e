"""What every task's ``final`` records of one reading of the locked test split, whatever it showed.

Each reading, scored or rejected, is appended to ``test_readings.jsonl`` (``Workdir.append_reading``) so
the count of readings stays honest: a test split read many times is one more validation split.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from alphaloop.commands.inputs import FinalInputs
from alphaloop.data.frozen import manifest_digest
from alphaloop.evaluate.pipeline import DEFAULT_EVAL_TIMEOUT_S
from alphaloop.present.ui import console
from alphaloop.run.records import IterationRecord, TestReading


def iteration_label(inputs: FinalInputs) -> str:
    """"iteration N", or "iteration unknown" for a file no record names."""
    return f"iteration {inputs.iteration}" if inputs.iteration is not None else "iteration unknown"


def recorded_budget(record: IterationRecord | None, default: float = DEFAULT_EVAL_TIMEOUT_S) -> float:
    """The wall-clock budget the loop judged this candidate with (its --eval-timeout), else ``default``: final
    judges the candidate as the loop did."""
    value = getattr(record, "eval_timeout_s", None) if record is not None else None
    return float(value) if isinstance(value, int | float) and value > 0 else default


def reading_fields(inputs: FinalInputs, earlier: int, stage: str, metric: str,
                   cost_bps: float | None) -> dict[str, Any]:
    """The fields every reading starts with: when, which file (and its sha256), the data's digest, how many
    readings came before, what it was scored with and the pipeline stage it ended at."""
    return {"time": datetime.now(UTC).isoformat(timespec="seconds"), "iteration": inputs.iteration,
            "file": str(inputs.file), "sha256": hashlib.sha256(inputs.raw).hexdigest(), "metric": metric,
            "cost_bps": cost_bps, "data_digest": manifest_digest(inputs.manifest), "earlier_readings": earlier,
            "stage": stage}


def record_rejected(inputs: FinalInputs, entry: dict[str, Any], ev: Any, noun: str = "candidate") -> int:
    """Record a reading whose candidate the pipeline rejected (``ev``: its ``Evaluation``; no test figure is
    shown then) and refresh the report; returns final's exit code, 1."""
    inputs.wd.append_reading(TestReading(**entry, status="rejected", reason=ev.reason))
    console.print(f"[bold red]final: the {noun} was rejected at {ev.stage}; no test figures shown[/]")
    inputs.refresh(inputs.wd)
    return 1
