"""The forecast task: scenario probabilities per horizon, resolved by the trusted parent and graded by
proper scoring rules. Buckets, validation, scores and statistics live here; the candidate only returns
probabilities."""

from alphaloop.tasks.forecast.task import ForecastTask

__all__ = ["ForecastTask"]
