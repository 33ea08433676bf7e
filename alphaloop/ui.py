"""Everything alphaloop shows on a terminal: loud warnings, tables, the live view of the loop."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel

console = Console()
console_err = Console(stderr=True)


def warn_loudly(title: str, body: str) -> None:
    """A warning nobody can miss (offline data, offline proposer, weak isolation), on stderr."""
    console_err.print(Panel(body, title=f"[bold]{title}[/]", border_style="bold yellow", expand=False))
