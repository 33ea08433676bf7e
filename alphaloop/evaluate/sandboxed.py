"""The sandbox as alphaloop opens it: every task's child driver and its trusted decoder, handed in.

``sandbox/`` imports nothing from alphaloop; what differs per task reaches it here, from the task
registry (``alphaloop.tasks.TASKS``): the text of each task's driver module (``Task.driver_source``)
and the function that validates the arrays the child sends back (``Task.output_decoder``).
``open_sandbox`` and ``open_pool`` are the only places a sandbox is built, so ``check``, the loop,
``final``, ``finish`` and ``python trade.py`` run candidates alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from alphaloop.tasks.trade.outputs import FrameResult
from sandbox.launch import frames_at_once
from sandbox.runner import Driver, Sandbox

if TYPE_CHECKING:
    from sandbox.pool import SandboxPool

__all__ = ["FrameResult", "drivers", "open_pool", "open_sandbox"]


def drivers(tasks: Iterable[str] | None = None) -> dict[str, Driver]:
    """The drivers of ``tasks`` (default: every registered task), in the registry's order, so the trade
    task's comes first when present (the default of ``Sandbox.run``)."""
    from alphaloop.tasks import TASKS, get_task

    wanted = set(TASKS) if tasks is None else {get_task(name).name for name in tasks}
    return {name: Driver(task.driver_source(), task.output_decoder()) for name, task in TASKS.items()
            if name in wanted}


def open_sandbox(tasks: Iterable[str] | None = None, **kwargs: Any) -> Sandbox:
    """A ``Sandbox`` that can run ``tasks`` (default every task; ``run(..., task=name)``); keyword
    arguments as ``Sandbox``'s. A command that runs one task names it: its worker then builds and warms
    only that task's driver before the zygote forks."""
    return Sandbox(drivers=drivers(tasks), **kwargs)


def open_pool(size: int = 1, tasks: Iterable[str] | None = None, **kwargs: Any) -> SandboxPool:
    """A ``SandboxPool`` of ``size`` workers built by ``open_sandbox``; unless told, the workers share the
    cores for the frames they run side by side."""
    from sandbox.pool import SandboxPool  # here: a one-shot command opens one sandbox, never a pool

    kwargs.setdefault("frames_at_once", frames_at_once(share=size))
    return SandboxPool(size, factory=lambda: open_sandbox(tasks, **kwargs))
