"""Reports: figures, the single-file HTML report and the demo.

Parts:

* ``html``: the report page (``render_report``, ``write_report``; ``templates/``);
* ``results``: a report from a results folder (``pdsim report``);
* ``plots`` and ``plots_runs``: matplotlib figures of one rollout and of many;
* ``tradeoffs``: per-setting summaries and the speed-harm frontier;
* ``palette``: the colours every figure shares;
* ``demo`` and ``demo_figures``: ``make demo``, the bundled scenarios into one report.

The modules are listed, not imported: matplotlib loads only when a figure is drawn.
"""

__all__ = ["demo", "demo_figures", "html", "palette", "plots", "plots_runs", "results", "tradeoffs"]
