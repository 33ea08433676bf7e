"""What every proposer receives and returns; the loop depends on nothing else of a proposer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol


class EndpointDown(Exception):
    """The LLM endpoint kept failing after every retry; the loop saves state and stops."""


@dataclass(frozen=True)
class Expectation:
    """The structured part of a hypothesis: which validation metric moves which way, maybe by how much."""

    metric: str  # e.g. "sharpe", "total_return", "max_drawdown", "round_trips"
    direction: int  # +1 up, -1 down
    magnitude: float | None = None  # absolute change expected in that metric, if stated


@dataclass(frozen=True)
class MemberSummary:
    """One population member as the proposer sees it (validation and train figures only)."""

    iteration: int
    val_metric: float
    train_metric: float
    val_trades: int
    description: str


@dataclass(frozen=True)
class ProposalContext:
    """Everything one request carries. Never holds anything measured on the test split."""

    iteration: int
    parent_iteration: int
    parent_region: str
    metric: str
    population: list[MemberSummary]
    learnings: str
    last_outcome: str | None  # e.g. "iter 7 rejected at lookahead: column 'z' ..." or None
    cost_bps: float = 2.0  # what every position change costs in this run, so proposals can weigh trading


@dataclass
class Proposal:
    """A proposer's answer. ``region is None`` means no usable code; ``error`` says why."""

    region: str | None
    hypothesis: str = ""
    change: str = ""
    expected: str = ""
    expectation: Expectation | None = None
    error: str | None = None
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})
    model: str | None = None
    seconds: float = 0.0
    raw: str = ""  # the reply text, bounded, for the iteration record

    def to_json(self) -> dict:
        d = asdict(self)
        d["raw"] = self.raw[:4000]
        return d


class Proposer(Protocol):
    name: str

    def propose(self, ctx: ProposalContext) -> Proposal:
        """Return a new candidate region derived from ``ctx.parent_region``."""
        ...

    def compact(self, text: str, budget_tokens: int) -> str | None:
        """Summarise old learnings into at most ``budget_tokens``; None means use the fallback."""
        ...
