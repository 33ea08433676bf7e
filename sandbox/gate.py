"""Static allow-list gate over a candidate region's AST, run in the trusted parent.

The gate is the cheap first wall: it refuses anything that is not plainly "compute signals from
a DataFrame with pandas and numpy" before a process is ever started. It is strict on names and
attributes (the usual escape hatches of Python: dunder names, frames, reflection, file and URL
readers, string evaluation, method dispatch by string) and permissive on ordinary control flow,
because real strategies use loops, helpers, comprehensions, lambdas and try/except. It fails
closed: any input it cannot analyse, including one that breaks the parser, is a rejection, and
``check`` never raises.
"""

from __future__ import annotations

import ast
import re
import string
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MAX_SOURCE_CHARS = 20_000
MAX_DEPTH = 100
MAX_ELEMENTS = 10**8
MAX_REPEAT = 10**7
MAX_INT_BITS = 256
REQUIRED_FUNCTIONS = ("generate_features", "strategy_logic")
MODULE_NAMES = frozenset({"pd", "np"})

SAFE_FUNCTIONS = frozenset({
    "abs", "all", "any", "bool", "callable", "dict", "divmod", "enumerate", "filter", "float",
    "format", "frozenset", "int", "isinstance", "iter", "len", "list", "map", "max", "min",
    "next", "range", "reversed", "round", "set", "slice", "sorted", "str", "sum", "tuple",
    "zip", "Ellipsis", "NotImplemented",
})
SAFE_EXCEPTIONS = frozenset({
    "ArithmeticError", "AssertionError", "AttributeError", "Exception", "FloatingPointError",
    "IndexError", "KeyError", "LookupError", "NotImplementedError", "OverflowError",
    "RuntimeError", "StopIteration", "TypeError", "ValueError", "ZeroDivisionError",
})
SAFE_BUILTINS = SAFE_FUNCTIONS | SAFE_EXCEPTIONS

FORBIDDEN_NAMES: dict[str, str] = {
    "eval": "string-eval", "exec": "string-eval", "compile": "string-eval",
    "open": "io", "input": "io", "print": "output",
    **{name: "reflection" for name in (
        "getattr", "setattr", "delattr", "hasattr", "vars", "globals", "locals", "dir", "type",
        "object", "super", "id", "memoryview", "classmethod", "staticmethod", "property",
        "breakpoint", "help", "exit", "quit", "copyright", "credits", "license",
    )},
}

INTROSPECTION_ATTRS = frozenset({
    "gi_frame", "gi_code", "gi_yieldfrom", "gi_running", "gi_suspended", "cr_frame", "cr_code",
    "cr_await", "cr_origin", "cr_running", "ag_frame", "ag_code", "ag_await", "ag_running",
    "tb_frame", "tb_next", "tb_lasti", "tb_lineno", "f_back", "f_builtins", "f_globals",
    "f_locals", "f_code", "f_lasti", "f_lineno", "f_trace", "f_trace_lines", "f_trace_opcodes",
    "co_code", "co_consts", "co_names", "co_varnames", "co_filename", "co_name", "co_qualname",
    "co_firstlineno", "co_lnotab", "co_linetable", "co_exceptiontable", "co_cellvars",
    "co_freevars", "co_flags", "co_positions", "co_lines", "func_globals", "func_code",
    "func_closure", "func_defaults", "func_dict", "cell_contents", "im_func", "im_self", "mro",
    "with_traceback",
})
IO_ATTRS = frozenset({
    "fromfile", "tofile", "fromregex", "save", "savez", "savez_compressed", "savetxt", "load",
    "loads", "loadtxt", "genfromtxt", "recfromtxt", "recfromcsv", "memmap", "open_memmap",
    "DataSource", "dump", "dumps", "ExcelWriter", "ExcelFile", "HDFStore", "info", "source",
    "lookfor", "show_config", "show_runtime", "show_versions", "open", "get_include", "test",
})
SAFE_TO_ATTRS = frozenset({
    "to_numpy", "to_list", "to_frame", "to_dict", "to_records", "to_datetime", "to_numeric",
    "to_timedelta", "to_period", "to_timestamp", "to_series", "to_pydatetime", "to_pytimedelta",
    "to_flat_index", "to_offset", "to_julian_date", "to_datetime64", "to_timedelta64",
})
STRING_EVAL_ATTRS = frozenset({"eval", "query", "exec", "compile"})
OPTIONS_ATTRS = frozenset({
    "plot", "plotting", "hist", "boxplot", "style", "options", "set_option", "get_option",
    "reset_option", "describe_option", "option_context", "set_printoptions", "get_printoptions",
    "printoptions", "set_string_function", "set_eng_float_format", "setbufsize", "seterrcall",
    "config", "config_init",
})
INTERNAL_ATTRS = frozenset({
    "lib", "core", "io", "testing", "api", "compat", "ctypeslib", "ctypes", "f2py", "distutils",
    "util", "rec", "typing", "interchange", "internals", "extensions", "conftest", "tests",
    "os", "sys", "builtins", "bltns", "inspect", "importlib", "pickle", "marshal", "shutil", "socket",
    "subprocess", "tempfile", "pathlib", "Path", "gc", "types", "code", "codeop", "runpy",
    "signal", "threading", "multiprocessing", "mmap", "platform", "sysconfig", "zipfile",
    "tarfile", "glob", "fileinput", "codecs", "operator", "functools", "argparse", "logging",
    "warnings", "weakref", "copyreg", "dataclasses", "traceback", "linecache", "tokenize",
    "resource", "atexit", "pydoc", "site", "attrgetter", "methodcaller", "getattr", "setattr",
    "delattr", "globals", "locals", "vars", "system", "popen", "spawn", "fork", "kill",
    "remove", "unlink", "rmdir", "exit", "quit", "input", "breakpoint",
    "re", "enum", "abc", "collections", "textwrap", "string", "copy_reg", "mu", "overrides",
    "global_enum", "bit_generator", "Enum", "IntEnum", "Flag", "ABCMeta", "abstractmethod",
    # native pointers on any object: numpy's .ctypes, a bit generator's .cffi/.capsule, ctypes constructors
    "cffi", "ffi", "capsule", "cdata", "dlopen", "from_address", "from_buffer", "from_buffer_copy",
    "in_dll", "data_as", "shape_as", "strides_as", "addressof", "cast", "pointer", "byref",
})
ALLOWED_CHAINS = frozenset({"np.lib.stride_tricks.sliding_window_view"})

