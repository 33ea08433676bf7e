"""The portfolio task: ``allocate(day)`` sets target weights across a universe each date (long, short,
sized; gross at most a cap), scored as one portfolio against the equal-weight buy and hold and cash."""
