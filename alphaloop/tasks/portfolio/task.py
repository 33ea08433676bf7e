"""The portfolio task as a plug-in of ``alphaloop.tasks.protocol.Task``.

A region defines ``generate_features(df)`` (per instrument) and ``allocate(day)`` (one date's rows of
every instrument -> target weights, long or short, gross at most ``--max-gross``). The whole universe
runs as one panel in one sandbox frame; the trusted parent validates the weights, scores the portfolio
against the equal-weight buy and hold and cash, probes it for look-ahead with every instrument cut at
one date, and judges duplicates on validation weights and returns.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alphaloop.tasks.portfolio.contract import FUNCTIONS
from alphaloop.tasks.protocol import REPO, Task

if TYPE_CHECKING:
    from alphaloop.evaluate.pipeline import Trial, Verdict
    from alphaloop.evaluate.scoring import History
    from alphaloop.propose.base import Proposer
    from alphaloop.run.records import IterationRecord
    from alphaloop.run.state import LoopState


class PortfolioTask(Task):
    """Target weights across a universe each date, scored as one portfolio against the equal-weight buy and hold."""

    name = "portfolio"
    summary = "generate_features + allocate(day) -> weights across instruments, scored against equal weight"
    functions = FUNCTIONS
    metrics = ("sharpe", "total_return", "sortino", "calmar", "cagr", "information_ratio")  # scoring.PORTFOLIO_METRICS
    candidates = "portfolios"
    benchmark = "EW B&H"
    baseline = "baseline (examples/portfolio_momentum.py: 120-bar momentum, top third long, bottom third short)"
    shows_trades = False
    has_positions = False
    benchmark_words = "equal-weight buy & hold"

    def start_file(self) -> Path:
        return REPO / "examples" / "portfolio_momentum.py"

    def file_doc(self) -> str:
        return "A portfolio allocation"

    def selection_metric(self, requested: str) -> str:
        from alphaloop.tasks.portfolio.scoring import PORTFOLIO_METRICS

        return requested if requested in PORTFOLIO_METRICS else "sharpe"

    # ----- evaluation ---------------------------------------------------------------------------
    def output_decoder(self) -> Callable[..., Any]:
        """Names and shapes; the weights' values are checked by the contract (``contract.validate_weights``)."""
        from alphaloop.tasks.portfolio.outputs import decode

        return decode

    def check_outputs(self, t: Trial) -> Verdict | None:
        from alphaloop.tasks.portfolio.judge import check_weights

        return check_weights(t)

    def lookahead(self, t: Trial) -> Verdict | None:
        from alphaloop.tasks.portfolio.judge import lookahead

        return lookahead(t)

    def invariance_probes(self, frame: Any, seed: int) -> list[Any]:
        """The panel's invariance probes: ``frame`` is the whole panel (one frame per instrument), and one draw
        of years, level and rows applies to every instrument (``invariance.panel_invariance``)."""
        from alphaloop.tasks.portfolio.invariance import panel_invariance

        return panel_invariance(tuple(frame), seed)

    def outputs_of(self, full: Any) -> Any:
        return full.weights

    def score(self, t: Trial) -> None:
        from alphaloop.tasks.portfolio.judge import score

        score(t)

    def guards(self, t: Trial) -> Verdict:
        from alphaloop.tasks.portfolio.judge import guards

        return guards(t)

    # ----- the record, the population and the text files -----------------------------------------
    def scored_fields(self, ev: Any, histories: tuple[History, ...]) -> dict[str, Any]:
        from alphaloop.tasks.portfolio.evidence import weights_key

        if ev.scores is None or "val" not in ev.scores.weights:
            return {}
        return {"positions_sha256": weights_key(ev.scores.weights["val"])}

    def accepted_fields(self, ev: Any, stress: dict | None, histories: tuple[History, ...], state: LoopState,
                        stress_select: bool) -> dict[str, Any]:
        from alphaloop.tasks.portfolio.judge import accepted_fields

        return accepted_fields(ev, histories, state)

    def beside_benchmark(self, split: dict | None, metric: str) -> str:
        from alphaloop.tasks.portfolio.rows import bh_value

        bh = bh_value(split, metric)
        return f" (equal-weight buy and hold {bh:.3f}, cash 0)" if bh is not None else " (cash 0)"

    def benchmark_value(self, split: dict | None, metric: str) -> float | None:
        from alphaloop.tasks.portfolio.rows import bh_value

        return bh_value(split, metric)

    def figures_note(self, split: dict | None) -> str:
        if not split:
            return ""
        return (f"gross {split.get('gross_exposure', 0):.2f}, net {split.get('net_exposure', 0):+.2f}, "
                f"turnover {split.get('turnover', 0):.1f}x/yr, beta {split.get('beta', 0):.2f}, "
                f"IR {split.get('information_ratio', 0):+.2f}")

    def live_note(self, split: dict) -> str:
        return f"net {split.get('net_exposure', 0):+.2f}, turnover {split.get('turnover', 0):.0f}x"

    def tsv_header(self, metric: str) -> str:
        from alphaloop.tasks.portfolio.rows import tsv_header

        return tsv_header(metric)

    def tsv_row(self, record: IterationRecord, metric: str) -> str:
        from alphaloop.run.rows import describe
        from alphaloop.tasks.portfolio.rows import tsv_row

        return tsv_row(record, metric, describe(record, baseline=self.baseline))

    # ----- harness.py check ----------------------------------------------------------------------
    def settings_text(self, metric: str, cost_bps: float) -> str:
        return f"task portfolio, metric {metric}, costs {cost_bps:g} bp of the summed absolute weight changes"

    def check_notes(self, histories: tuple[History, ...]) -> list[str]:
        return [f"scoring: allocate(day) sets weights across the {len(histories)} instrument(s) each date (numbered "
                "1..N, never named); the portfolio is scored against their equal-weight buy and hold and cash"]

    def scores_lines(self, ev: Any, cost_bps: float) -> list[Any]:
        from alphaloop.tasks.portfolio.text import contributions_line, split_line

        if ev.scores is None:
            return []
        s = ev.scores
        lines = [split_line(name, m) for name, m in s.splits.items()]
        spread = s.fold_spread()
        if spread:
            lines.append(f"walk-forward folds over train ({len(s.folds)}): {s.metric} {spread['min']:.3f} to "
                         f"{spread['max']:.3f}, median {spread['median']:.3f}")
        lines.append(contributions_line(s.contributions.get("val")))
        lines.append(f"selection ({s.metric}, validation): {s.selection:.4f}")
        return [line for line in lines if line]

    # ----- proposing ----------------------------------------------------------------------------
    def prompts(self) -> dict[str, Path]:
        return {"program_path": REPO / "prompts" / "portfolio_program.md",
                "template_path": REPO / "prompts" / "portfolio_prompt_template.md"}

    def offline_proposer(self, seed: int) -> Proposer:
        from alphaloop.tasks.portfolio.offline import OfflinePortfolioProposer

        return OfflinePortfolioProposer(seed=seed)

    def prepare(self, histories: tuple[History, ...]) -> Any:
        columns = []
        for h in histories:
            columns += [str(c) for c in h.frame.columns if str(c) not in columns]
        return {"instruments": len(histories), "columns": ", ".join(f"`{c}`" for c in columns),
                "periods_per_year": histories[0].periods_per_year}  # the bars a year behind the prompt's years

    def evidence(self, n: int, parent: int, latest: IterationRecord | None, parent_rec: IterationRecord | None,
                 grand: IterationRecord | None, last: int, prepared: Any = None,
                 state: LoopState | None = None) -> dict[str, Any]:
        from alphaloop.tasks.portfolio.evidence import portfolio_evidence

        return portfolio_evidence(n, parent, latest, parent_rec, grand, last=last, prepared=prepared, state=state)

    def run_notes(self, histories: tuple[History, ...], manifest: dict) -> list[str]:
        return self.check_notes(histories)

    # ----- after the run --------------------------------------------------------------------------
    def finish_steps(self, run: Any, sandbox: Any) -> list[tuple[str, Callable[[], object]]]:
        from alphaloop.tasks.portfolio.stats import write_statistics
        from alphaloop.tasks.portfolio.stress import population_stress

        steps: list[tuple[str, Callable[[], object]]] = [("statistics", lambda: write_statistics(run))]
        if run.state.population and run.stress_paths > 0:
            steps.append(("stress", lambda: population_stress(run, sandbox)))
        return steps

    def final(self, inputs: Any) -> int:
        from alphaloop.tasks.portfolio.final import final_reading

        return final_reading(inputs)

    def costs_words(self, cost_bps: float) -> str:
        return (f"{cost_bps:g} bp of the summed absolute weight changes; weights set at a date's close earn close to "
                "each instrument's next close")

    def report_omits(self) -> frozenset[str]:
        """The shared sections that read positions and round trips; the task's own replace them."""
        return frozenset({"population", "best", "equity", "years", "analysis", "folds", "stress", "cross"})

    def report_sections(self, run: Any) -> list[str]:
        from alphaloop.tasks.portfolio.report import best_html, population_html, portfolio_html

        scored = [r for r in run.readings if r.get("status") == "scored"]
        names = list((run.manifest or {}).get("instruments") or [])
        return [population_html(run, run.metric), best_html(run, run.metric),
                portfolio_html(scored[-1] if scored else None, names)]
