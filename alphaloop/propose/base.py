"""What every proposer receives and returns; the loop depends on nothing else of a proposer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol

from alphaloop.evaluate.backtest import DEFAULT_COST_BPS
from alphaloop.evaluate.universe import UniverseFigures

REPLY_LIMIT = 200_000  # characters of a reply kept whole on Proposal.reply (reasoning models write long think blocks)
RAW_HEAD = 4_000  # characters of the reply the iteration record keeps under proposal.raw


@dataclass(frozen=True)
class LLMSettings:
    """The LLM client's defaults: make_proposer, LLMProposer and harness.py's flags all read these."""

    timeout_s: float = 120.0  # seconds per request before it is retried (--timeout)
    retries: int = 5  # retries per request on 429, 5xx, timeouts and dropped connections (--retries)
    backoff_s: float = 1.0  # first retry delay, doubled each retry with jitter (--retry-backoff)
    backoff_max_s: float = 30.0  # cap of one retry delay (a server's Retry-After is capped the same way)


LLM = LLMSettings()
DEFAULT_TIMEOUT_S = LLM.timeout_s  # the name make_proposer, LLMProposer and --timeout have always read


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
class WindowFigures:
    """One row of a candidate's figures table: a window (train, a fold, validation) and buy and hold on it.

    Returns, drawdowns and exposure are fractions; ``None`` means not measured on that window.
    """

    window: str  # "train", "fold 1", ..., "validation"
    sharpe: float | None = None
    total_return: float | None = None
    max_drawdown: float | None = None
    exposure: float | None = None
    round_trips: int | None = None
    turnover: float | None = None  # position changes per year
    bh_sharpe: float | None = None
    bh_total_return: float | None = None
    bh_max_drawdown: float | None = None
    bars: int | None = None  # the window's length in bars
    years: float | None = None  # the same in years of bars (never calendar years: dates are not shown)


@dataclass(frozen=True)
class CandidateFigures:
    """What the prompt shows of one candidate (the parent, or the latest candidate even when rejected)."""

    iteration: int
    windows: tuple[WindowFigures, ...] = ()
    universe: UniverseFigures | None = None
    status: str = ""  # e.g. "accepted", "rejected at guards: too few trades"


@dataclass(frozen=True)
class GuardThreshold:
    """One guard as a number, so the model knows the line it must stay on the right side of."""

    name: str  # e.g. "min validation trades"
    limit: float
    unit: str = ""  # e.g. "trades", "% of days"


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
    cost_bps: float = DEFAULT_COST_BPS  # what every position change costs in this run, so proposals weigh trading
    max_gross: float = 1.0  # --max-gross: the most gross exposure a portfolio may take (the portfolio task)
    parent_figures: CandidateFigures | None = None  # the parent's table; None renders nothing
    latest_figures: CandidateFigures | None = None  # the previous iteration's candidate, scored even if rejected
    parent_reason: str | None = None  # why this parent, e.g. "reverting to iter 4: iter 6 did not enter the population"
    unchanged_positions: bool = False  # the latest candidate held exactly the parent's positions
    stalled: int = 0  # iterations in a row outside the population once the search counts as stalled; 0: not stalled
    siblings: tuple[int, ...] = ()  # iterations building on the same parent whose outcome this one cannot see yet
    correlations: str = ""  # the members' correlations of daily validation returns, in words
    guards: tuple[GuardThreshold, ...] = ()
    shows_trades: bool = True  # whether the population's lines give a trade count (the task says: Task.shows_trades)
    columns: tuple[str, ...] = ()  # the data's columns, what a candidate's df holds (); () for a manifest without them
    extra: dict[str, str] = field(default_factory=dict)  # further {{placeholders}} of a task's own prompts


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
    reply: str = ""  # the whole reply (up to REPLY_LIMIT), for an audit file beside the iteration
    dropped: list[str] = field(default_factory=list)  # top-level parts of a whole-file reply left out of the region
    finish_reason: str | None = None  # the server's, e.g. "stop" or "length"
    retries: int = 0  # requests retried before this answer
    warnings: list[str] = field(default_factory=list)  # things a person should fix, e.g. a truncated context

    def to_json(self) -> dict:
        """The record's copy: the reply's head only; the whole reply is written beside it by the loop."""
        d = asdict(self)
        d["raw"] = self.raw[:RAW_HEAD]
        d.pop("reply")
        return d


class Proposer(Protocol):
    name: str

    def propose(self, ctx: ProposalContext) -> Proposal:
        """Return a new candidate region derived from ``ctx.parent_region``."""
        ...

    def compact(self, text: str, budget_tokens: int) -> str | None:
        """Summarise old learnings into at most ``budget_tokens``; None means use the fallback."""
        ...
