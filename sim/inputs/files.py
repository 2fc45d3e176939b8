"""Input files: regular, bounded.

Every file pdsim reads (scenario, policy, gates and sweep YAML, manifests, observations
CSV, results chunks, summaries and manifests) is opened here. A FIFO, a device, a socket
or a directory given where a file is expected is refused before anything is read: a
FIFO would block the command for ever, ``/dev/zero`` or ``/dev/urandom`` would be read
until memory runs out. What is read is capped, so a huge regular file is refused after
reading at most its limit plus one byte.

A symlink to a regular file is a regular file (``os.stat`` follows links). To leave no
window between the check and the read, the file is opened non-blocking (opening a FIFO
then returns at once instead of waiting for a writer) and the opened descriptor is
checked again with ``fstat``.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from sim.errors import InputError

# What a non-regular file is, for the message; anything else is "a special file".
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
# Not on every platform; where it is missing, the stat before the open still refuses FIFOs.
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_O_NOCTTY = getattr(os, "O_NOCTTY", 0)  # a terminal device must not become our controlling tty
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "a special file")


def _refuse_special(file: str, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise InputError(file, 1, None, f"not a regular file ({_kind(mode)})")


def size_text(n: int) -> str:
    """A byte count as users read it: ``5 MiB``, ``256 MiB``, ``1.5 KiB``, ``100 bytes``."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} bytes"


def open_regular(path: str | os.PathLike[str], *, what: str = "file") -> BinaryIO:
    """Open a regular file for reading in binary mode, refusing anything else.

    Args:
        path: the file, as the user gave it (a symlink to a regular file is fine).
        what: noun for messages, e.g. ``"scenario file"``.

    Returns:
        The open file; the caller closes it (``with open_regular(p) as fh``).

    Raises:
        InputError: ``FILE:1: cannot read WHAT: why`` when the file cannot be opened,
            ``FILE:1: not a regular file (a FIFO)`` for a FIFO, device, socket or directory.
    """
    file = os.fsdecode(path)
    try:
        # Checked before opening too: opening a device can have effects of its own.
        _refuse_special(file, os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | _O_NONBLOCK | _O_NOCTTY | _O_BINARY)
    except OSError as err:
        raise InputError(file, 1, None, f"cannot read {what}: {err.strerror or err}") from None
    except ValueError as err:  # e.g. an embedded NUL in the path
        raise InputError(file, 1, None, f"cannot read {what}: {err}") from None
    try:
        # The path may have been replaced between the stat and the open.
        _refuse_special(file, os.fstat(fd).st_mode)
        if _O_NONBLOCK:
            os.set_blocking(fd, True)  # no effect on a regular file; plain reads from here on
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: str | os.PathLike[str], *, what: str = "file", limit: int) -> bytes:
    """A regular file's bytes, refused when there are more than ``limit``.

    Reads at most ``limit + 1`` bytes whatever the file holds, so refusing a huge file
    costs no more than accepting one at the limit.

    Raises:
        InputError: as :func:`open_regular`, and ``FILE:1: WHAT is too large (limit is
            5 MiB)`` beyond the limit.
    """
    file = os.fsdecode(path)
    with open_regular(path, what=what) as fh:
        try:
            too_large = os.fstat(fh.fileno()).st_size > limit
            raw = b"" if too_large else fh.read(limit + 1)
        except OSError as err:
            raise InputError(file, 1, None, f"cannot read {what}: {err.strerror or err}") from None
    if too_large or len(raw) > limit:
        raise too_large_error(file, what, limit)
    return raw


def too_large_error(file: str, what: str, limit: int) -> InputError:
    """``FILE:1: WHAT is too large (limit is 5 MiB)``: the one message for a file over its cap."""
    return InputError(file, 1, None, f"{what} is too large (limit is {size_text(limit)})")


def read_text(path: str | os.PathLike[str], *, what: str = "file", limit: int) -> str:
    """A regular file's text, UTF-8 (a leading byte-order mark is dropped), at most ``limit`` bytes.

    Raises:
        InputError: as :func:`read_bytes`, and ``FILE:LINE: not a text WHAT (binary or
            not UTF-8)`` at the line of the first NUL byte or invalid UTF-8 sequence.
    """
    raw = read_bytes(path, what=what, limit=limit)
    nul = raw.find(b"\0")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        # err.start counts from after a BOM that utf-8-sig has already consumed.
        start = err.start + (3 if raw.startswith(b"\xef\xbb\xbf") else 0)
        nul = start if nul < 0 else min(nul, start)
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise InputError(os.fsdecode(path), line, None, f"not a text {what} (binary or not UTF-8)")
    return text


__all__ = ["open_regular", "read_bytes", "read_text", "size_text", "too_large_error"]