# Which calls take a function that may be given by name, and where: method -> (positions, keywords).
# A string there makes pandas look the method up by name, which reaches writers and importers.
DISPATCH_TABLE: dict[str, tuple[tuple[int, ...], frozenset[str]]] = {
    "apply": ((0,), frozenset({"func"})), "applymap": ((0,), frozenset({"func"})),
    "agg": ((0,), frozenset({"func"})), "aggregate": ((0,), frozenset({"func"})),
    "transform": ((0,), frozenset({"func"})), "pipe": ((0,), frozenset({"func"})),
    "filter": ((0,), frozenset({"func"})),  # groupby.filter(func); DataFrame.filter(items) takes a list
    "pivot_table": ((3, 4), frozenset({"aggfunc"})),  # df.pivot_table(values, index, columns, aggfunc)
    "crosstab": ((5,), frozenset({"aggfunc"})),  # pd.crosstab(index, columns, values, rownames, colnames, aggfunc)
}
DISPATCH_METHODS = frozenset(k for k in DISPATCH_TABLE if k not in ("filter", "pivot_table", "crosstab"))
TZ_CALLS = frozenset({"tz_localize", "tz_convert"})
TZ_KEYWORDS = frozenset({"tz", "timezone"})
IANA_NAME = re.compile(r"(UTC|GMT|[A-Z][A-Za-z_+\-]*(/[A-Z][A-Za-z0-9_+\-]*){0,2}|Etc/GMT[+\-]\d{1,2})")
MAX_LITERAL_ELEMENTS = 64  # one literal collection; a table of memorised rows is longer
MAX_LITERAL_TOTAL = 256  # numbers and strings inside literal collections, over the whole region
MAX_LITERAL_STRING = 120  # characters in one string literal (docstrings excepted)
MAX_LITERAL_INT_BITS = 53  # an integer literal beyond float precision is a blob, not a parameter
MAX_VIOLATIONS = 5
DISPATCH_OPTION_KEYWORDS = frozenset({
    "axis", "raw", "result_type", "args", "kwargs", "by_row", "convert_dtype", "na_action",
    "numeric_only", "skipna", "min_count", "ddof", "q", "include_groups", "group_keys",
})
REDUCER_STRINGS = frozenset({
    "mean", "sum", "std", "max", "min", "median", "count", "var", "first", "last", "prod",
    "size", "nunique", "sem", "skew", "kurt", "cumsum", "cumprod", "cummax", "cummin", "abs",
    "rank", "pct_change", "diff", "shift", "ffill", "bfill", "any", "all", "idxmax", "idxmin",
    "ohlc",
})
ALLOCATING_CALLS = frozenset({
    "zeros", "ones", "empty", "full", "arange", "repeat", "tile", "linspace", "logspace",
    "geomspace", "identity", "eye", "rand", "randn", "random", "normal", "uniform", "integers",
    "standard_normal", "ndarray", "broadcast_to", "resize", "range",
})
SIZE_KEYWORDS = frozenset({"shape", "size", "num", "repeats", "reps", "N", "M", "stop"})
_TOO_BIG = object()

RULES = (
    "input", "size", "parse", "too-deep", "internal", "top-level", "import", "contract",
    "duplicate-definition", "decorator", "statement", "expression", "scope", "private-name",
    "unbound-name", "reflection", "string-eval", "io", "output", "introspection", "options",
    "internals", "attribute-assign", "format-string", "string-dispatch", "huge-size",
    "infinite-loop", "literal-data", "timezone", "exception-attr",
)


