"""Hostile candidates: each is refused by the gate and, with the gate switched off, contained by the
runner without a trace (no secret read, no file touched, no connection, no process left behind,
the parent alive and the worker still serving).
"""

from __future__ import annotations

import hashlib
import os
import pickle
import socket
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alphaloop.evaluate.sandboxed import open_sandbox
from sandbox.gate import check
from sandbox.runner import LOG_LIMIT, PROJECT_ROOT, RunOutcome, Sandbox, bwrap_status
from tests.test_sandbox_support import BUILTINS, ESCAPE, MONKEYPATCH, make_ohlcv, processes_with, region

TOKEN = uuid.uuid4().hex[:12]
SECRET = f"CANARY-SECRET-{TOKEN}"
KEY = f"-----BEGIN CANARY KEY {TOKEN}-----"
API_KEY = f"sk-canary-{TOKEN}"
PROJECT_TEXT = "[build-system]"
LOG_BOUND = LOG_LIMIT + 100  # the kept tail of the output plus a one-line note of what was dropped
# What a liar prints, hoping the parent parses it as a score or as the result message.
FAKE_JSON = '{"status": "ok", "metrics": {"val_return": 99, "sharpe": 42}, "signals": [1, 1, 1]}'
FAKE_LINES = ("val_return: 99", "sharpe: 42", FAKE_JSON)
# Known, non-trivial true signals for the fake-results attacks: long on even rows, exit on odd rows.
ALTERNATE = "df['alt'] = (np.arange(len(df)) % 2).astype(float)\n"
ALTERNATE_LOGIC = "return 1 if row['alt'] == 0 else -1"


def _prints(fn: str) -> str:
    """Lines calling ``fn`` on each fake line, braces escaped for the ``str.format`` in ``_source``."""
    return "".join(f"{fn}({line!r})\n" for line in FAKE_LINES).replace("{", "{{").replace("}", "}}")


