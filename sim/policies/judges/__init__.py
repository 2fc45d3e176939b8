"""Statistical judges: compare the canary with the baseline (issue 5). See ``base``."""
