"""Gates: ``pdsim check``, requirements decided on confidence intervals.

Parts:

* ``spec``: the gates file's models (scenarios, requirements, ``inconclusive``);
* ``decide``: run the scenarios and decide each requirement (``load_gates``, ``run_gates``);
* ``frontier``: the ``frontier:`` gate, a policy against a ``pdsim tune`` frontier;
* ``output``: the verdicts as text, JUnit XML and Markdown.

The modules are listed, not imported: ``import sim.gates`` costs nothing.
"""

__all__ = ["decide", "frontier", "output", "spec"]
