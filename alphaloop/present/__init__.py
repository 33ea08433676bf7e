"""Presentation: the live view, the one text formatter, and the report."""
