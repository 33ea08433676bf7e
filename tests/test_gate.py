"""The static gate: ordinary strategies pass, escape hatches and parser crashers are refused."""

from __future__ import annotations

import random
import types

import numpy as np
import pandas as pd
import pytest

from sandbox.gate import RULES, GateResult, attribute_refusal, check
from tests.test_sandbox_support import CORPUS_DIR, make_ohlcv, region

CORPUS = sorted(CORPUS_DIR.glob("*.py"))


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_ordinary_strategy_is_accepted(path) -> None:
    result = check(path.read_text(encoding="utf-8"))
    assert result == GateResult(True, "", None, ""), result.reason


ACCEPTED_SNIPPETS = {
    "tuple-unpacking": "a, (b, c) = 1, (2, 3)\nx = a + b + c",
    "augmented": "x = 1\nx += 2\nx *= 3",
    "ternary": "x = 1 if len(df) > 3 else 0",
    "while-with-condition": "i = 0\nwhile i < 10:\n    i += 1",
    "while-true-with-break": "i = 0\nwhile True:\n    i += 1\n    if i > 3:\n        break",
    "nested-helper": "def inner(s):\n    return s * 2\ndf['x'] = inner(df['Close'])",
    "lambda-in-rolling": "df['x'] = df['Close'].rolling(5).apply(lambda w: w[-1] - w[0], raw=True)",
    "dict-comprehension": "m = {k: v for k, v in zip('ab', (1, 2))}",
    "set-and-generator": "s = {x for x in range(3)}\nt = sum(x for x in range(3))",
    "fstring": "n = 3\ndf[f'col_{n}'] = 1.0",
    "try-except-else-finally": "try:\n    x = 1\nexcept (KeyError, ValueError) as e:\n    x = 0\n"
                               "else:\n    x = 2\nfinally:\n    y = 3",
    "reducer-strings": "df['m'] = df['Close'].rolling(5).agg('mean')\n"
                       "g = df.groupby(df.index.month)['Close'].transform('std')",
    "agg-numpy-function": "s = df['Close'].rolling(5).agg(np.mean)",
    "apply-helper-defined-here": "df['x'] = df['Close'].rolling(5).apply(helper, raw=True)",
    "sliding-window-view": "w = np.lib.stride_tricks.sliding_window_view(df['Close'].to_numpy(), 3)",
    "loc-assignment": "df.loc[df['Close'] > 0, 'pos'] = 1\ndf.iloc[0, 0] = df.iloc[1, 0]",
    "annotations": "x: float = 1.0",
    "walrus": "if (n := len(df)) > 3:\n    df['n'] = n",
    "format-literal": "name = '{}_{:d}'.format('sma', 5)",
    "assert-and-raise": "assert len(df) > 0, 'empty'\nif len(df) < 0:\n    raise ValueError('impossible')",
    "delete-column": "df['tmp'] = 1\ndel df['tmp']",
    "underscore-throwaway": "for _ in range(3):\n    pass",
    "big-float-threshold": "big = df['Volume'] > 1e12",
}


@pytest.mark.parametrize("body", ACCEPTED_SNIPPETS.values(), ids=ACCEPTED_SNIPPETS.keys())
def test_ordinary_control_flow_is_accepted(body: str) -> None:
    source = region(body, prelude="def helper(w):\n    return w[-1]\n")
    result = check(source)
    assert result.ok, result.reason


