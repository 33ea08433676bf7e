"""A worker started before the command's imports, and frames run side by side (issue 22.2).

Both exist for speed, so each test checks what the user relies on staying true: the early worker is
only ever taken over by a sandbox asking for exactly its layers (and stopped otherwise), and frames
run side by side come back in order, each from a process of its own (the longest started first), with
the earliest failing frame deciding the run, as when they ran one after another.
"""

from __future__ import annotations

import time

import pytest

from alphaloop.evaluate.sandboxed import open_sandbox
from alphaloop.tasks.protocol import driver_source
from sandbox import launch
from tests.test_sandbox_support import make_ohlcv, processes_with, region

# Each frame reports its length and the process it ran in (read through pandas, no import needed).
SIZE_AND_PROCESS = region('df["n"] = float(len(df))\n'
                          'df["pid"] = float(pd.DataFrame.__init__.__globals__["__builtins__"]["__import__"]'
                          '("os").getpid())')


def gone(token: str, within_s: float = 10.0) -> bool:
    end = time.monotonic() + within_s
    while time.monotonic() < end:
        if not processes_with(token):
            return True
        time.sleep(0.05)
    return False


def test_the_first_default_sandbox_takes_over_the_early_worker() -> None:
    launch.begin_early()
    early = launch._EARLY[-1].token
    with open_sandbox() as box:
        assert box.token == early
        outcome = box.run(SIZE_AND_PROCESS, [make_ohlcv(40)])
        assert outcome.ok, outcome.reason
        assert outcome.results[0].features["n"][0] == 40.0
    assert gone(early)


def test_a_sandbox_asking_for_other_layers_stops_the_early_worker_and_starts_its_own() -> None:
    launch.begin_early()
    early = launch._EARLY[-1].token
    with open_sandbox(tripwires=False) as box:
        assert box.token != early
        assert "audit-hook" not in box.layers
        assert gone(early)
        assert box.run(SIZE_AND_PROCESS, [make_ohlcv(40)]).ok


def test_an_early_worker_booted_with_the_drivers_is_taken_only_by_a_sandbox_of_the_same_drivers() -> None:
    # `check` boots the worker with its task's driver so the zygotes fork while it imports; a sandbox of
    # that driver takes it over and runs frames with it, one of other drivers stops it and starts its own
    trade = [("trade", driver_source("trade"))]
    launch.begin_early(trade)
    early = launch._EARLY[-1].token
    with open_sandbox(tasks=("trade",)) as box:
        assert box.token == early
        outcome = box.run(SIZE_AND_PROCESS, [make_ohlcv(40)])
        assert outcome.ok, outcome.reason
        assert outcome.results[0].features["n"][0] == 40.0
    assert gone(early)
    launch.begin_early(trade)
    early = launch._EARLY[-1].token
    with open_sandbox(tasks=("trade", "forecast")) as box:
        assert box.token != early
        assert gone(early)
        assert box.run(SIZE_AND_PROCESS, [make_ohlcv(40)]).ok


def test_the_worker_runs_no_site_hook_of_the_environment() -> None:
    # it starts without `site` (the libraries' folders come in its first message): no .pth file of the
    # environment, such as an editable install's import finder, runs where candidates run
    site_state = region('sys = pd.DataFrame.__init__.__globals__["__builtins__"]["__import__"]("sys")\n'
                        'df["no_site"] = float(sys.flags.no_site)\n'
                        'df["site_loaded"] = float("site" in sys.modules)')
    with open_sandbox(tasks=("trade",)) as box:
        outcome = box.run(site_state, [make_ohlcv(40)])
    assert outcome.ok, outcome.reason
    assert outcome.results[0].features["no_site"][0] == 1.0
    assert outcome.results[0].features["site_loaded"][0] == 0.0


@pytest.fixture(scope="module")
def side_by_side():
    with open_sandbox(frames_at_once=2) as box:
        yield box


def test_frames_side_by_side_come_back_in_order_each_from_its_own_process(side_by_side) -> None:
    lengths = [30, 45, 60, 75, 90, 105]
    outcome = side_by_side.run(SIZE_AND_PROCESS, [make_ohlcv(n) for n in lengths])
    assert outcome.ok, outcome.reason
    assert [r.features["n"][0] for r in outcome.results] == [float(n) for n in lengths]
    assert len({r.features["pid"][0] for r in outcome.results}) == len(lengths)


