"""alphaloop: an autoresearch loop for trading strategies whose numbers can be trusted.

The public face: the entry points (the loop, ``check``, ``final``, the report), the task registry and
protocol, and the records a run writes. Each name is imported on first use, so ``import alphaloop``
stays cheap (``harness.py --help`` and the sandbox's zygote never pay for the report's matplotlib).
"""

from __future__ import annotations

import importlib
import os
from typing import Any

# One BLAS thread, set before numpy loads (every entry point imports this package first): the loop, its
# sandbox children and other runs share the cores, and OpenBLAS's own threads made a 344x344 eigvalsh take
# 0.1-1.2 s against ~3 ms single-threaded on a loaded 2-core machine. A value already set is kept.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

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
