"""The forecast task as a plug-in of ``alphaloop.tasks.protocol.Task``.

A region defines ``generate_features(df)`` and ``forecast(row)``: down/flat/up probabilities at each
horizon of ``HORIZONS``. The trusted parent buckets each instrument's future moves by its own train
terciles and scores the probabilities by the ranked probability score against climatology (skill 0),
pooling every instrument's days. A forecaster takes no positions: no invariance probes, no trade
guards, no stress suite and no second market; its duplicate key is its probabilities'.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alphaloop.tasks.protocol import REPO, Task

if TYPE_CHECKING:
    from alphaloop.commands.inputs import FinalInputs, FinishInputs
    from alphaloop.evaluate.pipeline import Trial, Verdict
    from alphaloop.evaluate.scoring import History
    from alphaloop.propose.base import Proposer
    from alphaloop.run.records import IterationRecord
    from alphaloop.run.state import LoopState

METRIC = "rps_skill_mean"  # the forecast task's one selection metric (tasks.forecast.scores.SELECTION_METRIC)


class ForecastTask(Task):
    """Probabilities of down/flat/up moves at several horizons, scored by proper scoring rules."""

    name = "forecast"
    summary = "generate_features + forecast(row), probabilities at T+1/3/5/10 scored by RPS skill"
    functions = ("generate_features", "forecast")
    candidates = "forecasters"
    benchmark = "climatology"
    baseline = "baseline (the starting forecaster)"
    shows_trades = False

    def start_file(self) -> Path:
        return REPO / "examples" / "forecast_climatology.py"

    def file_doc(self) -> str:
        return "A forecaster"

    def selection_metric(self, requested: str) -> str:
        return METRIC

    def output_decoder(self) -> Callable[..., Any]:
        from alphaloop.tasks.forecast.outputs import decode

        return decode

    def score(self, t: Trial) -> None:
        from alphaloop.tasks.forecast.pool import score_forecast_universe

        t.scores = score_forecast_universe(t.ctx.histories, [f.forecasts for f in t.fulls], folds=t.ctx.folds)

    def invariance_probes(self, frame: Any, seed: int) -> list[Any]:
        from alphaloop.evaluate.guards import invariance_probes

        # position probes too: probabilities may move by what a converging frequency moves (FORECAST_SLACK)
        return invariance_probes(frame, seed, positions=True)

    def guards(self, t: Trial) -> Verdict:
        from alphaloop.evaluate.guards import forecast_guards
        from alphaloop.evaluate.pipeline import Verdict

        ok, reason, details = forecast_guards(t.region, t.invariances)
        return Verdict(ok, reason, details)

    def output_columns(self, result: Any) -> dict[str, Any]:
        import numpy as np

        from alphaloop.tasks.forecast.buckets import BUCKETS, HORIZONS

        probs = getattr(result, "forecasts", None)
        if probs is None:
            return {}
        names = [f"forecast h={h} p_{k}" for h in HORIZONS for k in BUCKETS]
        flat = np.asarray(probs).reshape(len(probs), -1)
        return {n: flat[:, j] for j, n in enumerate(names)}

    def outputs_of(self, full: Any) -> Any:
        return full.forecasts

    def accepted_fields(self, ev: Any, stress: dict | None, histories: tuple[History, ...], state: LoopState,
                        stress_select: bool) -> dict[str, Any]:
        import numpy as np

        from alphaloop.tasks.forecast.evidence import forecast_fields

        return forecast_fields(ev.scores, np.concatenate(ev.outputs), state)

    def grading_view(self, split: dict | None) -> dict[str, float] | None:
        from alphaloop.tasks.forecast.rows import scalar_view

        return scalar_view(split)

    def beside_benchmark(self, split: dict | None, metric: str) -> str:
        rolled = (split or {}).get("rps_skill_rolling_mean")  # climatology's skill is 0 by construction
        return " (climatology 0.000" + (f"; against the rolling climatology {rolled:+.3f})"
                                        if isinstance(rolled, int | float) else ")")

    def benchmark_value(self, split: dict | None, metric: str) -> float | None:
        return 0.0

    def figures_note(self, split: dict | None) -> str:
        from alphaloop.tasks.forecast.rows import figures_note

        return figures_note(split or {})

    def live_note(self, split: dict) -> str:
        return self.figures_note(split)

    def tsv_header(self, metric: str) -> str:
        from alphaloop.tasks.forecast.rows import tsv_header

        return tsv_header()

    def tsv_row(self, record: IterationRecord, metric: str) -> str:
        from alphaloop.tasks.forecast.rows import tsv_row

        return tsv_row(record, self.baseline)

    def prompts(self) -> dict[str, Path]:
        from alphaloop.tasks.forecast.prompting import FORECAST_PROGRAM_PATH, FORECAST_TEMPLATE_PATH

        return {"program_path": FORECAST_PROGRAM_PATH, "template_path": FORECAST_TEMPLATE_PATH}

    def offline_proposer(self, seed: int) -> Proposer:
        from alphaloop.tasks.forecast.offline import OfflineForecastProposer

        return OfflineForecastProposer(seed=seed)

    def prepare(self, histories: tuple[History, ...]) -> Any:
        import numpy as np

        from alphaloop.tasks.forecast.buckets import BucketScheme
        from alphaloop.tasks.forecast.evidence import Prepared

        schemes = tuple(BucketScheme.from_train(h.frame["Close"].to_numpy(dtype=np.float64)[h.windows["train"]])
                        for h in histories)
        first = histories[0]  # a universe's instruments share the splits' dates; lengths are instrument 1's
        bars = {name: w.stop - w.start for name, w in first.windows.items() if name in ("train", "val")}
        return Prepared(schemes, bars, first.periods_per_year)

    def evidence(self, n: int, parent: int, latest: IterationRecord | None, parent_rec: IterationRecord | None,
                 grand: IterationRecord | None, last: int, prepared: Any = None,
                 state: LoopState | None = None) -> dict[str, Any]:
        from alphaloop.tasks.forecast.evidence import forecast_evidence

        return forecast_evidence(n, parent, latest, parent_rec, prepared.schemes[0], last=last,
                                 schemes=prepared.schemes, prepared=prepared)

    def settings_text(self, metric: str, cost_bps: float) -> str:
        return f"task forecast, metric {METRIC}"

    def check_notes(self, histories: tuple[History, ...]) -> list[str]:
        from alphaloop.present.names import universe_only

        return universe_only(len(histories), ["scoring: the forecaster runs on every instrument, each bucketed by "
                                              "its own train terciles, and its scores pool over all instruments' days "
                                              "(reasons name instruments by number)"], [])

    def scores_lines(self, ev: Any, cost_bps: float) -> list[Any]:
        from alphaloop.tasks.forecast.text import cut_points_line, forecast_table, selection_line

        if ev.scores is None:
            return []
        return [cut_points_line(ev.scores),
                *(forecast_table(ev.scores, split, f"{split} split: forecasts against climatology (skill 0)")
                  for split in ev.scores.splits),
                selection_line(ev.scores)]

    def finish_steps(self, run: FinishInputs, sandbox: Any) -> list[tuple[str, Callable[[], object]]]:
        from alphaloop.present.ui import console
        from alphaloop.tasks.forecast.finish import write_forecast_statistics, write_validation_forecasts

        state, best = run.state, run.state.best
        steps: list[tuple[str, Callable[[], object]]] = [
            ("statistics", lambda: write_forecast_statistics(run.wd, state.trials, best and best.iteration, run.seed))]
        if best is not None:
            steps.append(("forecasts", lambda: console.print(write_validation_forecasts(
                run.wd, run.histories[0], best.iteration, sandbox, self), highlight=False, soft_wrap=True)))
        return steps

    def final(self, inputs: FinalInputs) -> int:
        from alphaloop.tasks.forecast.final import final_reading

        return final_reading(inputs)

    def report_writer(self) -> Callable[[Path, Path], Path] | None:
        from alphaloop.tasks.forecast.report import write_forecast_report

        return lambda workdir, data_dir: write_forecast_report(Path(workdir), self.baseline)