REFUSED = {
    "dunder-builtins-name": ("x = __builtins__['open']('/etc/passwd')", "private-name"),
    "dunder-class-walk": ("x = ().__class__.__base__.__subclasses__()", "private-name"),
    "gi-frame": ("g = (i for i in range(3))\nx = g.gi_frame.f_globals", "introspection"),
    "tb-frame": ("try:\n    1 / 0\nexcept ZeroDivisionError as e:\n    x = e.tb_frame", "introspection"),
    "f-builtins": ("x = df.f_builtins", "introspection"),
    "vars-module": ("x = vars(pd)['read_csv']", "reflection"),
    "getattr": ("x = getattr(df, 'to_csv')", "reflection"),
    "type-call": ("x = type('X', (), {})", "reflection"),
    "ctypeslib": ("x = np.ctypeslib.ctypes", "internals"),
    "pd-io": ("x = pd.io.common.os", "internals"),
    "pd-core": ("x = pd.core.frame", "internals"),
    "np-lib": ("x = np.lib.npyio", "internals"),
    "open-memmap": ("x = np.lib.format.open_memmap('/tmp/x', mode='w+', shape=(3,))", "io"),
    "pd-api-accessor": ("x = pd.api.extensions", "internals"),
    "enum-builtins-alias": ("x = np.random.bit_generator.re.enum.bltns", "internals"),
    "read-csv": ("x = pd.read_csv('/etc/passwd')", "io"),
    "read-pickle": ("x = pd.read_pickle('/tmp/evil.pkl')", "io"),
    "read-url": ("x = pd.read_json('http://127.0.0.1:1/x')", "io"),
    "to-csv": ("df.to_csv('/tmp/out.csv')", "io"),
    "to-string-buffer": ("df.to_string('/tmp/out.txt')", "io"),
    "fromfile": ("x = np.fromfile('/etc/passwd')", "io"),
    "tofile": ("df['Close'].values.tofile('/tmp/x')", "io"),
    "savetxt": ("np.savetxt('/tmp/x', df.values)", "io"),
    "np-load": ("x = np.load('/tmp/x.npy', allow_pickle=True)", "io"),
    "memmap": ("x = np.memmap('/tmp/x', mode='w+', shape=(3,))", "io"),
    "datasource": ("x = np.DataSource()", "io"),
    "genfromtxt": ("x = np.genfromtxt('/etc/passwd')", "io"),
    "ndarray-dump": ("df.values.dump('/tmp/x')", "io"),
    "query": ("x = df.query('Close > 0')", "string-eval"),
    "df-eval": ("x = df.eval('Close * 2')", "string-eval"),
    "pd-eval": ("x = pd.eval('1 + 1')", "string-eval"),
    "eval-name": ("x = eval('1')", "string-eval"),
    "compile-name": ("c = compile('1', 'x', 'eval')", "string-eval"),
    "apply-method-name": ("x = df.apply('to_csv', path_or_buf='/tmp/x')", "string-dispatch"),
    "agg-method-name": ("x = df.agg('to_pickle', '/tmp/x')", "string-dispatch"),
    "transform-method-name": ("x = df.transform('to_json')", "string-dispatch"),
    "pipe-variable": ("f = 'to_csv'\nx = df.pipe(f)", "string-dispatch"),
    "named-agg-method": ("x = df.groupby('Volume').agg(out=('Close', 'to_csv'))", "string-dispatch"),
    "apply-kwargs-splat": ("kw = {}\nx = df.apply(len, **kw)", "string-dispatch"),
    "apply-as-value": ("f = df.apply\nx = f('to_csv')", "string-dispatch"),
    "agg-through-map": ("x = list(map(df.agg, ['to_pickle']))", "string-dispatch"),
    "format-attribute-walk": ("x = '{0.__class__}'.format(df)", "format-string"),
    "format-on-variable": ("s = '{0}'\nx = s.format(df)", "format-string"),
    "monkeypatch-class": ("pd.Series.mean = lambda self: 99.0", "attribute-assign"),
    "monkeypatch-instance": ("df.attrs_x = 1", "attribute-assign"),
    "delete-attribute": ("del pd.Series.mean", "attribute-assign"),
    "print": ("print('val_return: 99')", "output"),
    "plot": ("df.plot()", "options"),
    "options": ("pd.set_option('display.max_rows', 5)", "options"),
    "style": ("x = df.style", "options"),
    "import": ("import os", "import"),
    "import-from": ("from os import system", "import"),
    "global": ("global pd", "scope"),
    "os-system": ("x = os.system('id')", "internals"),
    "free-name": ("x = os", "unbound-name"),
    "class": ("class A:\n    pass", "statement"),
    "with": ("with df:\n    pass", "statement"),
    "yield": ("yield 1", "expression"),
    "infinite-loop": ("while True:\n    x = 1", "infinite-loop"),
    "infinite-loop-1": ("while 1:\n    pass", "infinite-loop"),
    "memory-bomb-list": ("x = [0] * (10 ** 10)", "huge-size"),
    "memory-bomb-numpy": ("x = np.ones((10 ** 5, 10 ** 5))", "huge-size"),
    "cpu-bomb-pow": ("x = 10 ** 10 ** 10", "huge-size"),
    "range-bomb": ("x = list(range(10 ** 12))", "huge-size"),
    "dunder-helper": ("__x = 1", "private-name"),
    "private-keyword": ("x = dict(_a=1)", "private-name"),
    "lambda-dunder": ("f = lambda __a: __a", "private-name"),
    "operator-module": ("x = np.random.mtrand.operator", "internals"),
    "sys-module": ("x = pd.core.generic.sys", "internals"),
}


