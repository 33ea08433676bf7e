"""The small markdown subset the report renders learnings.md with, on escaped text."""

from __future__ import annotations

import re

from alphaloop.present.report.html import esc

_INLINE = [(re.compile(r"`([^`]+)`"), r"<code>\1</code>"), (re.compile(r"\*\*([^*]+)\*\*"), r"<b>\1</b>")]


def markdown_html(text: str) -> str:
    """A small markdown subset (headings, bullet lists, paragraphs, code and bold) on escaped text."""
    out: list[str] = []
    para: list[str] = []
    in_list = False

    def inline(s: str) -> str:
        s = esc(s)
        for pattern, repl in _INLINE:
            s = pattern.sub(repl, s)
        return s

    def flush() -> None:
        nonlocal in_list
        if para:
            out.append(f"<p>{inline(' '.join(para))}</p>")
            para.clear()
        if in_list:
            out.append("</ul>")
            in_list = False

    for line in text.splitlines():
        stripped = line.strip()
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        bullet = re.match(r"^[-*]\s+(.*)$", stripped)
        if heading:
            flush()
            level = min(len(heading.group(1)) + 2, 6)
            out.append(f"<h{level}>{inline(heading.group(2))}</h{level}>")
        elif bullet:
            if para:
                out.append(f"<p>{inline(' '.join(para))}</p>")
                para.clear()
            if not in_list:
                out.append("<ul>")
                in_list = True
            out.append(f"<li>{inline(bullet.group(1))}</li>")
        elif not stripped:
            flush()
        else:
            if in_list:
                out.append("</ul>")
                in_list = False
            para.append(stripped)
    flush()
    return "\n".join(out)
