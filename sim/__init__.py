"""pdsim: simulate progressive-delivery policies before production does."""

from __future__ import annotations

from typing import Any

__all__ = ["load_results"]


def __getattr__(name: str) -> Any:
    # Lazy: `import sim` (every command) must not pay for pandas and pyarrow.
    if name == "load_results":
        from sim.store import load_results
        return load_results
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
