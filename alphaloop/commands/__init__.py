"""Commands: check, final, finish and the trade.py entry, each one evaluation path through evaluate/."""
