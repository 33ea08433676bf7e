"""Evaluation: the pipeline stages, probes, guards, scoring, statistics, stress and the executors."""
