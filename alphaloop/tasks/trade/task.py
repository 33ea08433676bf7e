"""The trade task as a plug-in of ``alphaloop.tasks.protocol.Task``.

A region defines ``generate_features(df)`` and ``strategy_logic(row)`` (1 enter long, -1 exit to flat,
0 keep); the trusted parent turns the signals into positions and scores them per instrument and as
the universe's equal-weight portfolio against buy and hold. Its admission rule judges what a
candidate does (duplicate positions, near copies, buy and hold in disguise), not its code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from alphaloop.tasks.protocol import Task

if TYPE_CHECKING:
    import pandas as pd

    from alphaloop.commands.inputs import FinalInputs, FinishInputs
    from alphaloop.evaluate.pipeline import Trial, Verdict
    from alphaloop.evaluate.scoring import History
    from alphaloop.propose.base import Proposer
    from alphaloop.run.records import IterationRecord
    from alphaloop.run.state import LoopState


class TradeTask(Task):
    """Long/flat timing rules scored by backtest (the seed's contract)."""

    name = "trade"
    summary = "generate_features + strategy_logic, scored by backtest (default)"
    functions = ("generate_features", "strategy_logic")

    def output_decoder(self) -> Callable[..., Any]:
        from alphaloop.tasks.trade.outputs import decode

        return decode

    def invariance_probes(self, frame: pd.DataFrame, seed: int) -> list[Any]:
        from alphaloop.evaluate.guards import invariance_probes

        return invariance_probes(frame, seed, positions=True)

    def score(self, t: Trial) -> None:
        from alphaloop.evaluate.universe import score_universe

        histories = t.ctx.histories
        universe = score_universe(histories, [f.signals for f in t.fulls], metric=t.ctx.metric, folds=t.ctx.folds,
                                  cost_bps=t.ctx.cost_bps)
        t.scores, t.instrument_scores = universe.portfolio, universe.instruments
        t.universe = universe if len(histories) > 1 else None  # one instrument's figures are the scores themselves

    def guards(self, t: Trial) -> Verdict:
        from alphaloop.tasks.trade.judge import judge_guards

        return judge_guards(t)

    def scored_fields(self, ev: Any, histories: tuple[History, ...]) -> dict[str, Any]:
        from alphaloop.tasks.trade.judge import scored_fields

        return scored_fields(ev, histories)

    def accepted_fields(self, ev: Any, stress: dict | None, histories: tuple[History, ...], state: LoopState,
                        stress_select: bool) -> dict[str, Any]:
        from alphaloop.tasks.trade.judge import accepted_fields

        return accepted_fields(ev, stress, histories, state, stress_select)

    def tsv_header(self, metric: str) -> str:
        return (f"n\tparent\tstatus\tstage\tval_{metric}\tval_bh_{metric}\ttrain_{metric}\tval_round_trips\t"
                "novelty\tdescription\n")

    def tsv_row(self, record: IterationRecord, metric: str) -> str:
        from alphaloop.tasks.trade.rows import tsv_row

        return tsv_row(record, metric, self.baseline)

    def offline_proposer(self, seed: int) -> Proposer:
        from alphaloop.propose.offline import OfflineProposer

        return OfflineProposer(seed=seed)

    def evidence(self, n: int, parent: int, latest: IterationRecord | None, parent_rec: IterationRecord | None,
                 grand: IterationRecord | None, last: int, prepared: Any = None,
                 state: LoopState | None = None) -> dict[str, Any]:
        from alphaloop.evaluate.guards import GuardLimits
        from alphaloop.tasks.trade.evidence import evidence, member_correlations

        return {**evidence(n, parent, latest, parent_rec, grand, GuardLimits(), last=last, periods_per_year=prepared),
                "correlations": member_correlations(state) if state is not None else ""}

    def prepare(self, histories: tuple[History, ...]) -> Any:
        return histories[0].periods_per_year  # the bars a year that annualise the prompt's figures

    def run_notes(self, histories: tuple[History, ...], manifest: dict) -> list[str]:
        from alphaloop.present.names import universe_only

        return [*self.data_notes(histories, manifest),
                *universe_only(len(histories), ["scoring: the region runs on every instrument and is ranked by their "
                                                "equal-weight portfolio on validation; prompts number the "
                                                "instruments, never name them"], [])]

    def check_notes(self, histories: tuple[History, ...]) -> list[str]:
        from alphaloop.present.names import universe_only

        return universe_only(len(histories), ["scoring: the region runs on every instrument and is ranked by their "
                                              "equal-weight portfolio (the figures below are the portfolio's; reasons "
                                              "name instruments by number)"], [])

    def data_notes(self, histories: tuple[History, ...], manifest: dict) -> list[str]:
        from alphaloop.data.frozen import prices_words

        return [f"returns on: {prices_words(manifest, [h.frame for h in histories])}"]

    def scores_lines(self, ev: Any, cost_bps: float) -> list[Any]:
        from alphaloop.present.verdict import metrics_table, spread_line

        if ev.scores is None:
            return []
        verdict = "accepted" if ev.accepted else "scored but rejected"
        return [metrics_table(ev.scores.splits, f"{verdict}: train and validation (costs {cost_bps:g} bp)"),
                spread_line(ev.scores)]

    def check_json(self, ev: Any, histories: tuple[History, ...]) -> dict[str, Any]:
        from alphaloop.run.store import finite

        if ev.universe is None:
            return {}
        return {"universe": finite(ev.universe.figures_json())}

    def finish_steps(self, run: FinishInputs, sandbox: Any) -> list[tuple[str, Callable[[], object]]]:
        from alphaloop.tasks.trade.finish import finish_steps

        return finish_steps(run, sandbox)

    def final(self, inputs: FinalInputs) -> int:
        from alphaloop.tasks.trade.final import final_reading

        return final_reading(inputs)