@dataclass(frozen=True)
class GateResult:
    """Verdict on one region: ``ok`` or the first rule broken, with its line and a message."""

    ok: bool
    rule: str
    line: int | None
    reason: str


class _Refusal(Exception):
    def __init__(self, rule: str, node: ast.AST | None, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.line = getattr(node, "lineno", None)
        self.message = message


def _result(rule: str, line: int | None, message: str) -> GateResult:
    where = f"line {line}: " if line is not None else ""
    return GateResult(False, rule, line, f"{where}{message} (rule: {rule})")


def attribute_refusal(attr: str) -> tuple[str, str] | None:
    """Return ``(rule, why)`` when an attribute name is never allowed, else None.

    Shared with the tests that walk everything reachable from ``pd`` and ``np``.
    """
    if attr.startswith("_"):
        return "private-name", f"attribute {attr!r} starts with '_'"
    if attr in INTROSPECTION_ATTRS:
        return "introspection", f"attribute {attr!r} reaches frames, code or tracebacks"
    if attr in STRING_EVAL_ATTRS:
        return "string-eval", f"attribute {attr!r} evaluates strings as code"
    if attr.startswith("read_") or attr in IO_ATTRS:
        return "io", f"attribute {attr!r} reads, writes or inspects files"
    if attr.startswith("to_") and attr not in SAFE_TO_ATTRS:
        return "io", f"attribute {attr!r} is a writer (only {', '.join(sorted(SAFE_TO_ATTRS)[:4])}, ... are allowed)"
    if attr in OPTIONS_ATTRS:
        return "options", f"attribute {attr!r} changes global options or plots"
    if attr in INTERNAL_ATTRS:
        return "internals", f"attribute {attr!r} reaches library internals or the system"
    return None


def _dotted(node: ast.AST) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _const_int(node: ast.AST) -> object:
    """Fold an integer constant expression without ever computing a huge number."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _const_int(node.operand)
        if isinstance(inner, int):
            return -inner if isinstance(node.op, ast.USub) else inner
        return inner
    if isinstance(node, ast.BinOp):
        left, right = _const_int(node.left), _const_int(node.right)
        if left is _TOO_BIG or right is _TOO_BIG:
            return _TOO_BIG
        if not (isinstance(left, int) and isinstance(right, int)):
            return None
        op = node.op
        if isinstance(op, ast.Pow):
            if right < 0:
                return None
            if abs(left) > 1 and right * abs(left).bit_length() > MAX_INT_BITS:
                return _TOO_BIG
            value = left**right
        elif isinstance(op, ast.LShift):
            if right < 0:
                return None
            if right + abs(left).bit_length() > MAX_INT_BITS:
                return _TOO_BIG
            value = left << right
        elif isinstance(op, ast.Mult):
            value = left * right
        elif isinstance(op, ast.Add):
            value = left + right
        elif isinstance(op, ast.Sub):
            value = left - right
        elif isinstance(op, ast.FloorDiv) and right:
            value = left // right
        else:
            return None
        return _TOO_BIG if abs(value).bit_length() > MAX_INT_BITS else value
    return None


def _const_count(node: ast.AST) -> object:
    """Element count of a constant size or shape (a tuple multiplies), or None."""
    if isinstance(node, (ast.Tuple, ast.List)):
        total = 1
        for elt in node.elts:
            part = _const_count(elt)
            if part is _TOO_BIG:
                return _TOO_BIG
            if not isinstance(part, int):
                return None
            total *= max(part, 0)
        return total
    return _const_int(node)


def _is_big(value: object, limit: int) -> bool:
    return value is _TOO_BIG or (isinstance(value, int) and abs(value) > limit)


def _is_literal(node: ast.AST) -> bool:
    """A constant that a top-level assignment may bind (numbers, strings and containers of them)."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _is_literal(node.operand)
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return all(_is_literal(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _is_literal(k) for k in node.keys) and all(
            _is_literal(v) for v in node.values
        )
    if isinstance(node, ast.BinOp):
        return _is_literal(node.left) and _is_literal(node.right) and _const_int(node) is not _TOO_BIG
    return False


def _is_sequence(node: ast.AST) -> bool:
    return isinstance(node, (ast.List, ast.Tuple, ast.ListComp, ast.JoinedStr)) or (
        isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes))
    )


def _private(name: str) -> bool:
    """Dunder names stay refused; a region's own ``_helper`` or ``_WINDOW`` is an ordinary name."""
    return name.startswith("__")


def _arg_names(args: ast.arguments) -> list[ast.arg]:
    out = list(args.posonlyargs) + list(args.args) + list(args.kwonlyargs)
    out += [a for a in (args.vararg, args.kwarg) if a is not None]
    return out


