"""Tasks: the protocol every task plugs into (``protocol.Task``), and the registry of plug-ins.

Adding a task is one package ``alphaloop/tasks/<name>/`` and one line in ``PLUGINS``; ``--task``'s
choices, the records' ``task`` field and every dispatch read this registry. The plug-ins are imported
on first use of ``TASKS`` (or ``get_task``), so importing one task's module, or the protocol, does not
import every task.
"""

from __future__ import annotations

import importlib
from typing import Any

from alphaloop.tasks.protocol import Task

PLUGINS: tuple[tuple[str, str], ...] = (  # (module, class) of each task, in --task's order; the first is the default
    ("alphaloop.tasks.trade.task", "TradeTask"),
    ("alphaloop.tasks.forecast.task", "ForecastTask"),
    ("alphaloop.tasks.portfolio.task", "PortfolioTask"),
)
DEFAULT_TASK = "trade"
_REGISTRY: dict[str, Task] = {}


class UnknownTask(ValueError):
    """A task name no plug-in answers to (a typo on the command line, or a workdir from a later alphaloop)."""


def registry() -> dict[str, Task]:
    """Every registered task by name, each imported and built once."""
    if not _REGISTRY:
        tasks = [getattr(importlib.import_module(module), cls)() for module, cls in PLUGINS]
        _REGISTRY.update((task.name, task) for task in tasks)
    return _REGISTRY


def get_task(name: str | Task) -> Task:
    """The plug-in registered as ``name`` (a ``Task`` passes through)."""
    if isinstance(name, Task):
        return name
    try:
        return registry()[name]
    except KeyError:
        raise UnknownTask(f"unknown task {name!r}; this alphaloop knows {', '.join(registry())}") from None


def __getattr__(name: str) -> Any:
    if name == "TASKS":  # ``from alphaloop.tasks import TASKS`` imports the plug-ins then, not before
        return registry()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_TASK", "PLUGINS", "TASKS", "Task", "UnknownTask", "get_task", "registry"]