def test_the_longest_frames_start_first_and_still_come_back_in_request_order() -> None:
    # a child costs about the same however short its frame, so the zygotes start the longest frames and the
    # short ones fill in after them: no zygote is left running a long frame alone at the end. With one zygote
    # the frames run one after another in exactly that order (with two, which zygote starts first is the
    # scheduler's, so start times alone would not show it)
    started_at = region('df["n"] = float(len(df))\n'
                        'df["t"] = float(pd.DataFrame.__init__.__globals__["__builtins__"]["__import__"]'
                        '("time").monotonic())')
    lengths = [30, 40, 400, 50, 300]
    with open_sandbox(tasks=("trade",), frames_at_once=1) as box:
        outcome = box.run(started_at, [make_ohlcv(n) for n in lengths])
    assert outcome.ok, outcome.reason
    assert [r.features["n"][0] for r in outcome.results] == [float(n) for n in lengths]
    start = {n: r.features["t"][0] for n, r in zip(lengths, outcome.results, strict=True)}
    assert sorted(lengths, key=start.__getitem__) == [400, 300, 50, 40, 30]


def test_the_earliest_failing_frame_decides_the_run_even_when_a_later_one_fails_first(side_by_side) -> None:
    # frame 0 fails late (after a pause), frame 1 at once: run one after another, frame 0's reason is what
    # the user saw, and running them side by side must not change it
    slow_then_fail = region('''
        if len(df) == 30:
            import time
            time.sleep(0.5)
            raise ValueError("the first frame failed")
        raise ValueError("a later frame failed")
    ''')
    outcome = side_by_side.run(slow_then_fail, [make_ohlcv(30), make_ohlcv(60), make_ohlcv(90)])
    assert outcome.status == "exception"
    assert "the first frame failed" in outcome.reason


def test_a_failing_frame_ends_the_run_without_waiting_for_the_frames_after_it(side_by_side) -> None:
    # frame 0 fails after a second, so the other child has run frames 1 and 2 and started frame 3 (a
    # minute of sleep) by then: frame 3 is killed when frame 0's failure is known, so the run ends in
    # seconds, not at its time limit
    region_text = region('''
        import time
        if len(df) == 30:
            time.sleep(1)
            raise ValueError("stop here")
        if len(df) == 120:
            time.sleep(60)
    ''')
    started = time.monotonic()
    outcome = side_by_side.run(region_text, [make_ohlcv(n) for n in (30, 60, 90, 120)], timeout_s=120)
    assert outcome.status == "exception" and "stop here" in outcome.reason
    assert time.monotonic() - started < 30


# What pandas makes of a time zone computed at run time, as one number per outcome: 0 a naive time (what
# an unknown name gives), 1 an aware one, 2 an error. Through "dateutil/" pandas hands the rest to
# dateutil's gettz, which opened any absolute path: existing, readable and missing files all answered
# differently, so a candidate could map the host's files.
TZ_PROBE = region('''
    out = []
    for name in NAMES:
        try:
            stamp = pd.Timestamp("2020-01-01", tz="dateutil/" + name)
            out.append(0.0 if stamp.tz is None else 1.0)
        except Exception:
            out.append(2.0)
    for k, v in enumerate(out):
        df[f"tz{k}"] = v
''')


def tz_answers(box, names: list[str]) -> list[float]:
    outcome = box.run(f"NAMES = {names!r}\n" + TZ_PROBE, [make_ohlcv(20)])
    assert outcome.ok, outcome.reason
    return [float(outcome.results[0].features[f"tz{k}"][0]) for k in range(len(names))]


def test_a_computed_time_zone_cannot_tell_whether_a_host_path_exists() -> None:
    host_paths = ["/usr/share/zoneinfo/UTC", "/usr/share/zoneinfo/No/Such_Zone", "/etc/passwd", "/etc/no-such-file",
                  "Europe/../../../../etc/passwd"]
    with open_sandbox(use_bwrap=False) as box:  # the host's folders, as a machine without bubblewrap shows them
        answers = tz_answers(box, host_paths)
        assert answers == [0.0] * len(host_paths)  # every one answered as an unknown zone
        assert tz_answers(box, ["Europe/Paris", "UTC"]) == [1.0, 1.0]  # plain IANA names still work
