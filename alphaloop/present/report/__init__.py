"""One self-contained HTML report of a run: what was tried, what held up, and what did not.

Why a file and not a dashboard: it must open the morning after, offline, from a copied folder.
Everything is inline (CSS, base64 PNG charts drawn with matplotlib's Agg canvas); every text that
came from a file is escaped. Every figure and table names the split it was measured on. The report
never opens the test split: test figures come only from ``test_readings.jsonl`` (``harness.py final``).

Layout: ``data`` reads the run, ``html``/``charts``/``markdown``/``style`` are the building blocks,
``summary``/``best``/``performance``/``robustness`` the sections, ``document`` puts them in order and writes the file.
"""

from alphaloop.present.report.data import Run, load_run
from alphaloop.present.report.document import render_report, write_report
from alphaloop.present.report.markdown import markdown_html
from alphaloop.present.report.performance import locked_split_html

__all__ = ["Run", "load_run", "locked_split_html", "markdown_html", "render_report", "write_report"]
