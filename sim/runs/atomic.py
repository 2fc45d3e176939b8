"""Atomic file writes: nothing half-written is ever seen under a final name.

A write goes to a temporary name beside the target and is renamed over it
(``os.replace`` is atomic on POSIX), so an interrupted run leaves either the old file,
the new one, or a stray temporary that readers ignore.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

#: The temporary name of ``atomic_write``: ``.NAME.PID.tmp`` beside the target.
_TEMPORARY = re.compile(r"\..+\.\d+\.tmp")


def _temporary(path: Path) -> str:
    return str(path.parent / f".{path.name}.{os.getpid()}.tmp")


def stray_temporaries(folder: Path) -> list[Path]:
    """The temporaries that writers killed mid-write (SIGKILL: no cleanup) left in ``folder``.

    Only the caller knows that no writer is alive (it holds the folder's lock), so only it
    may delete them.
    """
    return sorted(p for p in folder.iterdir() if _TEMPORARY.fullmatch(p.name) and p.is_file())


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Write through ``write(tmp_path)`` to a temporary name beside ``path``, then rename."""
    # A plain name (not mkstemp) so the file gets the usual umask permissions.
    tmp = _temporary(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