def _loop_exits(body: list[ast.stmt]) -> bool:
    """True when a ``while`` body can leave the loop: a break at its level, a return or a raise."""
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Return, ast.Raise)):
            return True
        if isinstance(node, ast.Break):
            return True
        if isinstance(node, (ast.For, ast.While)):
            stack.extend(n for n in ast.walk(node) if isinstance(n, (ast.Return, ast.Raise)))
            continue
        if isinstance(node, (ast.FunctionDef, ast.Lambda)):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return False


Scopes = tuple[set[str], ...]


class _Checker:
    """One pass over a parsed region; raises ``_Refusal`` at the first broken rule.

    Names are resolved after the pass, once every scope knows all the names it binds, so a
    single walk of the tree is enough (the gate must stay well under 5 ms).
    """

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.depth = 0
        self.def_names: set[str] = set()
        self.rebound: set[str] = set()
        self.loads: list[tuple[ast.Name, Scopes]] = []
        self.dispatches: list[tuple[ast.Call, str]] = []
        self.called: set[int] = set()
        self.refusals: list[_Refusal] = []
        self.exc_names: set[str] = set()
        self.str_args: set[int] = set()
        self.docstrings: set[int] = set()
        self.literal_total = 0
        self.expr_handlers = {
            ast.Constant: self._x_constant, ast.Name: self._x_name, ast.Attribute: self._x_attribute,
            ast.Subscript: self._x_subscript, ast.Slice: self._x_slice, ast.Starred: self._x_starred,
            ast.BinOp: self._x_binop, ast.UnaryOp: self._x_unaryop, ast.BoolOp: self._x_boolop,
            ast.Compare: self._x_compare, ast.IfExp: self._x_ifexp, ast.List: self._x_elts,
            ast.Tuple: self._x_elts, ast.Set: self._x_elts, ast.Dict: self._x_dict,
            ast.JoinedStr: self._x_joinedstr, ast.FormattedValue: self._x_formatted,
            ast.NamedExpr: self._x_namedexpr, ast.Lambda: self._x_lambda, ast.ListComp: self._x_comp,
            ast.SetComp: self._x_comp, ast.GeneratorExp: self._x_comp, ast.DictComp: self._x_dictcomp,
            ast.Call: self._x_call,
        }

    def run(self) -> None:
        module: set[str] = set()
        seen: dict[str, int] = {}
        for stmt in self.tree.body:
            for name in self._top_level_names(stmt):
                if name in seen:
                    raise _Refusal("duplicate-definition", stmt,
                                   f"{name!r} is defined twice (first on line {seen[name]})")
                seen[name] = stmt.lineno
                module.add(name)
        scopes: Scopes = (module,)
        for stmt in self.tree.body:
            self._collect(self._top_level, stmt, scopes)
        for node, scopes_ in self.loads:
            self._collect(self._resolve_name, node, scopes_)
        for call, method in self.dispatches:
            self._collect(self._dispatch, call, method)
        self._collect(self._contract)
        if self.refusals:
            raise self.refusals[0]

    def _collect(self, step: Any, *args: Any) -> None:
        """Run one check; a refusal is recorded (the verdict lists several) and the walk goes on."""
        depth = self.depth
        try:
            step(*args)
        except _Refusal as refusal:
            self.depth = depth
            self.refusals.append(refusal)

    def _top_level(self, stmt: ast.stmt, scopes: Scopes) -> None:
        if isinstance(stmt, ast.FunctionDef):
            self._function(stmt, scopes)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                self._target(target, scopes)
            if stmt.value is not None:
                self._expr(stmt.value, scopes)

    def _top_level_names(self, stmt: ast.stmt) -> list[str]:
        if isinstance(stmt, ast.FunctionDef):
            return [stmt.name]
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            return []
        if isinstance(stmt, ast.Assign) and all(isinstance(t, ast.Name) for t in stmt.targets) and _is_literal(stmt.value):
            return [t.id for t in stmt.targets if isinstance(t, ast.Name)]
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None and _is_literal(stmt.value):
            return [stmt.target.id]
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            raise _Refusal("import", stmt, "imports are not allowed; pd and np are already in scope")
        kind = type(stmt).__name__
        raise _Refusal("top-level", stmt,
                       f"only function definitions and literal constants may appear at top level, found {kind}")

    def _resolve_name(self, node: ast.Name, scopes: Scopes) -> None:
        name = node.id
        if name in self.exc_names and id(node) not in self.str_args:
            raise _Refusal("exception-attr", node, f"the caught exception {name!r} may only be used as str({name}); "
                           "its attributes reach library internals")
        if name in MODULE_NAMES or name in SAFE_BUILTINS or any(name in scope for scope in scopes):
            return
        if name in FORBIDDEN_NAMES:
            raise _Refusal(FORBIDDEN_NAMES[name], node, f"name {name!r} is not allowed")
        raise _Refusal("unbound-name", node,
                       f"name {name!r} is not defined here (only local names, pd, np and safe builtins)")

    def _contract(self) -> None:
        defs = {s.name: s for s in self.tree.body if isinstance(s, ast.FunctionDef)}
        for name in REQUIRED_FUNCTIONS:
            node = defs.get(name)
            if node is None:
                raise _Refusal("contract", None, f"the region must define {name}(...) at top level")
            args = node.args
            positional = args.posonlyargs + args.args
            required = len(positional) - len(args.defaults)
            kw_required = sum(1 for d in args.kw_defaults if d is None)
            if (not positional and args.vararg is None) or required > 1 or kw_required:
                raise _Refusal("contract", node, f"{name} must accept exactly one positional argument")

    def _enter(self, node: ast.AST) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Refusal("too-deep", node, f"nesting deeper than {MAX_DEPTH} levels")

    def _bind(self, name: str, node: ast.AST, scopes: Scopes, what: str = "name") -> None:
        if _private(name):
            raise _Refusal("private-name", node, f"{what} {name!r} starts with '_'")
        scopes[-1].add(name)
        self.rebound.add(name)

    def _function(self, node: ast.FunctionDef, scopes: Scopes) -> None:
        self._enter(node)
        if node.decorator_list:
            raise _Refusal("decorator", node, f"decorators are not allowed (on {node.name!r})")
        if _private(node.name):
            raise _Refusal("private-name", node, f"name {node.name!r} starts with '_'")
        scopes[-1].add(node.name)
        self.def_names.add(node.name)
        local: set[str] = set()
        inner = scopes + (local,)
        for arg in _arg_names(node.args):
            self._bind(arg.arg, arg, inner, "parameter")
            if arg.annotation is not None:
                self._expr(arg.annotation, scopes)
        for default in node.args.defaults:
            self._expr(default, scopes)
        for default in node.args.kw_defaults:
            if default is not None:
                self._expr(default, scopes)
        if node.returns is not None:
            self._expr(node.returns, scopes)
        for stmt in node.body:
            self._collect(self._stmt, stmt, inner)
        self.depth -= 1

    def _stmt(self, node: ast.stmt, scopes: Scopes) -> None:
        if isinstance(node, ast.FunctionDef):
            self._function(node, scopes)
            return
        self._enter(node)
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self._target(target, scopes)
            self._expr(node.value, scopes)
        elif isinstance(node, ast.Return):
            if node.value is not None:
                self._expr(node.value, scopes)
        elif isinstance(node, ast.Expr):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                self.docstrings.add(id(node.value))
            self._expr(node.value, scopes)
        elif isinstance(node, ast.If):
            self._expr(node.test, scopes)
            self._body(node.body, scopes)
            self._body(node.orelse, scopes)
        elif isinstance(node, ast.AugAssign):
            self._target(node.target, scopes)
            self._expr(node.value, scopes)
        elif isinstance(node, ast.For):
            self._target(node.target, scopes)
            self._expr(node.iter, scopes)
            self._body(node.body, scopes)
            self._body(node.orelse, scopes)
        elif isinstance(node, ast.While):
            test = node.test
            if isinstance(test, ast.Constant) and test.value and not _loop_exits(node.body):
                raise _Refusal("infinite-loop", node, "'while' loop on a constant condition never exits")
            self._expr(test, scopes)
            self._body(node.body, scopes)
            self._body(node.orelse, scopes)
        elif isinstance(node, ast.AnnAssign):
            self._target(node.target, scopes)
            self._expr(node.annotation, scopes)
            if node.value is not None:
                self._expr(node.value, scopes)
        elif isinstance(node, ast.Try):
            self._body(node.body, scopes)
            for handler in node.handlers:
                if handler.type is not None:
                    self._expr(handler.type, scopes)
                if handler.name is not None:
                    self._bind(handler.name, handler, scopes)
                    self.exc_names.add(handler.name)
                self._body(handler.body, scopes)
            self._body(node.orelse, scopes)
            self._body(node.finalbody, scopes)
        elif isinstance(node, ast.Raise):
            for part in (node.exc, node.cause):
                if part is not None:
                    self._expr(part, scopes)
        elif isinstance(node, ast.Assert):
            self._expr(node.test, scopes)
            if node.msg is not None:
                self._expr(node.msg, scopes)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                self._target(target, scopes)
        elif isinstance(node, (ast.Pass, ast.Break, ast.Continue)):
            pass
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            raise _Refusal("import", node, "imports are not allowed; pd and np are already in scope")
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            raise _Refusal("scope", node, f"'{type(node).__name__.lower()}' statements are not allowed")
        else:
            raise _Refusal("statement", node, f"'{type(node).__name__}' statements are not allowed")
        self.depth -= 1

    def _body(self, body: list[ast.stmt], scopes: Scopes) -> None:
        for stmt in body:
            self._collect(self._stmt, stmt, scopes)

    def _target(self, node: ast.expr, scopes: Scopes) -> None:
        self._enter(node)
        if isinstance(node, ast.Name):
            self._bind(node.id, node, scopes)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                self._target(elt, scopes)
        elif isinstance(node, ast.Starred):
            self._target(node.value, scopes)
        elif isinstance(node, ast.Subscript):
            self._expr(node.value, scopes)
            self._expr(node.slice, scopes)
        elif isinstance(node, ast.Attribute):
            raise _Refusal("attribute-assign", node,
                           f"assigning or deleting attribute {node.attr!r} is not allowed; use df['col'] = ...")
        else:
            raise _Refusal("statement", node, f"cannot assign to {type(node).__name__}")
        self.depth -= 1

    def _expr(self, node: ast.AST, scopes: Scopes) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Refusal("too-deep", node, f"nesting deeper than {MAX_DEPTH} levels")
        handler = self.expr_handlers.get(type(node))
        if handler is None:
            raise _Refusal("expression", node, f"'{type(node).__name__}' expressions are not allowed")
        handler(node, scopes)
        self.depth -= 1

    def _each(self, nodes: Iterable[ast.AST | None], scopes: Scopes) -> None:
        for node in nodes:
            if node is not None:
                self._expr(node, scopes)

    def _x_constant(self, node: ast.Constant, scopes: Scopes) -> None:
        value = node.value
        if isinstance(value, (str, bytes)):
            if "dateutil" in str(value):
                raise _Refusal("timezone", node, "'dateutil' time zones open files; use a plain IANA name such as "
                               "'America/New_York'")
            if len(value) > MAX_LITERAL_STRING and id(node) not in self.docstrings:
                raise _Refusal("literal-data", node, f"string literal of {len(value)} characters (limit "
                               f"{MAX_LITERAL_STRING}): compute from the data instead of embedding it")
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value).bit_length() > MAX_LITERAL_INT_BITS:
            raise _Refusal("literal-data", node, f"integer literal beyond {MAX_LITERAL_INT_BITS} bits: "
                           "a parameter never needs that many digits")

    def _literal_count(self, node: ast.AST, elts: list[Any]) -> None:
        constants = sum(1 for e in elts if isinstance(e, (ast.Constant, ast.UnaryOp)))
        if len(elts) > MAX_LITERAL_ELEMENTS:
            raise _Refusal("literal-data", node, f"a literal collection of {len(elts)} elements (limit "
                           f"{MAX_LITERAL_ELEMENTS}): parameters are a few numbers; do not embed data or row lists")
        self.literal_total += constants
        if self.literal_total > MAX_LITERAL_TOTAL:
            raise _Refusal("literal-data", node, f"more than {MAX_LITERAL_TOTAL} constants in literal collections: "
                           "do not embed data or row lists in the region")

    def _x_name(self, node: ast.Name, scopes: Scopes) -> None:
        if _private(node.id):
            raise _Refusal("private-name", node, f"name {node.id!r} starts with '_'")
        if isinstance(node.ctx, ast.Load):
            self.loads.append((node, scopes))
        else:
            self._bind(node.id, node, scopes)

    def _x_attribute(self, node: ast.Attribute, scopes: Scopes) -> None:
        if node.attr == "sliding_window_view" and _dotted(node) in ALLOWED_CHAINS:
            root = node
            while isinstance(root, ast.Attribute):
                root = root.value
            self._expr(root, scopes)
            return
        refusal = attribute_refusal(node.attr)
        if refusal is not None:
            raise _Refusal(refusal[0], node, refusal[1])
        if node.attr in ("format", "format_map"):
            self._format_receiver(node)
        if node.attr in DISPATCH_METHODS and id(node) not in self.called:
            raise _Refusal("string-dispatch", node, f".{node.attr} must be called directly, not passed around")
        if not isinstance(node.ctx, ast.Load):
            raise _Refusal("attribute-assign", node, f"assigning attribute {node.attr!r} is not allowed")
        self._expr(node.value, scopes)

    def _format_receiver(self, node: ast.Attribute) -> None:
        value = node.value
        if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
            raise _Refusal("format-string", node, f".{node.attr}() is only allowed on a literal string")
        pending = [value.value]
        while pending:
            try:
                fields = list(string.Formatter().parse(pending.pop()))
            except ValueError as exc:
                raise _Refusal("format-string", node, f"unparsable format string: {exc}") from None
            for _, field, spec, _ in fields:
                if field and ("." in field or "[" in field):
                    raise _Refusal("format-string", node,
                                   f"format field {field!r} reaches into attributes or items")
                if spec:
                    pending.append(spec)

    def _x_subscript(self, node: ast.Subscript, scopes: Scopes) -> None:
        self._expr(node.value, scopes)
        self._expr(node.slice, scopes)

    def _x_slice(self, node: ast.Slice, scopes: Scopes) -> None:
        self._each((node.lower, node.upper, node.step), scopes)

    def _x_starred(self, node: ast.Starred, scopes: Scopes) -> None:
        self._expr(node.value, scopes)

    def _x_binop(self, node: ast.BinOp, scopes: Scopes) -> None:
        op = node.op
        if isinstance(op, (ast.Pow, ast.LShift, ast.Mult)):
            if _const_int(node) is _TOO_BIG:
                raise _Refusal("huge-size", node, f"integer constant expression beyond {MAX_INT_BITS} bits")
            if isinstance(op, ast.Mult):
                for seq, count in ((node.left, node.right), (node.right, node.left)):
                    if _is_sequence(seq) and _is_big(_const_int(count), MAX_REPEAT):
                        raise _Refusal("huge-size", node, f"sequence repeated more than {MAX_REPEAT:,} times")
        self._expr(node.left, scopes)
        self._expr(node.right, scopes)

    def _x_unaryop(self, node: ast.UnaryOp, scopes: Scopes) -> None:
        self._expr(node.operand, scopes)

    def _x_boolop(self, node: ast.BoolOp, scopes: Scopes) -> None:
        self._each(node.values, scopes)

    def _x_compare(self, node: ast.Compare, scopes: Scopes) -> None:
        self._expr(node.left, scopes)
        self._each(node.comparators, scopes)

    def _x_ifexp(self, node: ast.IfExp, scopes: Scopes) -> None:
        self._each((node.test, node.body, node.orelse), scopes)

    def _x_elts(self, node: ast.List | ast.Tuple | ast.Set, scopes: Scopes) -> None:
        if isinstance(getattr(node, "ctx", None), (ast.Store, ast.Del)):
            self._target(node, scopes)
            return
        self._literal_count(node, node.elts)
        self._each(node.elts, scopes)

    def _x_dict(self, node: ast.Dict, scopes: Scopes) -> None:
        self._literal_count(node, [*node.keys, *node.values])
        self._each(node.keys, scopes)
        self._each(node.values, scopes)

    def _x_joinedstr(self, node: ast.JoinedStr, scopes: Scopes) -> None:
        self._each(node.values, scopes)

    def _x_formatted(self, node: ast.FormattedValue, scopes: Scopes) -> None:
        self._each((node.value, node.format_spec), scopes)

    def _x_namedexpr(self, node: ast.NamedExpr, scopes: Scopes) -> None:
        self._target(node.target, scopes)
        self._expr(node.value, scopes)

    def _x_lambda(self, node: ast.Lambda, scopes: Scopes) -> None:
        self._each(node.args.defaults, scopes)
        self._each(node.args.kw_defaults, scopes)
        inner = scopes + (set(),)
        for arg in _arg_names(node.args):
            self._bind(arg.arg, node, inner, "parameter")
        self._expr(node.body, inner)

    def _comprehension(self, node: ast.AST, generators: list[ast.comprehension],
                       parts: Iterable[ast.AST], scopes: Scopes) -> None:
        inner = scopes + (set(),)
        for gen in generators:
            if gen.is_async:
                raise _Refusal("expression", node, "async comprehensions are not allowed")
            self._target(gen.target, inner)
            self._expr(gen.iter, inner)
            self._each(gen.ifs, inner)
        self._each(parts, inner)

    def _x_comp(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp, scopes: Scopes) -> None:
        self._comprehension(node, node.generators, [node.elt], scopes)

    def _x_dictcomp(self, node: ast.DictComp, scopes: Scopes) -> None:
        self._comprehension(node, node.generators, [node.key, node.value], scopes)

    def _x_call(self, node: ast.Call, scopes: Scopes) -> None:
        func = node.func
        self.called.add(id(func))
        self._expr(func, scopes)
        if isinstance(func, ast.Attribute):
            callee = func.attr
        else:
            callee = func.id if isinstance(func, ast.Name) else ""
        if callee in DISPATCH_TABLE:
            self.dispatches.append((node, callee))
        if callee == "str" and len(node.args) == 1 and isinstance(node.args[0], ast.Name):
            self.str_args.add(id(node.args[0]))
        if callee in TZ_CALLS and node.args:
            self._timezone(node.args[0])
        for kw in node.keywords:
            if kw.arg in TZ_KEYWORDS:
                self._timezone(kw.value)
        if callee in ALLOCATING_CALLS:
            sizes = list(node.args) + [k.value for k in node.keywords if k.arg in SIZE_KEYWORDS]
            for size in sizes:
                if _is_big(_const_count(size), MAX_ELEMENTS):
                    raise _Refusal("huge-size", node, f"{callee}() asked for more than {MAX_ELEMENTS:,} elements")
        self._each(node.args, scopes)
        for kw in node.keywords:
            if kw.arg is not None and kw.arg.startswith("_"):
                raise _Refusal("private-name", kw, f"keyword {kw.arg!r} starts with '_'")
            if kw.arg == "aggfunc" and callee not in DISPATCH_TABLE:  # any call taking aggfunc dispatches too
                self._callable_spec(kw.value, callee or "aggfunc")
            self._expr(kw.value, scopes)

    def _timezone(self, node: ast.AST) -> None:
        """A time zone must be a literal IANA name (or None): other strings open files or paths."""
        if isinstance(node, ast.Constant) and node.value is None:
            return
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and IANA_NAME.fullmatch(node.value):
            return
        raise _Refusal("timezone", node, "time zones must be a literal IANA name such as 'UTC' or "
                       "'America/New_York' (no paths, no 'dateutil/' prefix, no computed names)")

    def _dispatch(self, node: ast.Call, method: str) -> None:
        if method not in DISPATCH_METHODS:
            self._dispatch_at(node, method)
            return
        if node.args and isinstance(node.args[0], ast.Starred):
            raise _Refusal("string-dispatch", node, f"cannot verify the function passed to .{method}()")
        if node.args:
            self._callable_spec(node.args[0], method)
        for kw in node.keywords:
            if kw.arg is None:
                raise _Refusal("string-dispatch", kw.value, f"**kwargs in .{method}() cannot be verified")
            if kw.arg in DISPATCH_OPTION_KEYWORDS:
                continue
            value = kw.value
            if kw.arg not in ("func", "arg") and isinstance(value, ast.Tuple) and len(value.elts) == 2:
                value = value.elts[1]
            self._callable_spec(value, method)

    def _dispatch_at(self, node: ast.Call, method: str) -> None:
        """filter, pivot_table, crosstab: only the places the table names take a function."""
        positions, keywords = DISPATCH_TABLE[method]
        if method == "pivot_table":
            receiver = node.func.value if isinstance(node.func, ast.Attribute) else None
            positions = (4,) if isinstance(receiver, ast.Name) and receiver.id == "pd" else (3,)
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            raise _Refusal("string-dispatch", node, f"cannot verify the arguments of .{method}() given with * or **")
        for pos in positions:
            if pos < len(node.args):
                arg = node.args[pos]
                if method == "filter" and isinstance(arg, (ast.List, ast.Tuple)):
                    continue  # DataFrame.filter(items): labels, not a function
                self._callable_spec(arg, method)
        for kw in node.keywords:
            if kw.arg in keywords:
                self._callable_spec(kw.value, method)

    def _callable_spec(self, node: ast.AST, method: str) -> None:
        """The function given to apply/agg/transform/pipe must visibly be a function or a reducer name."""
        if isinstance(node, ast.Lambda):
            return
        if isinstance(node, ast.Name) and node.id not in self.rebound and (
            node.id in self.def_names or node.id in SAFE_FUNCTIONS
        ):
            return
        if isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            root = dotted.split(".")[0] if dotted else ""
            if root in MODULE_NAMES and root not in self.rebound:
                return
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in REDUCER_STRINGS:
                return
            raise _Refusal("string-dispatch", node,
                           f".{method}({node.value!r}) dispatches to a method by name; only reducers such as 'mean', 'sum', 'std' are allowed")
        if isinstance(node, (ast.List, ast.Tuple)):
            for elt in node.elts:
                self._callable_spec(elt, method)
            return
        if isinstance(node, ast.Dict):
            for value in node.values:
                self._callable_spec(value, method)
            return
        raise _Refusal("string-dispatch", node,
                       f"cannot verify the function passed to .{method}(); use a lambda, a helper defined here, an np/pd function or a reducer name")