@pytest.mark.parametrize("body,rule", REFUSED.values(), ids=REFUSED.keys())
def test_escape_is_refused_with_its_rule(body: str, rule: str) -> None:
    result = check(region(body))
    assert not result.ok
    assert result.rule == rule, result.reason
    assert result.line is not None and result.line >= 2
    assert result.reason.startswith(f"line {result.line}: ") and result.reason.endswith(f"(rule: {rule})")
    assert rule in RULES


def test_reason_names_rule_and_line() -> None:
    source = ("def generate_features(df):\n    x = df.__class__\n    return df\n\n"
              "def strategy_logic(row):\n    return 0\n")
    result = check(source)
    assert result == GateResult(False, "private-name", 2,
                                "line 2: attribute '__class__' starts with '_' (rule: private-name)")


@pytest.mark.parametrize("source,rule", [
    ("def generate_features(df):\n    return df\n", "contract"),
    ("def strategy_logic(row):\n    return 0\n", "contract"),
    (region("x = 1").replace("def strategy_logic(row):", "def strategy_logic(row, other):"), "contract"),
    (region("x = 1") + "\nx = open('/etc/passwd')\n", "top-level"),
    (region("x = 1") + "\ngenerate_features(None)\n", "top-level"),
    (region("x = 1") + "\ndef generate_features(df):\n    return df\n", "duplicate-definition"),
    ("@decorator\n" + region("x = 1"), "decorator"),
    ("async def generate_features(df):\n    return df\n", "top-level"),
])
def test_structure_rules(source: str, rule: str) -> None:
    result = check(source)
    assert (result.ok, result.rule) == (False, rule), result.reason


def test_top_level_literal_constants_are_allowed() -> None:
    assert check("FAST = 10\nWINDOWS = (5, 10)\n" + region("x = FAST + sum(WINDOWS)")).ok


PARSER_CRASHERS = {
    "unary-minus-chain": "x = " + "-" * 5000 + "1",
    "not-chain": "x = " + "not " * 4000 + "1",
    "parentheses": "x = " + "(" * 3000 + "1" + ")" * 3000,
    "attribute-chain": "x = df" + ".a" * 4000,
    "call-chain": "x = f" + "()" * 4000,
    "binop-chain": "x = " + "+".join(["1"] * 5000),
    "lambda-chain": "x = " + "lambda: " * 2000 + "1",
    "subscript-chain": "x = a" + "[0]" * 3000,
    "null-byte": "x = 1\x00",
    "lone-surrogate": "x = '\ud800'",
    "bad-indent": "def generate_features(df):\nreturn df",
    "tabs-and-spaces": "def f():\n\tif 1:\n        pass",
    "deep-indent": "".join(" " * i + "if 1:\n" for i in range(120)) + " " * 120 + "pass\n",
    "unterminated-string": "x = '''abc",
    "nested-fstrings": "x = " + "f'{" * 300 + "1" + "}'" * 300,
}


