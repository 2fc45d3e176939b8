"""Inputs: load and validate what users write, with file and line in every error.

Parts:

* ``scenario``: the pydantic models of a scenario file (``Scenario``) and ``load_scenario``;
* ``policy``: policy paths (pdsim policy files, real manifests, folders of them) into a
  ``Policy`` (``load_policy``, ``scenario_policy``), and a scenario with the policy it
  runs (``load_scenario_and_policy``);
* ``files``: every input file opened the one way: a regular file (a FIFO, device or
  directory is refused before it can block or flood), read up to a size limit
  (``open_regular``, ``read_bytes``, ``read_text``);
* ``validation``: a pydantic validation error as one ``FILE:LINE: FIELD: message`` line
  (``validation_to_input_error``), shared by every reader of user files.

The modules are listed, not imported: ``import sim.inputs`` costs nothing.
"""

__all__ = ["files", "policy", "scenario", "validation"]
