"""The gate's allow-list and deny-list tables: pure data, no logic (``sandbox/gate.py`` applies them).

Kept apart so the rules can be read (and reviewed) in one place.
"""

from __future__ import annotations

import re

MAX_SOURCE_CHARS = 20_000
MAX_DEPTH = 100
MAX_ELEMENTS = 10**8
MAX_REPEAT = 10**7
MAX_INT_BITS = 256
REQUIRED_FUNCTIONS = ("generate_features", "strategy_logic")
# The functions each task's region must define at top level (``--task``); the trade task is the default.
TASK_FUNCTIONS = {"trade": REQUIRED_FUNCTIONS, "forecast": ("generate_features", "forecast")}
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
# apply/agg/transform/pipe check every argument; filter, pivot_table and crosstab only the places above
DISPATCH_METHODS = frozenset(k for k in DISPATCH_TABLE if k not in ("filter", "pivot_table", "crosstab"))
TZ_CALLS = frozenset({"tz_localize", "tz_convert"})
TZ_KEYWORDS = frozenset({"tz", "timezone", "tzinfo"})
# Calls that take a time zone at a position: name -> position (0-based). DatetimeTZDtype(unit, tz);
# date_range(start, end, periods, freq, tz); bdate_range likewise.
TZ_POSITIONS = {"DatetimeTZDtype": 1, "date_range": 4, "bdate_range": 4, "DatetimeIndex": 2,
                "fromtimestamp": 1, "fromordinal": 1, "now": 0, "today": 0, "astimezone": 0}
# A dtype string that names a time zone: "datetime64[ns, Europe/Paris]", "M8[ns, UTC]".
TZ_DTYPE = re.compile(r"(?i)\s*(datetime64|<?M8)\s*\[([^\],]*),([^\]]*)\]\s*")
DTYPE_STARTS = re.compile(r"(?i)(datetime64|M8)\s*\[")  # any text that begins a datetime dtype
# What a dtype argument (astype's first, any dtype=) may be: written out, never computed text.
DTYPE_NAMES = frozenset({"float", "int", "bool", "str", "complex", "object"})
IANA_NAME = re.compile(r"(UTC|GMT|[A-Z][A-Za-z_+\-]*(/[A-Z][A-Za-z0-9_+\-]*){0,2}|Etc/GMT[+\-]\d{1,2})")
MAX_LITERAL_ELEMENTS = 64  # one literal collection; a table of memorised rows is longer
MAX_LITERAL_TOTAL = 256  # numbers and strings inside literal collections, over the whole region
MAX_LITERAL_STRING = 120  # characters in one string literal (docstrings excepted)
MAX_LITERAL_INT_BITS = 53  # an integer literal beyond float precision is a blob, not a parameter
# Literal data counted whole over the region: every distinct number (its digits) and every distinct
# string or bytes literal (its characters), docstrings excepted. Ordinary strategies hold well under
# 100 (the corpus of tests/corpus/ordinary: at most 55); a table of memorised days, prices or
# outcomes needs far more.
MAX_LITERAL_CHARS = 800
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

RULES = (
    "input", "size", "parse", "too-deep", "internal", "top-level", "import", "contract",
    "duplicate-definition", "decorator", "statement", "expression", "scope", "private-name",
    "unbound-name", "reflection", "string-eval", "io", "output", "introspection", "options",
    "internals", "attribute-assign", "format-string", "string-dispatch", "huge-size",
    "infinite-loop", "literal-data", "timezone", "exception-attr",
)