@pytest.mark.parametrize("source", PARSER_CRASHERS.values(), ids=PARSER_CRASHERS.keys())
def test_parser_crashers_are_rejected_not_raised(source: str) -> None:
    result = check(source)
    assert not result.ok
    assert result.rule in RULES and result.reason


def test_moderate_nesting_over_the_depth_limit_is_refused() -> None:
    result = check(region("x = " + "(" * 150 + "1" + ")" * 150 + "\ny = " + " + ".join(["1"] * 150)))
    assert not result.ok and result.rule in {"too-deep", "parse"}


@pytest.mark.parametrize("value", [None, b"def f(): pass", 42, ["x"]])
def test_non_text_is_rejected(value: object) -> None:
    result = check(value)  # type: ignore[arg-type]
    assert (result.ok, result.rule) == (False, "input")


def test_oversized_source_is_rejected() -> None:
    result = check(region("x = 1") + "#" * 20_000)
    assert (result.ok, result.rule) == (False, "size")


def test_random_mutations_never_raise() -> None:
    rng = random.Random(1234)
    sources = [p.read_text(encoding="utf-8") for p in CORPUS]
    alphabet = "()[]{}:.,'\"_\\\n\t #=+-*/@!lambdaxyz0123456789"
    for _ in range(300):
        text = list(rng.choice(sources))
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(len(text) + 1)
            if rng.random() < 0.5 and text:
                del text[min(pos, len(text) - 1)]
            else:
                text.insert(pos, rng.choice(alphabet))
        result = check("".join(text))
        assert isinstance(result, GateResult)
        assert result.ok or result.reason


DANGEROUS_MODULES = frozenset({
    "builtins", "os", "posix", "sys", "subprocess", "ctypes", "_ctypes", "importlib", "inspect",
    "pickle", "_pickle", "marshal", "shutil", "socket", "_socket", "tempfile", "pathlib", "io",
    "_io", "gc", "types", "code", "codeop", "runpy", "signal", "threading", "_thread",
    "multiprocessing", "mmap", "platform", "sysconfig", "zipfile", "tarfile", "glob", "codecs",
    "operator", "functools", "argparse", "logging", "warnings", "weakref", "copyreg", "dataclasses",
    "traceback", "linecache", "tokenize", "resource", "atexit", "pydoc", "site", "urllib", "http",
})


def _reachable_roots() -> list[tuple[object, str]]:
    df = make_ohlcv(60)
    return [
        (pd, "pd"), (np, "np"), (df, "df"), (df["Close"], "series"), (df.index, "index"),
        (df["Close"].rolling(5), "rolling"), (df["Close"].ewm(span=5), "ewm"),
        (df.groupby(df.index.month), "groupby"), (df["Close"].resample("W"), "resample"),
        (df.index[0], "timestamp"), (df["Close"].to_numpy(), "ndarray"), (df.columns.str, "str"),
        (np.random.default_rng(0), "rng"), ((lambda: 0), "lambda"), ((i for i in ()), "generator"),
        (ValueError("x"), "exception"), ({}, "dict"), (df.iloc, "iloc"), (df.loc, "loc"),
    ]


