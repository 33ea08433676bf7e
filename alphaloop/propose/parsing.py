"""Turn an LLM's free-form reply into a Proposal.

Models format replies loosely (odd fence tags, prose around blocks, the whole trade.py, a
truncated final fence), so parsing is tolerant and never raises: a reply it cannot use becomes
``Proposal(region=None, error=...)`` and the loop records the reason instead of crashing.
Nothing here judges the code's safety; the gate does that later, on exactly what was returned.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from alphaloop.candidate import REGION_START, WEEKEND_START, RegionError, extract_region, region_origins, renumber
from alphaloop.present.text import clip_end
from alphaloop.propose.base import REPLY_LIMIT, Expectation, Proposal
from sandbox.gate_ast import is_literal

NO_CODE = ("no python code block in the reply defining both functions (nobody reads questions or plans: "
           "every reply must hold the complete region)")  # a model asked what costs apply to, and waited
RAW_LIMIT = 20_000  # characters of the reply kept on Proposal.raw (to_json bounds it further; .reply keeps it all)
# the second function of --task trade, forecast and portfolio: a reply defining generate_features and one of them
CONTRACT = ("generate_features", "strategy_logic", "forecast", "allocate")
FIELD_LIMIT = 1_000  # characters kept of each of Hypothesis / Change / Expected effect

PYTHON_TAGS = {"", "python", "py", "python3", "py3", "ipython", "pycon"}
MARKDOWN_TAGS = {"markdown", "md", "text", "txt"}

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([\w+.-]*)[^\n]*$")
THINK = re.compile(r"<think(?:ing)?>.*?(?:</think(?:ing)?>|\Z)", re.DOTALL | re.IGNORECASE)
DEF_FEATURES = re.compile(r"^\s*def\s+generate_features\s*\(", re.MULTILINE)
ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*(?:\s*,\s*[A-Za-z_]\w*)*\s*=(?!=)")  # ``FAST, SLOW = 20, 100``
DEF_LOGIC = re.compile(r"^\s*def\s+(?:strategy_logic|forecast|allocate)\s*\(", re.MULTILINE)

FIELD_NAMES = {"hypothesis": "hypothesis", "change": "change", "expected effect": "expected",
               "expected": "expected", "expectation": "expect", "expect": "expect"}
FIELD_LINE = re.compile(
    r"^[\s>*_#\-+]*(?:\d+[.)]\s*)?\**_*(hypothesis|change|expected effect|expectation|expected|expect)\**_*"
    r"\s*(?::|\s-\s|—|–)\**_*\s*(.*)$",
    re.IGNORECASE,
)
EXPECT_INLINE = re.compile(r"\bexpect(?:ation)?\**\s*:\**\s*([^\n]+)", re.IGNORECASE)

METRIC_ALIASES = {
    "return": "total_return", "returns": "total_return", "total_returns": "total_return",
    "drawdown": "max_drawdown", "max_dd": "max_drawdown", "maxdd": "max_drawdown", "mdd": "max_drawdown",
    "dd": "max_drawdown", "maximum_drawdown": "max_drawdown",
    "trades": "round_trips", "round_trip": "round_trips", "number_of_trades": "round_trips",
    "trade_count": "round_trips", "n_trades": "round_trips",
    "win": "win_rate", "hit_rate": "win_rate",
    "information": "information_ratio", "ir": "information_ratio",
    # the forecast table heads its per-horizon column rps_skill; every forecast figure is graded on its mean
    "rps_skill": "rps_skill_mean", "mean_rps_skill": "rps_skill_mean", "skill": "rps_skill_mean",
}
WHOLE_METRICS = {"net_exposure", "gross_exposure", "information_ratio"}  # a filler word is part of these names
METRIC_FILLER = {"the", "validation", "val", "net", "after", "cost", "costs", "annualised", "annualized",
                 "to", "will", "should", "would", "expected", "expect", "metric", "ratio"}
UP_WORDS = {"up", "increase", "increases", "higher", "rise", "rises", "raise", "more", "+", "↑"}
DOWN_WORDS = {"down", "decrease", "decreases", "lower", "fall", "falls", "drop", "drops", "less",
              "fewer", "-", "↓"}
NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)%?$")


@dataclass
class Block:
    """One fenced block of the reply: its language tag and its text."""

    tag: str
    text: str


def split_blocks(text: str) -> tuple[list[Block], str]:
    """Return the fenced blocks and the prose outside them; an unclosed last fence runs to the end."""
    blocks: list[Block] = []
    prose: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            prose.append(lines[i])
            i += 1
            continue
        fence, tag = m.group(1), m.group(2).lower()
        body: list[str] = []
        i += 1
        while i < len(lines):
            close = re.match(r"^ {0,3}(`{3,}|~{3,})\s*$", lines[i])
            if close and close.group(1)[0] == fence[0] and len(close.group(1)) >= len(fence):
                break
            body.append(lines[i])
            i += 1
        i += 1
        blocks.append(Block(tag=tag, text="\n".join(body)))
    return blocks, "\n".join(prose)


def defines_both(code: str) -> bool:
    return bool(DEF_FEATURES.search(code) and DEF_LOGIC.search(code))


def pick_code(blocks: list[Block], prose: str) -> str | None:
    """The code that defines both functions: the last such block, else the python blocks joined.

    The last block wins because models that show a "before" and an "after" put the answer last.
    """
    keys = (REGION_START.split("(")[0].strip(), WEEKEND_START)
    with_markers = [b.text for b in blocks if any(key in b.text for key in keys)]
    if with_markers:
        return with_markers[-1]
    full = [b.text for b in blocks if defines_both(b.text)]
    if full:
        return borrow_helpers(full[-1], [b.text for b in blocks if b.tag in PYTHON_TAGS and b.text != full[-1]])
    python = [b.text for b in blocks if b.tag in PYTHON_TAGS]
    joined = "\n\n".join(python)
    if python and defines_both(joined):
        return joined
    if not blocks and defines_both(prose):
        return bare_code(prose)
    return None


def borrow_helpers(code: str, others: list[str]) -> str:
    """``code`` with the top-level defs and constants it reads but does not define taken from the reply's
    other python blocks (transitively), placed before it: a model that shows a helper in a block of its
    own ("first a small helper: ...", then the region) meant it to be part of the answer."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return code
    offered: dict[str, tuple[ast.stmt, str]] = {}
    for text in others:
        try:
            body = ast.parse(text).body
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
        lines = text.split("\n")
        for node in body:
            if is_definition(node):
                start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
                for name in defined_names(node):
                    offered.setdefault(name, (node, "\n".join(lines[start - 1 : node.end_lineno])))
    taken: list[str] = []
    bound, queue = set(), [tree]
    while queue:
        node = queue.pop()
        bound |= _bound_names(node)
        for name in sorted(_read_names(node) - bound):
            if name in offered and offered[name][1] not in taken:
                taken.append(offered[name][1])
                queue.append(offered[name][0])
    return "\n\n\n".join([*taken, code]) if taken else code


