"""Data: freeze, validate and read the frozen splits, CSV dialects, universes and held-out instruments."""
