"""Colours and line styles shared by every pdsim figure.

The Okabe–Ito palette stays distinguishable under the common forms of colour blindness.
Series also cycle through line styles and markers, so a figure printed in grey (or read
by someone who cannot tell two of the colours apart) still tells its series apart.
"""

from __future__ import annotations

from typing import TypedDict

__all__ = ["OKABE_ITO", "SERIES_COLOURS", "SERIES_STYLES", "SERIES_MARKERS", "SeriesStyle", "series_style"]

#: Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO: dict[str, str] = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}

#: Order in which series take colours; yellow comes last (poor contrast on white).
SERIES_COLOURS = tuple(
    OKABE_ITO[k] for k in ("blue", "orange", "green", "vermillion", "purple", "sky_blue", "black", "yellow")
)
SERIES_STYLES = ("-", "--", "-.", ":")
SERIES_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


class SeriesStyle(TypedDict):
    """Matplotlib keyword arguments of one series (``**style`` into ``plot``/``errorbar``)."""

    color: str
    linestyle: str
    marker: str


def series_style(i: int) -> SeriesStyle:
    """Matplotlib keyword arguments (colour, line style, marker) of the i-th series."""
    return {
        "color": SERIES_COLOURS[i % len(SERIES_COLOURS)],
        "linestyle": SERIES_STYLES[(i // len(SERIES_COLOURS) + i) % len(SERIES_STYLES)],
        "marker": SERIES_MARKERS[i % len(SERIES_MARKERS)],
    }
