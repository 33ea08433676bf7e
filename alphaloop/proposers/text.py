"""Clipping text for prompts and records, in one place for the proposers.

Kept private to this package for now; the project-wide helper (alphaloop/text.py) can absorb it.
"""

from __future__ import annotations

ELLIPSIS = "..."


def clip_end(text: str, limit: int) -> str:
    """``text`` flattened to one line and cut at a word boundary with an ellipsis when over ``limit``."""
    flat = " ".join(str(text).split())
    if len(flat) <= limit:
        return flat
    cut = flat[: max(0, limit - len(ELLIPSIS))]
    if " " in cut and not flat[len(cut)].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip() + ELLIPSIS


def clip_middle(text: str, limit: int) -> str:
    """Keep the head and the tail of an over-long text with a marker saying how much was cut.

    Both ends are kept because compacted learnings summarise at the top and add news at the end;
    the cuts fall on line breaks when one is near, so no line is cut mid-word.
    """
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