def _bound_names(node: ast.AST) -> set[str]:
    """Every name ``node`` binds anywhere: assignments, parameters, defs, loop and comprehension targets."""
    out = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    out |= {a.arg for a in ast.walk(node) if isinstance(a, ast.arg)}
    return out | {n.name for n in ast.walk(node) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def _read_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def bare_code(text: str) -> str:
    """Code written without fences: the contract's first ``def`` with the constants, helpers and comments
    written right before it, up to the first unindented prose line; the longest such stretch that parses."""
    lines = text.split("\n")
    start = next(i for i, line in enumerate(lines) if DEF_FEATURES.match(line) or DEF_LOGIC.match(line))
    first = start
    while first > 0 and _code_line(lines[first - 1]):
        first -= 1
    end = start + 1
    while end < len(lines) and _code_line(lines[end]):
        end += 1
    for begin in range(first, start + 1):
        code = "\n".join(lines[begin:end]).strip("\n")
        if _parses(code):
            return code
    kept = [lines[start]]
    for line in lines[start + 1 :]:
        if line.strip() and not line[0].isspace() and not line.startswith(("def ", "#", "@")):
            break
        kept.append(line)
    return "\n".join(kept)


def _code_line(line: str) -> bool:
    return (not line.strip() or line[0].isspace() or line.startswith(("def ", "#", "@"))
            or bool(ASSIGNMENT.match(line)))


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def field_lines(text: str) -> dict[str, str]:
    """Values of the ``Hypothesis:``/``Change:``/``Expected effect:``/``Expect:`` lines (first of each).

    A value continues on following lines until a blank line or the next field.
    """
    found: dict[str, str] = {}
    current: str | None = None
    for line in text.split("\n"):
        m = FIELD_LINE.match(line)
        if m:
            key = FIELD_NAMES[m.group(1).lower()]
            current = key if key not in found else None
            if current:
                found[current] = m.group(2).strip().strip("*_").strip()
            continue
        if current and line.strip() and current != "expect":
            found[current] = f"{found[current]} {line.strip()}".strip()
        else:
            current = None
    return {k: clip_end(v, FIELD_LIMIT) for k, v in found.items()}


def normalise_metric(name: str) -> str:
    """Map the many ways a model names a metric onto the scorer's keys (``Sharpe ratio`` -> sharpe)."""
    whole = "_".join(w for w in re.split(r"[^a-z0-9]+", name.lower()) if w)
    if whole in WHOLE_METRICS:
        return whole
    words = [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w and w not in METRIC_FILLER]
    key = "_".join(words)
    return METRIC_ALIASES.get(key, key)


def parse_expect(text: str) -> Expectation | None:
    """Read ``sharpe up 0.1`` / ``max drawdown down`` / ``round_trips +5`` / ``total_return up 2%``.

    The metric is every word before the direction; a ``%`` magnitude is read as a fraction
    because returns and drawdowns are stored as fractions.
    """
    cleaned = re.sub(r"[`*_,;()\[\]]", " ", text.replace("_", " ")).strip()
    cleaned = re.sub(r"\b(?:by|about|around|roughly|approximately|approx)\b|~|≈", " ", cleaned, flags=re.IGNORECASE)
    cleaned = re.sub(r"([↑↓])", r" \1 ", cleaned)
    words = [w.rstrip(".:") or w for w in cleaned.split()]
    for i, word in enumerate(words):
        lower = word.lower()
        direction, magnitude_word = 0, None
        if lower in UP_WORDS:
            direction = 1
        elif lower in DOWN_WORDS:
            direction = -1
        elif NUMBER.match(lower) and lower[0] in "+-" and i > 0:
            direction, magnitude_word = (1 if lower[0] == "+" else -1), lower
        if not direction or i == 0:
            continue
        metric = normalise_metric("_".join(words[:i]))
        if not metric:
            return None
        if magnitude_word is None and i + 1 < len(words) and NUMBER.match(words[i + 1]):
            magnitude_word = words[i + 1]
        return Expectation(metric=metric, direction=direction, magnitude=read_magnitude(magnitude_word))
    return None


def read_magnitude(word: str | None) -> float | None:
    if word is None:
        return None
    value = abs(float(word.rstrip("%")))
    return value / 100.0 if word.endswith("%") else value


def parse_reply(text: str) -> Proposal:
    """Parse a reply into a Proposal; on anything unusable return ``region=None`` with the reason."""
    try:
        return _parse(text)
    except Exception as exc:  # a parser bug must cost one iteration, not the run
        return Proposal(region=None, error=f"could not parse the reply: {type(exc).__name__}: {exc}",
                        raw=str(text)[:RAW_LIMIT], reply=str(text)[:REPLY_LIMIT])


def _parse(text: str) -> Proposal:
    raw = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    visible = THINK.sub("", raw)
    blocks, prose = split_blocks(visible)
    notes = "\n".join(b.text for b in blocks if b.tag in MARKDOWN_TAGS)
    fields = field_lines(notes) if notes.strip() else {}
    fields.update({k: v for k, v in field_lines(prose).items() if k not in fields})
    if "expect" not in fields:
        inline = EXPECT_INLINE.search(prose)
        if inline:
            fields["expect"] = inline.group(1)
    expectation = parse_expect(fields["expect"]) if "expect" in fields else None
    proposal = Proposal(region=None, hypothesis=fields.get("hypothesis", ""), change=fields.get("change", ""),
                        expected=fields.get("expected", ""), expectation=expectation, raw=raw[:RAW_LIMIT],
                        reply=raw[:REPLY_LIMIT])
    if not visible.strip():
        proposal.error = "the reply was empty"
        return proposal
    code = pick_code(blocks, prose)
    if code is None:
        proposal.error = NO_CODE
        return proposal
    try:
        region = extract_region(code)
    except RegionError as exc:
        proposal.error = f"the reply's code has unusable region markers: {exc}"
        return proposal
    region, proposal.dropped = reduce_whole_file(region)
    proposal.region = drop_scope_imports(region)
    return proposal


def is_constant(node: ast.stmt) -> bool:
    """``NAME = <constant expression>`` (or annotated): the only top-level statement besides a def the contract
    allows. The test is the gate's own (``SCALE = 1.0 / 1.3863`` and ``CLIM = (1/3, 1/3, 1/3)`` are constants),
    so a reduction never drops a constant the gate would have accepted."""
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None:
        targets, value = [node.target], node.value
    else:
        return False
    if not all(isinstance(target, ast.Name) for target in targets):
        return False
    try:
        return is_literal(value)
    except RecursionError:
        return False


def unpacked_constants(node: ast.stmt) -> list[tuple[str, ast.expr]] | None:
    """``FAST, SLOW = 20, 100``: names and constant values, as the one-name assignments the contract allows
    (a model's habit the gate refuses as written); None for anything else."""
    if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Tuple)
            and isinstance(node.value, ast.Tuple) and len(node.targets[0].elts) == len(node.value.elts)):
        return None
    names = node.targets[0].elts
    if not all(isinstance(n, ast.Name) for n in names) or not all(is_literal(v) for v in node.value.elts):
        return None
    return [(n.id, v) for n, v in zip(names, node.value.elts, strict=True) if isinstance(n, ast.Name)]