class _Evil:
    """Unpickling this runs a shell command: what ``read_pickle`` on a planted file would do."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (self.command,)


HOSTILE: dict[str, tuple[str, str, set[str]]] = {
    "builtins-as-name": ("__builtins__ as a plain name",
                         "b = __builtins__\no = b['open'] if isinstance(b, dict) else b.open\n"
                         "raise ValueError(o({secret!r}).read())",
                         {"private-name"}),
    "traceback-frame-builtins": ("frame and traceback attributes",
                                 "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n"
                                 "    fb = e.__traceback__.tb_frame.f_back.f_builtins\n"
                                 "    raise ValueError(fb['open']({secret!r}).read())",
                                 {"private-name", "introspection"}),
    "generator-frame-globals": ("frame and traceback attributes",
                                "g = (i for i in range(3))\nnext(g)\nraise ValueError(str(g.gi_frame.f_globals))",
                                {"introspection"}),
    "vars-module": ("vars(module)[...]",
                    "raise ValueError(vars(pd.io.common)['os'].system('touch {marker}'))", {"reflection", "internals"}),
    "vars-escaped": ("vars(module)[...]",
                     ESCAPE + "o = B['vars'](pd.io.common)['os']\nraise ValueError(o.system('touch {marker}'))",
                     {"private-name"}),
    "np-ctypeslib": ("np.ctypeslib.ctypes",
                     "libc = np.ctypeslib.ctypes.CDLL(None)\nraise ValueError(libc.system(b'touch {marker}'))",
                     {"internals"}),
    "read-csv-secret": ("readers", "raise ValueError(pd.read_csv({secret!r}).to_string())", {"io"}),
    "read-ssh-key": ("readers", "raise ValueError(open({key!r}).read())", {"io"}),
    "read-project-file": ("readers", "raise ValueError(str(pd.read_table({project!r}).columns))", {"io"}),
    "fromfile": ("readers", "raise ValueError(np.fromfile({secret!r}, dtype='uint8').tobytes())", {"io"}),
    "loadtxt": ("readers", "raise ValueError(str(np.loadtxt({secret!r}, dtype=str)))", {"io"}),
    "read-pickle-executes": ("readers (read_pickle = code execution)", "x = pd.read_pickle({pickle!r})", {"io"}),
    "np-load-pickle": ("readers (read_pickle = code execution)",
                       "x = np.load({pickle!r}, allow_pickle=True)", {"io"}),
    "read-url": ("URL readers", "x = pd.read_csv('http://127.0.0.1:{port}/x.csv')", {"io"}),
    "proc-environ": ("secrets", "raise ValueError(str(pd.read_csv('/proc/self/environ', sep='|').columns))", {"io"}),
    "environ-through-pandas": ("secrets", "raise ValueError(str(dict(pd.io.common.os.environ)))", {"internals"}),
    "to-csv": ("writers", "df.to_csv({out!r} + '/a.csv')", {"io"}),
    "to-pickle": ("writers", "df.to_pickle({out!r} + '/b.pkl')", {"io"}),
    "savetxt": ("writers", "np.savetxt({out!r} + '/c.txt', df.values)", {"io"}),
    "tofile": ("writers", "df['Close'].values.tofile({out!r} + '/d.bin')", {"io"}),
    "open-memmap": ("writers",
                    "m = np.lib.format.open_memmap({out!r} + '/e.npy', mode='w+', dtype='f8', shape=(4,))",
                    {"io"}),
    "overwrite-secret": ("writers", "open({secret!r}, 'w').write('pwned')", {"io"}),
    "query": ("string evaluation", "q = \"@pd.read_csv('{secret}').shape[0] > 0\"\nx = df.query(q)",
              {"string-eval"}),
    "pd-eval": ("string evaluation",
                "x = pd.eval('d.to_csv(p)', local_dict={{'d': df, 'p': {out!r} + '/f.csv'}})", {"string-eval"}),
    "apply-method-name": ("apply('method_name')", "x = df.apply('to_csv', path_or_buf={out!r} + '/g.csv')",
                          {"string-dispatch"}),
    "agg-method-name": ("apply('method_name')", "x = df['Close'].agg('to_pickle', {out!r} + '/h.pkl')",
                        {"string-dispatch"}),
    "compile-function-type": ("compile + a function type",
                              "code = compile(\"__import__('os').system('touch {marker}')\", 'x', 'exec')\n"
                              "f = (lambda: 0).__class__(code, {{}})\nf()",
                              {"string-eval", "private-name"}),
    "monkeypatch-pandas": ("monkeypatching pandas",
                           "pd.Series.mean = lambda self, *a, **k: 99.0\n"
                           "pd.DataFrame.to_dict = lambda self, *a, **k: []", {"attribute-assign"}),
    "fake-results": ("printing fake results", _prints("print") + ALTERNATE, {"output"}),
    "fake-results-escaped": ("printing fake results", f"p = {BUILTINS}['print']\n" + _prints("p") + ALTERNATE,
                             {"private-name"}),
    "kill-parent": ("killing the parent", "import os\nos.kill({parent}, 9)\nos.kill(os.getppid(), 9)", {"import"}),
    "kill-parent-escaped": ("killing the parent",
                            ESCAPE + "os.kill({parent}, 9)\nos.kill(os.getppid(), 9)\n"
                                     "os.killpg(os.getpgid({parent}), 9)",
                            {"private-name"}),
    "detached-grandchild": ("forking a detached grandchild",
                            "import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                            "        import time\n        time.sleep(60)\n    os._exit(0)", {"import"}),
    "detached-grandchild-escaped": ("forking a detached grandchild",
                                    ESCAPE + "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                                    "        B['__import__']('time').sleep(60)\n    os._exit(0)",
                                    {"private-name"}),
    "shell-command": ("processes", ESCAPE + "raise ValueError(os.system('touch {marker}'))", {"private-name"}),
    "socket-connect": ("network",
                       ESCAPE + "s = B['__import__']('socket')\n"
                                "s.create_connection(('127.0.0.1', {port}), timeout=1)",
                       {"private-name"}),
    "infinite-loop": ("infinite loops", "while True:\n    pass", {"infinite-loop"}),
    "memory-bomb": ("memory bombs", "x = [0] * (10 ** 10)", {"huge-size"}),
    "memory-bomb-numpy": ("memory bombs", "x = np.ones((10 ** 5, 10 ** 5))", {"huge-size"}),
    "giant-output": ("giant output", "for i in range(60):\n    print('z' * 10 ** 6)", {"output"}),
    "parser-crash": ("source that crashes the parser", "x = " + "-" * 5000 + "1", {"parse", "too-deep"}),
    "null-byte": ("source that crashes the parser", "x = 1\x00", {"parse"}),
}

CONFIGS = {
    "all-layers": {},
    "outer-layers-only": {"tripwires": False},
    "no-bwrap": {"use_bwrap": False},
}


@pytest.fixture(scope="module", autouse=True)
def secret_env():
    """Secrets in the parent's environment, as a user's .env would put them there."""
    saved = {k: os.environ.get(k) for k in ("OPENAI_API_KEY", "AWS_SECRET_ACCESS_KEY")}
    os.environ["OPENAI_API_KEY"] = API_KEY
    os.environ["AWS_SECRET_ACCESS_KEY"] = API_KEY
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="module")
def canary(tmp_path_factory) -> dict[str, Any]:
    """A stand-in project and home with secrets, a planted pickle, and an output folder."""
    root = tmp_path_factory.mktemp("canary")
    (root / "project").mkdir()
    (root / "home" / ".ssh").mkdir(parents=True)
    (root / "out").mkdir()
    secret, key, planted = root / "project" / "secret.txt", root / "home" / ".ssh" / "id_rsa", root / "evil.pkl"
    secret.write_text(f"{SECRET}\n", encoding="utf-8")
    key.write_text(f"{KEY}\n", encoding="utf-8")
    marker = root / "out" / "PWNED"
    planted.write_bytes(pickle.dumps(_Evil(f"touch {marker}")))
    return {"root": root, "secret": str(secret), "key": str(key), "pickle": str(planted),
            "out": str(root / "out"), "marker": str(marker),
            "project": str(PROJECT_ROOT / "pyproject.toml")}


def _snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            out[str(path.relative_to(root))] = (len(data), path.stat().st_mtime_ns, hashlib.sha256(data).hexdigest())
    return out


@pytest.fixture(scope="module")
def listener():
    """A TCP listener on 127.0.0.1 that must never see a connection."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


