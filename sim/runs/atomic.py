"""Atomic file writes: nothing half-written is ever seen under a final name.

A write goes to a temporary name beside the target and is renamed over it
(``os.replace`` is atomic on POSIX), so an interrupted run leaves either the old file,
the new one, or a stray temporary that readers ignore.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Write through ``write(tmp_path)`` to a temporary name beside ``path``, then rename."""
    # A plain name (not mkstemp) so the file gets the usual umask permissions.
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