def is_definition(node: ast.stmt) -> bool:
    """A def or a literal constant (one name, or unpacked): what a region may carry beside the contract."""
    return isinstance(node, ast.FunctionDef) or is_constant(node) or unpacked_constants(node) is not None


def defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef):
        return [node.name]
    unpacked = unpacked_constants(node)
    if unpacked is not None:
        return [name for name, _ in unpacked]
    if isinstance(node, ast.Assign):
        return [t.id for t in node.targets if isinstance(t, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def label(node: ast.stmt, lines: list[str]) -> str:
    """A few words naming a dropped statement, for the record."""
    if isinstance(node, ast.ClassDef):
        return f"class {node.name}"
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return f"def {node.name} (not used by {' or '.join(CONTRACT)})"
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
        return "a docstring"
    first = lines[node.lineno - 1].strip()
    return clip_end(first, 80)


def reduce_whole_file(region: str) -> tuple[str, list[str]]:
    """A whole file (imports, a docstring, classes, a main block, statements) cut down to the contract.

    A region made only of defs, imports and literal constants is returned unchanged, so the gate still
    sees and explains a stray import; anything else means the model pasted a file: the two functions,
    the defs and constants they use (transitively) are kept, and each dropped statement is named.
    Unparsable text is left for the gate to report.
    """
    try:
        tree = ast.parse(region)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return region, []
    body = tree.body
    plain = (ast.FunctionDef, ast.Import, ast.ImportFrom)
    if all(isinstance(n, plain) or is_constant(n) for n in body):
        return region, []
    if not any(isinstance(n, ast.FunctionDef) and n.name in CONTRACT for n in body):
        return region, []
    keepable = {name: n for n in body if is_definition(n) for name in defined_names(n)}
    wanted, queue = set(), [name for name in CONTRACT if name in keepable]
    while queue:
        name = queue.pop()
        if name in wanted:
            continue
        wanted.add(name)
        queue += [u for u in _read_names(keepable[name]) if u in keepable and u not in wanted]
    # a name the kept code reads but that no constant or def defines (``LEVELS = [x / 100 for x in ...]``)
    # keeps its statement: dropped, the gate would say only "name 'LEVELS' is not defined" of the line using it
    read = {x.id for name in wanted for x in ast.walk(keepable[name]) if isinstance(x, ast.Name)}
    lines = region.split("\n")
    kept: list[str] = []
    dropped: list[str] = []
    for node in body:
        unpacked = unpacked_constants(node)
        if unpacked is not None and any(name in wanted for name, _ in unpacked):
            kept.append("\n".join(f"{name} = {ast.unparse(value)}" for name, value in unpacked))
        elif any(name in wanted or (name in read and name not in keepable) for name in defined_names(node)):
            start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            kept.append("\n".join(lines[start - 1 : node.end_lineno]))
        else:
            dropped.append(label(node, lines))
    constants = [k for k in kept if not k.startswith(("def ", "@"))]
    functions = [k for k in kept if k.startswith(("def ", "@"))]
    text = "\n".join(constants) + ("\n\n\n" if constants else "") + "\n\n\n".join(functions)
    return text.strip("\n") + "\n", dropped


def in_reply_lines(reason: str, reply: str, region: str) -> str:
    """A reason's line numbers (the gate's, the sandbox's: of the region as rewritten) in the reply's own
    numbering, the text the model wrote and ``iter_N_reply.md`` holds; unchanged without a reply."""
    return renumber(reason, region_origins(reply, region), " of the reply") if reply and region else reason


SCOPE_IMPORT = re.compile(r"^(import numpy as np|import pandas as pd)[ \t]*(#.*)?$", re.MULTILINE)


def drop_scope_imports(region: str) -> str:
    """Remove top-level ``import numpy as np`` / ``import pandas as pd``: they rebind what is
    already in scope, and models write them out of habit. Any other import stays for the gate."""
    return SCOPE_IMPORT.sub("", region).strip("\n") + "\n"