@pytest.mark.filterwarnings("ignore")
def test_no_dangerous_module_or_builtin_is_reachable_through_allowed_attributes() -> None:
    """Walk every attribute the gate lets through, from pd, np and typical objects."""
    import builtins
    import io
    import operator
    import os
    import pathlib
    import pickle
    import subprocess

    dangerous_objects = {id(getattr(builtins, n)): f"builtins.{n}" for n in (
        "open", "eval", "exec", "compile", "getattr", "setattr", "delattr", "__import__", "vars",
        "globals", "locals", "breakpoint", "input", "print")}
    for obj, name in ((os.system, "os.system"), (os.fork, "os.fork"), (os.kill, "os.kill"),
                      (io.open, "io.open"), (io.FileIO, "io.FileIO"), (pathlib.Path, "pathlib.Path"),
                      (operator.attrgetter, "operator.attrgetter"), (operator.methodcaller, "operator.methodcaller"),
                      (pickle.loads, "pickle.loads"), (subprocess.Popen, "subprocess.Popen"),
                      (types.FunctionType, "types.FunctionType"), (types.CodeType, "types.CodeType")):
        dangerous_objects[id(obj)] = name
    seen: set[int] = set()
    queue = [(obj, path, 0) for obj, path in _reachable_roots()]
    found = []
    scalar = (int, float, complex, str, bytes, bool, type(None))
    while queue:
        obj, path, depth = queue.pop()
        if id(obj) in seen or depth > 5:
            continue
        seen.add(id(obj))
        if isinstance(obj, types.ModuleType) and obj.__name__.split(".")[0] in DANGEROUS_MODULES:
            found.append((path, obj.__name__))
        if id(obj) in dangerous_objects:
            found.append((path, dangerous_objects[id(obj)]))
        if not isinstance(obj, (types.ModuleType, type)) and depth > 3:
            continue
        try:
            names = dir(obj)
        except Exception:
            continue
        for name in names:
            if attribute_refusal(name) is not None:
                continue
            try:
                value = getattr(obj, name)
            except Exception:
                continue
            if not isinstance(value, scalar):
                queue.append((value, f"{path}.{name}", depth + 1))
    assert found == [], found[:10]



def test_top_level_import_is_refused_by_its_own_rule() -> None:
    for statement in ("import os", "from os import path", "import numpy as np2"):
        result = check(f"{statement}\n" + region("x = 1"))
        assert (result.ok, result.rule, result.line) == (False, "import", 1), result.reason
        assert "imports are not allowed" in result.reason


HOSTILE_CLASSES = {
    # memorised answers: the future carried in the region's own source
    "row-table": ("BEST = (" + ", ".join(str(i) for i in range(0, 650, 10)) + ")", "literal-data"),
    "many-small-tables": ("\n".join(f"T{k} = ({', '.join(str(k * 60 + i) for i in range(60))})" for k in range(5)),
                          "literal-data"),
    "string-blob": ("DAYS = '" + "0123456789" * 20 + "'", "literal-data"),
    "int-blob": ("BITS = " + str(2**200 + 12345), "literal-data"),
    "dict-table": ("D = {" + ", ".join(f"{i}: 1" for i in range(70)) + "}", "literal-data"),
    # functions given by name outside apply/agg/transform/pipe
    "groupby-filter-string": ("def generate_features(df):\n    x = df.groupby(df.index.month).filter('to_csv')\n"
                              "    return df\n", "string-dispatch"),
    "pivot-positional-aggfunc": ("def generate_features(df):\n    x = df.pivot_table('Close', 'Volume', None, 'plot')\n"
                                 "    return df\n", "string-dispatch"),
    "pd-pivot-positional-aggfunc": ("def generate_features(df):\n"
                                    "    x = pd.pivot_table(df, 'Close', 'Volume', None, 'to_csv')\n    return df\n",
                                    "string-dispatch"),
    "crosstab-positional-aggfunc": ("def generate_features(df):\n"
                                    "    x = pd.crosstab(df['Close'], df['Open'], df['Low'], None, None, 'plot')\n"
                                    "    return df\n", "string-dispatch"),
    # time zones that open files
    "dateutil-tz": ("def generate_features(df):\n    x = df.index.tz_localize('dateutil//etc/passwd')\n    return df\n",
                    "timezone"),
    "path-tz": ("def generate_features(df):\n    x = pd.Timestamp('2020-01-01', tz='/etc/passwd')\n    return df\n",
                "timezone"),
    "computed-tz": ("def generate_features(df):\n    z = 'Europe/' + 'Paris'\n    x = df.index.tz_localize(z)\n"
                    "    return df\n", "timezone"),
    "dateutil-dtype": ("def generate_features(df):\n    x = df.index.astype('datetime64[ns, dateutil/x]')\n"
                       "    return df\n", "timezone"),
    # native pointers on any object
    "bitgen-cffi": ("def generate_features(df):\n    x = np.random.PCG64(1).cffi\n    return df\n", "internals"),
    "bitgen-capsule": ("def generate_features(df):\n    x = np.random.default_rng(1).bit_generator\n    return df\n",
                       "internals"),
    "ctypes-on-array": ("def generate_features(df):\n    x = df['Close'].to_numpy().ctypes.data_as\n    return df\n",
                        "internals"),
    # exception objects' attributes
    "exception-obj": ("def generate_features(df):\n    try:\n        df.rolling(-1)\n    except ValueError as e:\n"
                      "        x = e.obj\n    return df\n", "exception-attr"),
    "exception-alias": ("def generate_features(df):\n    try:\n        df.rolling(-1)\n    except ValueError as e:\n"
                        "        y = e\n    return df\n", "exception-attr"),
}


