"""``pdsim calibrate``: a scenario fitted to a stable service's recorded Prometheus series.

Parts: ``recording`` (query_range JSON and CSV exports read into counts per scrape
interval), ``fit`` (traffic profile, request and error overdispersion, per-pod
heterogeneity, latency law), ``scenario_out`` (the scenario YAML, with comments saying
what was fitted from what), ``compare`` (the calibrated scenario simulated as a stable
service, and recorded and simulated statistics with intervals), ``report`` (the HTML page).
"""

from sim.calibrate.recording import Recording, read_recording

__all__ = ["Recording", "read_recording"]
