"""Tasks: the protocol every task plugs into (``protocol.Task``), and the registry of plug-ins.

Adding a task is one package ``alphaloop/tasks/<name>/`` and one line in ``TASKS``; ``--task``'s
choices, the records' ``task`` field and every dispatch read this registry.
"""

from __future__ import annotations

from alphaloop.tasks.forecast.task import ForecastTask
from alphaloop.tasks.portfolio.task import PortfolioTask
from alphaloop.tasks.protocol import Task
from alphaloop.tasks.trade.task import TradeTask

TASKS: dict[str, Task] = {task.name: task for task in (TradeTask(), ForecastTask(), PortfolioTask())}
DEFAULT_TASK = "trade"


class UnknownTask(ValueError):
    """A task name no plug-in answers to (a typo on the command line, or a workdir from a later alphaloop)."""


def get_task(name: str | Task) -> Task:
    """The plug-in registered as ``name`` (a ``Task`` passes through)."""
    if isinstance(name, Task):
        return name
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownTask(f"unknown task {name!r}; this alphaloop knows {', '.join(TASKS)}") from None


__all__ = ["DEFAULT_TASK", "TASKS", "Task", "UnknownTask", "get_task"]