LOGIC = {"fake-results": ALTERNATE_LOGIC, "fake-results-escaped": ALTERNATE_LOGIC}  # else "return 0"
# How each attack ends once contained; every other attack ends in "exception".
END_STATUS = {"infinite-loop": "timeout", "memory-bomb": "memory", "memory-bomb-numpy": "memory",
              "monkeypatch-pandas": "ok", "fake-results-escaped": "ok"}
# Harmless once the outer layers hold, but they need print or compile, which restricted builtins lack.
NEEDS_FULL_BUILTINS = {"fake-results", "giant-output", "compile-function-type"}


class _Box:
    """A sandbox under attack and how many processes it had before any attack."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.baseline = len(processes_with(sb.token))

    def end_status(self, name: str) -> str:
        if name in NEEDS_FULL_BUILTINS:
            return "exception" if "restricted-builtins" in self.sb.layers else "ok"
        return END_STATUS.get(name, "exception")


@pytest.fixture(scope="module", params=list(CONFIGS), ids=list(CONFIGS))
def hostile_box(request, secret_env):
    with open_sandbox(timeout_s=3.0, memory_mb=384, **CONFIGS[request.param]) as sb:
        yield _Box(sb)
    assert processes_with(sb.token) == []


def _source(name: str, canary: dict[str, Any], port: int) -> str:
    values = {k: canary[k] for k in ("secret", "key", "pickle", "out", "marker", "project")}
    body = HOSTILE[name][1].format(port=port, parent=os.getpid(), **values)
    return region(body, LOGIC.get(name, "return 0"))


@pytest.mark.parametrize("name", list(HOSTILE))
def test_gate_refuses(name: str, canary: dict[str, Any], listener: socket.socket) -> None:
    rules = HOSTILE[name][2]
    result = check(_source(name, canary, listener.getsockname()[1]))
    assert not result.ok
    assert result.rule in rules, result.reason


def _assert_contained(name: str, outcome: RunOutcome, box: _Box, canary: dict[str, Any], before: dict[str, Any],
                      listener: socket.socket) -> None:
    assert outcome.status == box.end_status(name), outcome.reason
    assert (outcome.results is not None) == outcome.ok and bool(outcome.reason) != outcome.ok
    text = outcome.log + outcome.reason
    for secret in (SECRET, KEY, API_KEY, TOKEN, PROJECT_TEXT):
        assert secret not in text, f"secret leaked: {secret!r} in {text[:300]!r}"
    assert _snapshot(canary["root"]) == before
    assert not os.path.exists(canary["marker"])
    assert os.listdir(canary["out"]) == []
    with pytest.raises(BlockingIOError):
        listener.accept()[0].close()
    assert len(processes_with(box.sb.token)) == box.baseline
    assert outcome.seconds < box.sb.timeout_s + 3.0
    assert len(outcome.log) <= LOG_BOUND


@pytest.mark.parametrize("name", list(HOSTILE))
def test_runner_contains(name: str, hostile_box: _Box, canary: dict[str, Any], listener: socket.socket) -> None:
    sb = hostile_box.sb
    attack_class = HOSTILE[name][0]
    before = _snapshot(canary["root"])
    worker = sb.worker_pid
    timeout = 0.5 if name == "infinite-loop" else None
    frame = make_ohlcv(300, seed=5)
    outcome = sb.run(_source(name, canary, listener.getsockname()[1]), [frame], timeout_s=timeout)
    _assert_contained(name, outcome, hostile_box, canary, before, listener)
    if name == "infinite-loop":
        assert outcome.seconds < 10.0
    elif name == "giant-output" and outcome.ok:
        assert "bytes of output dropped" in outcome.log
    elif name.startswith("fake-results") and outcome.ok:
        (result,) = outcome.results
        truth = np.where(np.arange(len(frame)) % 2 == 0, 1, -1)
        assert result.signals.tolist() == truth.tolist()  # the real signals, not the printed ones
        assert list(result.features) == [*frame.columns, "alt"]
        assert outcome.log.splitlines() == list(FAKE_LINES)  # the prints are a log line, nothing more
    elif name.startswith("fake-results"):
        assert outcome.reason.startswith("NameError: name 'print' is not defined")
    elif name.startswith("kill-parent"):
        assert sb.worker_pid == worker, "the worker was killed"
        follow_up = sb.run(region("df['x'] = df['Close'].rolling(3).mean()"), [frame])
        assert follow_up.ok, f"sandbox unusable after {attack_class}: {follow_up.reason}"


def test_monkeypatch_cannot_change_later_results(hostile_box: _Box) -> None:
    sb = hostile_box.sb
    frame = make_ohlcv(300, seed=6)
    honest = region("df['m'] = df['Close'].rolling(10).mean()", "return 1 if row['Close'] > row['m'] else -1")
    before = sb.run(honest, [frame])
    patched = sb.run(region(MONKEYPATCH), [frame])
    after = sb.run(honest, [frame])
    assert patched.ok, patched.reason
    assert (patched.results[0].features["seen_rolling"] == 99.0).all(), "the patch did not take; test is void"
    assert before.ok and after.ok
    assert set(before.results[0].signals.tolist()) == {1, -1}
    assert np.array_equal(before.results[0].signals, after.results[0].signals)
    assert np.array_equal(before.results[0].features["m"], after.results[0].features["m"], equal_nan=True)


GRANDCHILD = region(ESCAPE + "pid = os.fork()\nif pid == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                    "        B['__import__']('time').sleep(60)\n    os._exit(0)\ndf['forked'] = float(pid)")


def _assert_grandchild_killed(sb: Sandbox) -> None:
    baseline = len(processes_with(sb.token))
    outcome = sb.run(GRANDCHILD, [make_ohlcv(100)])
    assert outcome.ok, outcome.reason
    assert outcome.results[0].features["forked"][0] > 0, "the fork did not happen; test is void"
    assert len(processes_with(sb.token)) == baseline


def test_bwrap_pid_namespace_kills_detached_grandchild() -> None:
    """With seccomp and the tripwires off the fork succeeds; the pid namespace must still hold."""
    if bwrap_status() is not None:
        pytest.skip(f"bwrap unavailable: {bwrap_status()}")
    with open_sandbox(timeout_s=3.0, memory_mb=256, use_bwrap=True, use_seccomp=False,
                 use_landlock=False, tripwires=False) as sb:
        _assert_grandchild_killed(sb)
        token = sb.token
    assert processes_with(token) == []


@pytest.fixture(scope="module")
def landlock_only():
    try:
        sb = open_sandbox(timeout_s=3.0, memory_mb=256, use_bwrap=False, use_seccomp=False,
                     use_landlock=True, tripwires=False)
    except RuntimeError as exc:
        pytest.skip(f"landlock unavailable: {exc}")
    with sb:
        yield sb
    assert processes_with(sb.token) == []


def test_subreaper_sweep_kills_detached_grandchild_without_bwrap(landlock_only: Sandbox) -> None:
    _assert_grandchild_killed(landlock_only)


def test_landlock_alone_blocks_files_network_and_signals(landlock_only: Sandbox, canary: dict[str, Any],
                                                         listener: socket.socket) -> None:
    frame = make_ohlcv(50)
    read = landlock_only.run(region(f"x = open({canary['secret']!r}).read()"), [frame])
    write = landlock_only.run(region(f"open({canary['out']!r} + '/w.txt', 'w').write('x')"), [frame])
    port = listener.getsockname()[1]
    dial = f"B['__import__']('socket').create_connection(('127.0.0.1', {port}))"
    connect = landlock_only.run(region(ESCAPE + dial), [frame])
    kill = landlock_only.run(region(ESCAPE + "os.kill(os.getppid(), 9)"), [frame])
    for outcome in (read, write, connect, kill):
        assert outcome.status == "exception" and outcome.reason.startswith("PermissionError"), outcome.reason
    assert os.listdir(canary["out"]) == []
    with pytest.raises(BlockingIOError):
        listener.accept()[0].close()


def test_seccomp_alone_blocks_fork_and_sockets() -> None:
    try:
        sb = open_sandbox(timeout_s=3.0, memory_mb=256, use_bwrap=False, use_seccomp=True,
                     use_landlock=False, tripwires=False)
    except RuntimeError as exc:
        pytest.skip(f"seccomp unavailable: {exc}")
    with sb:
        fork = sb.run(region(ESCAPE + "os.fork()"), [make_ohlcv(50)])
        sock = sb.run(region(ESCAPE + "B['__import__']('socket').socket()"), [make_ohlcv(50)])
        kill = sb.run(region(ESCAPE + "os.kill(os.getppid(), 9)"), [make_ohlcv(50)])
    for outcome in (fork, sock, kill):
        assert outcome.status == "exception" and outcome.reason.startswith("PermissionError"), outcome.reason


def test_tripwires_alone_stop_file_access(canary: dict[str, Any]) -> None:
    with open_sandbox(timeout_s=3.0, memory_mb=256, use_bwrap=False, use_seccomp=False, use_landlock=False) as sb:
        assert sb.layers[-2:] == ["audit-hook", "restricted-builtins"]
        plain = sb.run(region(f"x = open({canary['secret']!r}).read()"), [make_ohlcv(50)])
        escaped = sb.run(region(f"x = pd.read_csv({canary['secret']!r})"), [make_ohlcv(50)])
    assert plain.status == "exception" and plain.reason.startswith("NameError")
    assert escaped.status == "exception" and "sandbox violation" in escaped.reason
    assert SECRET not in plain.reason + escaped.reason + plain.log + escaped.log
