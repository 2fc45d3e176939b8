"""Gates: ``pdsim check``, requirements decided on confidence intervals.

Parts:

* ``spec``: the gates file's models (scenarios, requirements, ``inconclusive``);
* ``decide``: run the scenarios and decide each requirement (``load_gates``, ``run_gates``);
* ``output``: the verdicts as text, JUnit XML and Markdown.

The modules are listed, not imported: ``import sim.gates`` costs nothing.
"""

__all__ = ["decide", "output", "spec"]
