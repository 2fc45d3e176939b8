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
#: Largest ``traffic.users``. The population is held as weights per activity group, but
#: building it (``sim.world.traffic.build_population``) takes two float arrays over every
#: user's rank: 10 million users is 160 MB, while 100 million took 1.8 GB (measured).
MAX_USERS = 10_000_000
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
#: columns (``runs.runner.RecordsTable``, Arrow then, numpy now): measured (issue 13 item 8, 1,000,000
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
#: Largest root seed (``seed``, ``--seed``). Root seeds are not stored in Parquet (records
#: hold each run's own seed, which fits int64); what bounds them is the compiled SeedSequence
#: hash of ``sim.runs.seedseq``, which holds a root of at most four 32-bit words. numpy's
#: SeedSequence takes any size, so every seed below 2**128 gives the same runs either way.
MAX_SEED = 2**128 - 1
#: How messages and help state ``MAX_SEED``.
SEED_LIMIT = f"2**{MAX_SEED.bit_length()} - 1"
#: Input files: YAML documents and CSV files (observations, exports).
MAX_YAML_BYTES = 5 * 1024 * 1024
MAX_CSV_BYTES = 256 * 1024 * 1024
#: An observations row costs about 500 bytes once read (measured: 1M rows, 575 MB peak,
#: 5 s), so 10M rows would need ~6 GB; 1M rows is 11 days of 4 metrics scraped every
#: 15 s, and a results CSV of 1M runs peaks at ~600 MB in pandas.
MAX_CSV_ROWS = 1_000_000
#: Series files (``pdsim query``: OpenMetrics text or a query_range JSON export). A sample
#: line is about 150 bytes and costs about 200 bytes once read, so 64 MiB (~450,000
#: samples: an hour of 1,800 series scraped every 15 s) stays near 100 MB.
MAX_SERIES_BYTES = 64 * 1024 * 1024

# --- Input files read back from results folders (issue 13, item 10) ----------------------
#: Largest JSON file of a results folder that pdsim reads back (a sweep's manifest.json,
#: a run's summary.json). A manifest lists every cell in about 400 bytes (three swept
#: parameters), so the MAX_SWEEP_CELLS cells of the largest sweep make ~400 MB.
MAX_RESULTS_JSON_BYTES = 1024**3

# --- policy fields (issue 13) -----------------------------------------------------------------

#: Largest replica count of an Argo Rollout (``replicas``, ``setCanaryScale.replicas``).
#: Argo's field is an int32; pdsim splits pods between canary and stable with float
#: arithmetic (``replicas x weight / 100``, ``sim.policies.argo.plan``), exact only for
#: modest counts. 10,000 pods is beyond any one workload a progressive delivery drives.
MAX_REPLICAS = 10_000

# --- simulated series (issue 14) ---------------------------------------------------------------

#: Unix time of simulated t = 0 in written series (``pdsim run --series``, ``pdsim query``):
#: 2026-01-01T00:00:00Z, a fixed instant so that files written twice are identical.
SERIES_EPOCH_S = 1767225600.0
#: Latest epoch accepted: Prometheus timestamps are int64 milliseconds, and any epoch plus
#: the longest horizon must stay well inside them (year 9999, as RFC 3339 can write it).
SERIES_EPOCH_LIMIT = 253402300799.0
