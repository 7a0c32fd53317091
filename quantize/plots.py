"""Diagnostic scatter plots of pixels in RGB space, before and after quantization.

matplotlib is imported lazily inside `render_pixel_plot`, so importing this
module (and thus ``quantize --help``) stays cheap. The figure is drawn with
`matplotlib.figure.Figure` and the Agg canvas directly, never through pyplot:
that needs no global backend switch.  One figure is reused per process
(behind a lock, so threads may call it too).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from typing import IO, TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.collections import PathCollection
    from matplotlib.figure import Figure
    from matplotlib.text import Text

__all__ = [
    "PLOT_DPI",
    "PLOT_SIZE_INCHES",
    "PLOT_SIZE_PX",
    "preload",
    "render_pixel_plot",
    "safe_title",
    "sample_pixels",
]

#: Figure size in inches and resolution; together they fix the PNG size.
PLOT_SIZE_INCHES: Final[tuple[float, float]] = (10.0, 9.0)
PLOT_DPI: Final[int] = 100
#: Size of the saved PNG in pixels, ``(width, height)``.
PLOT_SIZE_PX: Final[tuple[int, int]] = (1000, 900)

# Channel pairs of the two columns: (x channel, y channel).
_PAIRS: Final[tuple[tuple[int, int], ...]] = ((0, 1), (0, 2))
_CHANNEL_NAMES: Final[tuple[str, str, str]] = ("Red", "Green", "Blue")
# Marker areas in points^2: pixels small so 10,000 of them stay readable
# (squares of about 3 px: solid in their exact color, and cheaper for Agg to
# fill than 10,000 antialiased circles), centers big enough to keep a solid
# interior of their exact color.
_PIXEL_MARKER_AREA: Final[float] = 4.0
_CENTER_MARKER_AREA: Final[float] = 160.0


def sample_pixels(n_total: int, n: int, seed: int) -> NDArray[np.intp]:
    """Choose up to ``n`` distinct pixel indices, reproducibly.

    Parameters
    ----------
    n_total : int
        Number of pixels to choose from.
    n : int
        Number of indices wanted.
    seed : int
        Seed for `numpy.random.default_rng`.

    Returns
    -------
    ndarray of intp, shape (min(n, n_total),)
        Indices into ``range(n_total)`` without repeats, in ascending order
        (sorted for cache-friendly gathering); all of them if
        ``n_total <= n``.

    Raises
    ------
    ValueError
        If ``n_total`` or ``n`` is negative.
    """
    if n_total < 0 or n < 0:
        raise ValueError(f"n_total and n must be non-negative, got {n_total} and {n}")
    if n_total <= n:
        return np.arange(n_total, dtype=np.intp)
    chosen = np.random.default_rng(seed).choice(n_total, size=n, replace=False)
    return np.sort(chosen).astype(np.intp)


def _check_rgb8(name: str, array: NDArray[np.uint8]) -> NDArray[np.float64]:
    """Validate an (m, 3) color array and scale it to 0..1 for matplotlib."""
    arr = np.asarray(array)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (m, 3), got {arr.shape}")
    return arr.astype(np.float64) / 255.0


def render_pixel_plot(
    original_rgb8: NDArray[np.uint8],
    mapped_rgb8: NDArray[np.uint8],
    centers_rgb8: NDArray[np.uint8],
    *,
    title: str,
    path_or_buffer: str | PathLike[str] | IO[bytes],
) -> list[str]:
    """Save a 2x2 grid of RGB scatter plots as a PNG of `PLOT_SIZE_PX` pixels.

    The top row shows the original pixels on the Red-Green and Red-Blue
    planes, each point in its own color; the bottom row shows the same
    positions in the color of the palette entry they were mapped to, with the
    cluster centers drawn as large black-edged circles. Axes span 0..1.

    Parameters
    ----------
    original_rgb8 : ndarray of uint8, shape (n, 3)
        Sampled pixels (see `sample_pixels`).
    mapped_rgb8 : ndarray of uint8, shape (n, 3)
        The palette color of each of those pixels.
    centers_rgb8 : ndarray of uint8, shape (k, 3)
        The palette, i.e. the cluster centers rounded to 8 bits.
    title : str
        Figure title, e.g. ``"china.jpg — 96,615 distinct colors → k=16"``.
        Characters the font has no glyph for, control characters and ``$``
        (matplotlib's math mode) are shown escaped (see `safe_title`).
    path_or_buffer : str, path-like or binary file object
        Where the PNG goes.

    Returns
    -------
    list of str
        Warnings matplotlib gave while drawing, one line each (they are not
        printed: the caller reports them).

    Raises
    ------
    ValueError
        If the arrays are not (m, 3) or the pixel arrays differ in length.

    Notes
    -----
    The output depends only on the inputs (and the matplotlib version): no
    randomness, a fixed layout and size, and no ``Software`` metadata, so
    equal inputs give equal bytes.  One figure is built per process and
    reused (its points, colors and title replaced), which makes every plot
    after the first several times cheaper; the bytes are the same as from a
    fresh figure.
    """
    original = _check_rgb8("original_rgb8", original_rgb8)
    mapped = _check_rgb8("mapped_rgb8", mapped_rgb8)
    centers = _check_rgb8("centers_rgb8", centers_rgb8)
    if len(original) != len(mapped):
        raise ValueError(f"{len(original)} original pixels but {len(mapped)} mapped pixels")
    with _LOCK, _captured() as caught:
        plot = _figure()
        for col, (cx, cy) in enumerate(_PAIRS):
            _set_points(plot.pixels[0][col], original, original, cx, cy)
            _set_points(plot.pixels[1][col], original, mapped, cx, cy)
            _set_points(plot.centers[col], centers, centers, cx, cy)
        plot.title.set_text(safe_title(title, plot.glyphs))
        plot.fig.savefig(
            path_or_buffer,
            format="png",
            dpi=PLOT_DPI,
            metadata={"Software": None},
            pil_kwargs={"compress_level": 1},
        )
    return caught


def preload() -> list[str]:
    """Import matplotlib and build the figure now; the warnings that gave, one line each.

    Worker processes forked afterwards inherit both, so none of them pays
    for the import (or a font cache build) again.
    """
    with _LOCK, _captured() as caught:
        _figure()
    return caught


def safe_title(text: str, glyphs: frozenset[int]) -> str:
    r"""``text`` with what the font cannot show escaped, for a matplotlib title.

    Characters without a glyph in ``glyphs`` (emoji, CJK in the default
    font) and control characters become Python escapes (``\U0001f600``,
    ``\n``) instead of empty boxes and a warning; ``$`` is escaped so a
    file name never switches on math mode.

    Examples
    --------
    >>> safe_title("a\U0001f600$b$.jpg", frozenset(map(ord, "ab$.jpg")))
    'a\\U0001f600\\$b\\$.jpg'
    """
    out = []
    for char in text:
        if char == "$":
            out.append("\\$")
        elif not char.isprintable() or ord(char) not in glyphs:
            out.append(ascii(char)[1:-1])
        else:
            out.append(char)
    return "".join(out)


@dataclass
class _Plot:
    """The reusable figure: its point collections by [row][column], centers, title, font."""

    fig: Figure
    pixels: list[list[PathCollection]]
    centers: list[PathCollection]
    title: Text
    glyphs: frozenset[int]


_LOCK = threading.Lock()
_PLOT: _Plot | None = None
# Fixed margins (figure fractions) instead of a layout engine: the layout
# engine measured every tick label on each save, and a fixed layout cannot
# depend on the title, so a reused figure draws what a fresh one would.
_GRID: Final[dict[str, float]] = {
    "left": 0.07,
    "right": 0.98,
    "bottom": 0.06,
    "top": 0.9,
    "wspace": 0.2,
    "hspace": 0.28,
}


def _figure() -> _Plot:
    """The process's figure, built on first use (importing matplotlib: slow, so lazily)."""
    global _PLOT
    if _PLOT is None:
        _PLOT = _build()
    return _PLOT


def _import_matplotlib() -> None:
    """Import matplotlib, whatever ``MPLBACKEND`` says.

    Its import rejects an unknown ``MPLBACKEND`` (the pyplot backend) with a
    ValueError; quantize never uses pyplot, only the Agg canvas, so such a
    value is dropped with a warning and the import tried again.
    """
    try:
        import matplotlib
    except ValueError:
        value = os.environ.pop("MPLBACKEND", None)
        if value is None:
            raise
        for name in [m for m in sys.modules if m.split(".")[0] == "matplotlib"]:
            del sys.modules[name]  # the half-imported package
        warnings.warn(f"ignored MPLBACKEND={value!r}: not a matplotlib backend", stacklevel=2)
        import matplotlib  # noqa: F401


def _build() -> _Plot:
    _import_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties, findfont, get_font

    fig = Figure(figsize=PLOT_SIZE_INCHES, dpi=PLOT_DPI)
    FigureCanvasAgg(fig)  # attaches itself to fig; savefig then renders with Agg
    axes = fig.subplots(2, 2, gridspec_kw=_GRID)
    pixels: list[list[PathCollection]] = [[], []]
    centers = []
    for col, (cx, cy) in enumerate(_PAIRS):
        pair = f"{_CHANNEL_NAMES[cx]} vs {_CHANNEL_NAMES[cy]}"
        pixels[0].append(_pixel_axes(axes[0, col], cx, cy, f"Original: {pair}"))
        pixels[1].append(_pixel_axes(axes[1, col], cx, cy, f"Mapped to palette: {pair}"))
        centers.append(_center_markers(axes[1, col]))
    title = fig.suptitle("")
    font = get_font(findfont(FontProperties(family=title.get_fontfamily())))
    return _Plot(fig, pixels, centers, title, frozenset(font.get_charmap()))


_NO_POINTS: Final = np.zeros((0, 2))


def _pixel_axes(ax: Axes, cx: int, cy: int, subtitle: str) -> PathCollection:
    """Set up one panel; its (empty) collection of pixel points."""
    points = ax.scatter(
        _NO_POINTS[:, 0], _NO_POINTS[:, 1], s=_PIXEL_MARKER_AREA, linewidths=0, marker="s"
    )
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_autoscale_on(False)
    ax.set_aspect("equal")
    ax.set_xlabel(_CHANNEL_NAMES[cx])
    ax.set_ylabel(_CHANNEL_NAMES[cy])
    ax.set_title(subtitle)
    return points


def _center_markers(ax: Axes) -> PathCollection:
    """The (empty) collection marking the cluster centers above the pixels, black-rimmed."""
    return ax.scatter(
        _NO_POINTS[:, 0],
        _NO_POINTS[:, 1],
        s=_CENTER_MARKER_AREA,
        marker="o",
        edgecolors="black",
        linewidths=1.2,
        zorder=3,
        clip_on=False,  # centers near 0 or 1 stay whole instead of cut by the frame
    )


def _set_points(
    points: PathCollection,
    positions: NDArray[np.float64],
    colors: NDArray[np.float64],
    cx: int,
    cy: int,
) -> None:
    """Put ``positions`` on channels (cx, cy), each in its color from ``colors``."""
    points.set_offsets(positions[:, [cx, cy]])
    points.set_facecolor(colors)  # type: ignore[arg-type]  # (n, 3) RGB rows


@contextmanager
def _captured() -> Iterator[list[str]]:
    """Collect matplotlib's warnings and warning log records as one-line strings.

    Missing glyphs, a font cache being built, an unwritable config folder:
    the caller reports them like every other warning (and ``-q`` hides them)
    instead of matplotlib printing file names and line numbers to stderr.
    """
    caught: list[str] = []
    logger = logging.getLogger("matplotlib")
    handler = _ListHandler(caught)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as records:
            warnings.simplefilter("always")
            yield caught
        caught.extend(" ".join(str(r.message).split()) for r in records)
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(" ".join(record.getMessage().split()))
