"""The limits of what pdsim simulates exactly, in one place.

Every input is checked against these numbers before any work starts, and anything beyond
them is refused with exit 2 naming the file, line and field (or the CLI option). They are
not arbitrary: each says what keeps results exact or work bounded, and the README's
"Limits" section states them for users. ``tests/test_limits.py`` pins each one at its edge.

Counts are exact while they stay below 2**53 (the float64 mantissa; counts pass through
float means): the largest rate over the longest horizon is 1e8/s x 366 days = 3.2e15
requests, comfortably inside.
"""

from __future__ import annotations

#: Largest arrival rate, requests/s, at any moment: a base rate times every burst
#: overlapping it, and a load tester's rate. 100 million requests/s is beyond any single
#: service's traffic and keeps a run's count of requests exact (see the module docstring).
MAX_RATE_PER_S = 1e8
#: Largest burst ``factor`` and most bursts in one profile.
MAX_BURST_FACTOR = 1e6
MAX_BURSTS = 1000
#: Largest ``traffic.users``: the population is held as weights per activity group.
MAX_USERS = 100_000_000
#: Longest ``horizon`` (and any duration a run is simulated for): 366 days.
MAX_HORIZON_S = 366 * 86400.0
#: Most scrapes of one run (``horizon / scrape_interval``) and most policy ticks of one
#: run: a 14-day experiment scraped every 15 s is 80,640 scrapes.
MAX_SCRAPES_PER_RUN = 1_000_000
MAX_TICKS_PER_RUN = 1_000_000
#: Shortest scrape interval, metric interval and intermittent period: 1 ms.
MIN_INTERVAL_S = 0.001
#: Most rollouts one ``pdsim run``, ``compare`` or gate may simulate (and replicates per
#: sweep cell), and the most a sweep may hold over all its cells.
#: ``pdsim run`` keeps every run's record for its summary's quantile intervals, as compact
#: Arrow columns (``runs.runner.RecordsTable``): measured (issue 13 item 8, 1,000,000
#: error-spike records through ``RecordsTable`` and ``summarize_records``) about 150 bytes
#: a run held and 390 bytes a run at the summary's peak, over a 280 MB process; a real
#: ``pdsim run scenarios/error-spike.yaml --runs 2000000`` peaked at 1.10 GB RSS
#: (``/usr/bin/time -v``). 3 million runs peak near 1.5 GB, inside the 2 GB every command
#: must fit. (It was 100 million,
#: which as RunRecord objects, ~1.5 kB a run with their table, would have needed 150 GB.)
#: Sweeps stream records to disk and take more runs in all (MAX_SWEEP_ROLLOUTS).
MAX_RUNS = 3_000_000
MAX_SWEEP_ROLLOUTS = 1_000_000_000
#: Most cells a sweep's grid may expand to.
MAX_SWEEP_CELLS = 1_000_000
#: Seeds are unsigned 64-bit integers, as numpy's SeedSequence entropy and Parquet store them.
MAX_SEED = 2**64 - 1
#: Input files: YAML documents and CSV files (observations, exports).
MAX_YAML_BYTES = 5 * 1024 * 1024
MAX_CSV_BYTES = 256 * 1024 * 1024
MAX_CSV_ROWS = 10_000_000
