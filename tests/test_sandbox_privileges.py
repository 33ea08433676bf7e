"""The second wall without bwrap: scrubbed environment, no privileges, no reaching other processes,
a worker that survives a forged result, and parent-side checks of every returned value."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from alphaloop.evaluate.sandboxed import open_sandbox
from sandbox import parent, runner
from sandbox.runner import Sandbox
from tests.test_sandbox_support import ESCAPE, make_ohlcv, region

API_KEY = "sk-canary-privileges-0123456789"
FS_IOC_SETFLAGS = 0x40086602

ATTEMPTS = f"""
{ESCAPE}
def attempt(f):
    try:
        f()
        return 0.0
    except OSError as e:
        return float(e.errno)
parent = PARENT_PID
df['uid'] = float(os.getuid())
df['env_key'] = float(any('sk-canary' in v for v in os.environ.values()))
df['environ'] = attempt(lambda: B['open']('/proc/%d/environ' % parent, 'rb').read())
df['renice'] = attempt(lambda: os.setpriority(os.PRIO_PROCESS, parent, 19))
df['affinity'] = attempt(lambda: os.sched_setaffinity(parent, {{0}}))
df['fifo'] = attempt(lambda: os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1)))
df['setuid'] = attempt(lambda: os.setuid(0))
fd = 0  # the child's stdin, /dev/null opened before the lockdown
df['ioctl'] = attempt(lambda: B['__import__']('fcntl').ioctl(fd, {FS_IOC_SETFLAGS}, b'\\0' * 8))
"""


@pytest.fixture(scope="module", autouse=True)
def secret_env():
    saved = os.environ.get("OPENAI_API_KEY")
    os.environ["OPENAI_API_KEY"] = API_KEY
    yield
    if saved is None:
        os.environ.pop("OPENAI_API_KEY", None)
    else:
        os.environ["OPENAI_API_KEY"] = saved


def _attempts(sb: Sandbox) -> dict[str, float]:
    outcome = sb.run(region(ATTEMPTS.replace("PARENT_PID", str(os.getpid()))), [make_ohlcv(60)])
    assert outcome.ok, outcome.reason
    return {k: float(v[0]) for k, v in outcome.results[0].features.items() if k not in make_ohlcv(2).columns}


def test_environment_is_scrubbed_for_worker_and_child() -> None:
    with open_sandbox(timeout_s=5.0, memory_mb=256, use_bwrap=False, tripwires=False) as sb:
        with open(f"/proc/{sb.worker_pid}/environ", "rb") as fh:
            assert API_KEY.encode() not in fh.read()
        assert set(runner.WORKER_ENV) >= {"PATH"} and not any("KEY" in k or "TOKEN" in k for k in runner.WORKER_ENV)
        assert _attempts(sb)["env_key"] == 0.0


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid switch applies when started as root")
def test_uid_switch_alone_keeps_the_parent_out_of_reach() -> None:
    """Seccomp, Landlock and the tripwires off: the unprivileged uid must still hold."""
    with open_sandbox(timeout_s=5.0, memory_mb=256, use_bwrap=False, use_seccomp=False, use_landlock=False,
                 tripwires=False) as sb:
        assert "no-privileges" in sb.layers
        got = _attempts(sb)
    assert got["uid"] == 65534.0
    assert got["environ"] in (errno.EACCES, errno.EPERM)
    for name in ("renice", "affinity", "fifo", "setuid"):
        assert got[name] == errno.EPERM, (name, got)


def test_seccomp_refuses_priority_scheduler_uid_and_ioctl_calls() -> None:
    try:
        sb = open_sandbox(timeout_s=5.0, memory_mb=256, use_bwrap=False, use_seccomp=True, use_landlock=False,
                     tripwires=False)
    except RuntimeError as exc:
        pytest.skip(f"seccomp unavailable: {exc}")
    with sb:
        got = _attempts(sb)
    for name in ("renice", "affinity", "fifo", "setuid", "ioctl"):
        assert got[name] == errno.EPERM, (name, got)
    assert got["environ"] != 0.0


def test_worker_survives_a_forged_nan_result() -> None:
    forged = ESCAPE + (
        "h = b'{\"status\":\"ok\",\"frames\":[{\"n\":NaN,\"signals\":NaN,\"features\":[]}]}'\n"
        "os.write(3, b'ALSB' + len(h).to_bytes(4, 'little') + (0).to_bytes(8, 'little') + h)\n"
        "os._exit(0)"
    )
    with open_sandbox(timeout_s=5.0, memory_mb=256, use_bwrap=False) as sb:
        worker = sb.worker_pid
        outcome = sb.run(region(forged), [make_ohlcv(60)])
        assert outcome.status == "bad_output" and "malformed" in outcome.reason, outcome.reason
        assert sb.worker_pid == worker
        assert sb.run(region("x = 1"), [make_ohlcv(60)]).ok
        assert sb.worker_pid == worker


@pytest.fixture(scope="module")
def box():
    with open_sandbox(timeout_s=10.0, memory_mb=512, use_bwrap=False) as sb:
        yield sb


def test_string_signals_after_row_1000_are_refused(box: Sandbox) -> None:
    frame = make_ohlcv(1500)
    outcome = box.run(region("df['i'] = np.arange(len(df))", "return '1' if row['i'] > 1200 else 0"), [frame])
    assert outcome.status == "bad_output" and "must be numbers" in outcome.reason, outcome.reason


@pytest.mark.parametrize("name", ["x\x1b[2J", "ok\nACCEPTED", '{"accepted": true}', "a<script>", "é"])
def test_feature_names_outside_the_plain_charset_are_refused(box: Sandbox, name: str) -> None:
    outcome = box.run(region(f"df[{name!r}] = 1.0"), [make_ohlcv(60)])
    assert outcome.status == "bad_output" and "is not allowed" in outcome.reason, outcome.reason
    assert "\x1b" not in outcome.reason and "\n" not in outcome.reason


def test_plain_feature_names_pass(box: Sandbox) -> None:
    outcome = box.run(region("df['sma_20'] = 1.0\ndf['ret 5d (%)'] = 2.0\ndf[('a', 'b')] = 3.0"), [make_ohlcv(60)])
    assert outcome.ok, outcome.reason
    assert {"sma_20", "ret 5d (%)", "('a', 'b')"} <= set(outcome.results[0].features)
    assert np.all(outcome.results[0].features["sma_20"] == 1.0)


def test_reduced_isolation_warning_is_printed_once(capfd: pytest.CaptureFixture[str]) -> None:
    parent._WARNED.clear()
    with open_sandbox(timeout_s=5.0, memory_mb=256, use_bwrap=False), open_sandbox(timeout_s=5.0, memory_mb=256,
                                                                          use_bwrap=False):
        pass
    err = capfd.readouterr().err
    assert err.count("reduced isolation") == 1 and "apt-get install bubblewrap" in err


@pytest.mark.parametrize("body", ["df = df.iloc[::-1]", "df.index = df.index + pd.Timedelta(days=1)",
                                  "df = df.sort_values('Close')"])
def test_reordered_or_relabelled_rows_are_refused(box: Sandbox, body: str) -> None:
    outcome = box.run(region(body), [make_ohlcv(60)])
    assert outcome.status == "bad_output" and "changed the index" in outcome.reason, outcome.reason


def test_whole_corpus_runs_in_the_no_bwrap_sandbox(box: Sandbox) -> None:
    from tests.test_sandbox_support import CORPUS_DIR

    frame = make_ohlcv(400, seed=2)
    for path in sorted(CORPUS_DIR.glob("*.py")):
        outcome = box.run(path.read_text(encoding="utf-8"), [frame])
        assert outcome.ok, f"{path.stem}: {outcome.reason}"
