"""Load and validation time of a legal ~5 MB YAML file, printed as figures (not a timed test).

Generates two files just under the 5 MiB input limit (``sim.limits.MAX_YAML_BYTES``):

* ``argo-steps``: the Argo policy of ``gates/policies/argo-canary.yaml`` with its ``steps``
  list grown to ~86,000 ``setWeight``/``pause`` steps (block style); timed as
  ``sim.yamlio.load_yaml`` alone and as ``pdsim validate`` does it (``load_policy``:
  YAML, pydantic models and the importer's checks);
* ``flow-mappings``: a list of ~75,000 flow mappings (``{name: m-1, min: 99, ...}``),
  timed as ``load_yaml`` alone.

``load_yaml`` uses libyaml's C parser when PyYAML has it (``yaml.__with_libyaml__``);
``--python`` also times the pure-Python fallback, which takes minutes on such files.
Figures are wall-clock and CPU seconds, each the best of ``--repeat`` runs.

Run: ``.venv/bin/python benchmarks/bench_yaml.py [--repeat K] [--python]``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim import yamlio  # noqa: E402
from sim.inputs.policy import load_policy  # noqa: E402
from sim.limits import MAX_YAML_BYTES  # noqa: E402

#: Stay this far under the limit, so the file is legal whatever the last line's length.
MARGIN = 64 * 1024


def argo_steps(path: Path) -> None:
    """The bundled Argo canary policy with a very long ``steps`` list."""
    head, rest = (ROOT / "gates" / "policies" / "argo-canary.yaml").read_text().split("      steps:\n", 1)
    tail = rest[rest.index("  templates:") :]
    parts, size, i = [head, "      steps:\n"], len(head) + len(tail), 0
    while size < MAX_YAML_BYTES - MARGIN:
        step = f"        - setWeight: {1 + i % 99}\n        - pause: {{duration: {1 + i % 59}m}}\n"
        parts.append(step)
        size += len(step)
        i += 1
    path.write_text("".join(parts) + tail, encoding="utf-8")


def flow_mappings(path: Path) -> None:
    """A generic data file: one long list of small flow mappings."""
    parts, size, i = ["name: big\nitems:\n"], 0, 0
    while size < MAX_YAML_BYTES - MARGIN:
        item = f"  - {{name: metric-{i}, thresholdRange: {{min: 99.5}}, interval: 1m, enabled: true}}\n"
        parts.append(item)
        size += len(item)
        i += 1
    path.write_text("".join(parts), encoding="utf-8")


def best(fn: Callable[[], object], repeat: int) -> str:
    """Best wall-clock and CPU seconds of ``repeat`` calls (CPU is steadier on a busy machine)."""
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return f"{min(wall):7.2f} s wall, {min(cpu):7.2f} s CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the best is printed")
    parser.add_argument("--python", action="store_true", help="also time the pure-Python parser (slow)")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, PyYAML {yaml.__version__}, libyaml: {yaml.__with_libyaml__}")
    parsers = [True] if yaml.__with_libyaml__ else []
    if args.python or not parsers:
        parsers.append(False)
    with tempfile.TemporaryDirectory() as tmp:
        files = {"argo-steps": Path(tmp) / "argo-steps.yaml", "flow-mappings": Path(tmp) / "flow.yaml"}
        argo_steps(files["argo-steps"])
        flow_mappings(files["flow-mappings"])
        for name, path in files.items():
            size = path.stat().st_size / 1e6
            for libyaml in parsers:
                yamlio.USE_LIBYAML = libyaml
                which = "libyaml" if libyaml else "python"
                figures = best(lambda p=path: yamlio.load_yaml(p), args.repeat)
                print(f"{name:14} {size:.2f} MB  load_yaml ({which}):      {figures}")
                if name == "argo-steps":
                    figures = best(lambda p=path: load_policy([p]), args.repeat)
                    print(f"{name:14} {size:.2f} MB  pdsim validate ({which}): {figures}")


if __name__ == "__main__":
    main()
