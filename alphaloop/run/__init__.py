"""The research loop: flight, state and population, records, workdir, notebook (learnings)."""
