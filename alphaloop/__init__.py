"""alphaloop: an autoresearch loop for trading strategies whose numbers can be trusted.

The public face: the entry points (the loop, ``check``, ``final``, the report), the task registry and
protocol, and the records a run writes. Each name is imported on first use, so ``import alphaloop``
stays cheap (``harness.py --help`` and the sandbox's zygote never pay for the report's matplotlib).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_HOMES = {
    # entry points
    "Loop": "alphaloop.run.loop", "LoopConfig": "alphaloop.config", "run_check": "alphaloop.commands.check",
    "run_final": "alphaloop.commands.final", "write_report": "alphaloop.present.report",
    "evaluate": "alphaloop.evaluate.pipeline", "EvalContext": "alphaloop.evaluate.pipeline",
    "Evaluation": "alphaloop.evaluate.pipeline", "History": "alphaloop.evaluate.scoring",
    # tasks
    "TASKS": "alphaloop.tasks", "Task": "alphaloop.tasks", "get_task": "alphaloop.tasks",
    # records and the run folder
    "IterationRecord": "alphaloop.run.records", "TestReading": "alphaloop.run.records",
    "RunStats": "alphaloop.run.records", "LoopState": "alphaloop.run.state", "Workdir": "alphaloop.run.workdir",
}

__all__ = ["__version__", *_HOMES]


def __getattr__(name: str) -> Any:
    """Import a public name from its home module on first use (PEP 562)."""
    if name not in _HOMES:
        raise AttributeError(f"module 'alphaloop' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