def check(source: str) -> GateResult:
    """Decide whether a candidate region may run; never raises, refuses whatever it cannot read."""
    try:
        return _check(source)
    except RecursionError:
        return _result("too-deep", None, "source nests too deeply to analyse")
    except MemoryError:
        return _result("parse", None, "source exhausted memory while being analysed")
    except Exception as exc:  # the gate fails closed on its own bugs as well
        return _result("internal", None, f"gate could not analyse the source ({type(exc).__name__})")


def _check(source: str) -> GateResult:
    if not isinstance(source, str):
        return _result("input", None, f"region must be text, got {type(source).__name__}")
    if len(source) > MAX_SOURCE_CHARS:
        return _result("size", None, f"region has {len(source):,} characters, more than {MAX_SOURCE_CHARS:,}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source, filename="<candidate>", mode="exec")
    except SyntaxError as exc:
        return _result("parse", exc.lineno, f"syntax error: {exc.msg}")
    except (ValueError, MemoryError, RecursionError, OverflowError) as exc:
        return _result("parse", None, f"the parser refused the source ({type(exc).__name__})")
    checker = _Checker(tree)
    try:
        checker.run()
    except _Refusal as refusal:
        found = checker.refusals or [refusal]
        first = _result(found[0].rule, found[0].line, found[0].message)
        more = [_result(r.rule, r.line, r.message).reason for r in found[1:MAX_VIOLATIONS]]
        if not more:
            return first
        extra = f" and {len(found) - MAX_VIOLATIONS} more" if len(found) > MAX_VIOLATIONS else ""
        return GateResult(False, first.rule, first.line, f"{first.reason}; also {'; '.join(more)}{extra}")
    return GateResult(True, "", None, "")