@pytest.mark.parametrize("name", list(HOSTILE_CLASSES))
def test_second_round_hostile_classes_are_refused(name: str) -> None:
    source, rule = HOSTILE_CLASSES[name]
    if "def generate_features" not in source:
        source = source + "\n" + region("x = 1")
    elif "def strategy_logic" not in source:
        source += "\n\ndef strategy_logic(row):\n    return 0\n"
    result = check(source)
    assert (result.ok, result.rule) == (False, rule), result.reason
    assert result.reason.startswith(f"line {result.line}: ")


ALLOWED_SECOND_ROUND = {
    "private-helper-and-constant": "_WINDOW = 14\ndef _rsi(s, n=_WINDOW):\n    return s.diff().rolling(n).mean()\n"
                                   + region("df['r'] = _rsi(df['Close'])\n_tmp = 1"),
    "plain-iana-tz": region("x = df.index.tz_localize('America/New_York').tz_convert('UTC')\n"
                            "y = pd.Timestamp('2020-01-01', tz=None)"),
    "short-tuple-and-docstring": region('"""' + "A long docstring. " * 20 + '"""\nW = (5, 10, 20, 50)'),
    "filter-items": region("x = df.filter(['Close', 'Open'])\ny = df.filter(like='Cl')\n"
                           "z = df.groupby(df.index.month).filter(lambda g: len(g) > 3)"),
    "pivot-keyword-aggfunc": region("x = df.pivot_table(values='Close', index=df.index.month, aggfunc='mean')"),
    "exception-as-text": region("try:\n    x = 1 / 0\nexcept ZeroDivisionError as e:\n    msg = str(e)"),
}


@pytest.mark.parametrize("name", list(ALLOWED_SECOND_ROUND))
def test_second_round_ordinary_code_is_accepted(name: str) -> None:
    result = check(ALLOWED_SECOND_ROUND[name])
    assert result.ok, result.reason


def test_dunder_and_underscore_attributes_stay_refused() -> None:
    assert check(region("x = df._data")).rule == "private-name"
    assert check(region("__x = 1")).rule == "private-name"
    assert check(region("x = _undefined")).rule == "unbound-name"


def test_rejection_lists_several_violations() -> None:
    body = "x = df.__class__\ny = open('/etc/passwd')\nz = df.query('Close > 0')\nimport os"
    result = check(region(body))
    assert (result.ok, result.rule, result.line) == (False, "private-name", 3)
    assert result.reason.startswith("line 3: attribute '__class__'")
    for rule in ("io", "string-eval", "import"):
        assert f"(rule: {rule})" in result.reason, result.reason
    many = check(region("\n".join(f"x{i} = df.__dict__" for i in range(9))))
    assert many.reason.count("(rule: private-name)") == 5 and many.reason.endswith("and 4 more")
