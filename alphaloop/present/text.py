"""One helper family for text a candidate (or a model) controls, and one number formatter.

Why one module: feature names, rejection reasons, sandbox logs, exception messages, hypotheses and
model replies reach a terminal, log lines, ``learnings.md``, prompts and the HTML report. Each of
those sinks must see the same cleaned text: no terminal escape sequence, no control character, and
no line break that could forge a new line such as a fake ``ACCEPTED`` or JSON verdict.

- ``safe(text, keep="")``: escape sequences and control characters removed; whitespace controls
  (newline, carriage return, tab, ...) become a space unless listed in ``keep``.
- ``clip(text, width)``: ``safe`` text on one line, cut at a word boundary with "…" when over ``width``.
- ``clip_end``/``clip_middle``: the prompt-side variants (ASCII ellipsis; head and tail kept).
- ``html(text)``: ``safe`` then HTML-escaped, for the report.
- ``rich(text)``: ``safe`` then escaped for rich markup, so ``[bold]`` in a name prints as written.
- ``fmt(value, digits)``: one number format, with one rendering (``MISSING``) of None, NaN and inf
  (``verdict.format_metric`` is its form for a named metric); ``p_value``, ``plural`` and
  ``test_minus_validation`` for the statistics' and ``final``'s words.
"""

from __future__ import annotations

import html as _html
import math
import numbers
import re

from rich.markup import escape as _rich_escape

ELLIPSIS = "…"
ASCII_ELLIPSIS = "..."
MISSING = "-"  # how None, NaN and inf read everywhere (terminal, prompt, report)

# ECMA-48 escape sequences, 7-bit and 8-bit forms: CSI (ESC [ or 0x9b), string commands (OSC, DCS, SOS, PM,
# APC) up to their terminator (BEL or ST) or the end of the text, then any other two-byte ESC sequence.
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)
# Characters a terminal or an editor may take as a line break (C0, NEL, the Unicode separators).
_BREAKS = "\n\r\t\v\f\x1c\x1d\x1e\x1f\x85\u2028\u2029"
# Characters that reorder or hide text on screen (bidi overrides and isolates): removed.
_INVISIBLE = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or 0x7F <= code < 0xA0


def safe(text: object, keep: str = "") -> str:
    """``text`` as a string that cannot move the cursor, recolour a terminal or start a new line.

    Escape sequences go as a whole; line-breaking and other whitespace controls become one space
    each (so words stay apart) unless the caller lists them in ``keep`` (e.g. ``"\\n"`` for a
    multi-line block it frames itself); every other C0/C1 control and bidi override is dropped.
    """
    s = _ESCAPES.sub("", str(text))
    if s.isprintable() and not any(c in _INVISIBLE for c in s):
        return s
    out = []
    for ch in s:
        if ch in keep:
            out.append(ch)
        elif ch in _BREAKS:
            out.append(" ")
        elif not (_is_control(ch) or ch in _INVISIBLE):
            out.append(ch)
    return "".join(out)


def flat(text: object) -> str:
    """``safe`` text with every run of whitespace (line breaks included) folded into one space."""
    return " ".join(safe(text).split())


def clip(text: object, width: int, ellipsis: str = ELLIPSIS) -> str:
    """``text`` flattened to one safe line of at most ``width`` characters.

    When cut, the cut falls at the last word boundary that fits and ``ellipsis`` is appended; a
    first word longer than ``width`` has no boundary to cut at and is the one case cut inside.
    """
    line = flat(text)
    if len(line) <= width:
        return line
    room = max(0, width - len(ellipsis))
    cut = line[:room]
    if " " in cut and not line[room].isspace():
        cut = cut.rsplit(" ", 1)[0]
    if width <= len(ellipsis):
        return ellipsis[: max(width, 0)]
    return cut.rstrip() + ellipsis


def clip_end(text: object, limit: int) -> str:
    """``clip`` with an ASCII ellipsis, for prompts and records (what the proposers always wrote)."""
    return clip(text, limit, ASCII_ELLIPSIS)


def clip_middle(text: object, limit: int) -> str:
    """Keep the head and the tail of an over-long multi-line text with a marker saying how much was cut.

    Both ends are kept because compacted learnings summarise at the top and add news at the end;
    the cuts fall on line breaks when one is near, so no line is cut mid-word. Line breaks are
    kept; every other control character goes (``safe``).
    """
    text = safe(text, keep="\n")
    if len(text) <= limit:
        return text
    head_end = limit // 3
    tail_start = len(text) - (limit - head_end)
    newline = text.rfind("\n", 0, head_end)
    head_end = newline if newline > head_end // 2 else head_end
    newline = text.find("\n", tail_start)
    tail_start = newline + 1 if 0 <= newline < tail_start + (limit - limit // 3) // 2 else tail_start
    cut = tail_start - head_end
    return f"{text[:head_end].rstrip()}\n[... {cut} characters omitted ...]\n{text[tail_start:].lstrip()}"


def html(text: object) -> str:
    """``safe`` text escaped for HTML element content and quoted attribute values."""
    return _html.escape(safe(text), quote=True)


def rich(text: object, keep: str = "") -> str:
    """``safe`` text escaped for rich markup, for strings that are printed with markup on."""
    return _rich_escape(safe(text, keep))


def fmt(value: object, digits: int = 3, *, pct: bool = False, sign: bool = False, missing: str = MISSING) -> str:
    """A number with ``digits`` decimals (a percentage with ``pct``, a leading sign with ``sign``).

    None, NaN, inf, booleans and non-numbers all read as ``missing``, so a figure that does not
    exist looks the same on the terminal, in a prompt and in the report.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy scalars are Real too
        return missing
    number = float(value)
    if not math.isfinite(number):
        return missing
    return format(number, f"{'+' if sign else ''}.{digits}{'%' if pct else 'f'}")


def duration(seconds: float) -> str:
    """3725 -> '1h 02m', 75 -> '1m 15s', 4.2 -> '4s': coarse enough to read at a glance."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 60}m {s % 60:02d}s" if s >= 60 else f"{s}s"


def p_value(p: object) -> str:
    """A p-value as a reader should see it: "p = 0.048", and "p < 0.001" rather than a "p = 0.000" that
    reads as certainty."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not math.isfinite(float(p)):
        return f"p = {MISSING}"
    return "p < 0.001" if float(p) < 0.0005 else f"p = {float(p):.3f}"


def plural(count: int, noun: str) -> str:
    """``1 trial``, ``2 trials``: a count with its noun agreeing."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def test_minus_validation(delta: float | None, text: str | None = None) -> str:
    """The change from validation to test named by its direction: a drop is a degradation, a rise an
    improvement (``text``: the figure as the caller formats it, else 4 signed decimals)."""
    if delta is None or not math.isfinite(delta):
        return f"test - validation: {MISSING}"
    word = "degradation" if delta < 0 else "improvement" if delta > 0 else "no change"
    return f"{word} (test - validation): {text if text is not None else format(delta, '+.4f')}"
