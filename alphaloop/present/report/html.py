"""HTML building blocks of the report: escaping, number formatting, cells, tables, cards' sections."""

from __future__ import annotations

import numpy as np

from alphaloop.present.text import fmt as fmt_number
from alphaloop.present.text import html as html_text
from alphaloop.present.text import safe

PCT_KEYS = {"total_return", "cagr", "max_drawdown", "exposure", "win_rate", "bh_total_return", "bh_max_drawdown"}


METRIC_LABELS = {"total_return": "total return", "cagr": "CAGR", "sharpe": "Sharpe", "sortino": "Sortino",
                 "calmar": "Calmar", "max_drawdown": "max drawdown", "round_trips": "round trips",
                 "exposure": "exposure", "turnover": "turnover (x/yr)", "win_rate": "win rate",
                 "bh_total_return": "B&H return", "bh_sharpe": "B&H Sharpe", "bh_max_drawdown": "B&H max DD"}


SCENARIO_LABELS = {"bootstrap": "block bootstrap", "vol_1.5x": "volatility x1.5", "vol_2x": "volatility x2",
                   "crash_10": "crash gap -10%", "crash_20": "crash gap -20%", "regimes": "calm/turbulent regimes"}


def esc(value: object) -> str:
    """Every text from a file goes through here: proposals and learnings are untrusted (``text.html``)."""
    return html_text(value)


def fmt(value: object, key: str = "") -> str:
    """A number as the report shows it: percentages for returns and drawdowns, 2 decimals else."""
    if key in PCT_KEYS:
        return fmt_number(value, 1, pct=True, sign=key in ("total_return", "cagr", "bh_total_return"))
    return fmt_number(value, 0 if key in ("round_trips", "bars") else 2)


def cell(value: object, key: str = "") -> str:
    """A numeric table cell, coloured by sign for returns so a column reads at a glance."""
    text = fmt(value, key)
    cls = "num"
    if key in ("total_return", "cagr", "bh_total_return") and isinstance(value, (int, float)) and np.isfinite(value):
        cls += " pos" if value > 0 else " neg" if value < 0 else ""
    return f'<td class="{cls}">{esc(text)}</td>'


def table(headers: list[str], rows: list[str], cls: str = "") -> str:
    """``rows`` are ready-made ``<tr>`` inner HTML strings; headers are escaped here."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join(f"<tr>{r}</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def td(text: object, cls: str = "") -> str:
    """A text cell, escaped."""
    return f'<td class="{cls}">{esc(text)}</td>' if cls else f"<td>{esc(text)}</td>"


def note(text: str, cls: str = "note") -> str:
    """A one-line remark (missing file, warning), escaped."""
    return f'<p class="{cls}">{esc(text)}</p>'


def metric_label(metric: str) -> str:
    """How a metric key reads in a heading."""
    return METRIC_LABELS.get(metric, metric)


def section(sid: str, title: str, body: str, lead: str = "") -> str:
    """A titled card with an anchor id the navigation bar links to."""
    lead_html = f'<p class="lead">{esc(lead)}</p>' if lead else ""
    return f'<section id="{sid}"><h2>{esc(title)}</h2>{lead_html}{body}</section>'


def code_block(source: str) -> str:
    """Python source as a highlighted ``<pre>``, its lines and indentation kept.

    The text is the model's: control characters go (``safe``, keeping line breaks and tabs), and
    every token is HTML-escaped by pygments' formatter (a dependency of rich); the markup is only
    ``<span class>`` around tokens, so nothing in the source can become live HTML.
    """
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    text = safe(source, keep="\n\t").expandtabs(4)
    body = highlight(text, PythonLexer(stripnl=False, ensurenl=False), HtmlFormatter(nowrap=True))
    return f'<pre class="code hl"><code>{body}</code></pre>'
