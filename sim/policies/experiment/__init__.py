"""A/B experiments that pick the more effective version (issue 19): pure statistics, fed
per-arm aggregates, vectorised over the runs of a batch.

``plan``: fixed-horizon planning (sample size, power, minimum detectable lift, duration) for
``pdsim plan-ab``.
"""

__all__ = ["plan"]
