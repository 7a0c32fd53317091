"""Diagnostic scatter plots of pixels in RGB space, before and after quantization.

matplotlib is imported lazily inside `render_pixel_plot`, so importing this
module (and thus ``quantize --help``) stays cheap. The figure is drawn with
`matplotlib.figure.Figure` and the Agg canvas directly, never through pyplot:
that needs no global backend switch and is safe to call from worker threads.
"""

from __future__ import annotations

from os import PathLike
from typing import IO, TYPE_CHECKING, Final

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["PLOT_DPI", "PLOT_SIZE_INCHES", "PLOT_SIZE_PX", "render_pixel_plot", "sample_pixels"]

#: Figure size in inches and resolution; together they fix the PNG size.
PLOT_SIZE_INCHES: Final[tuple[float, float]] = (10.0, 9.0)
PLOT_DPI: Final[int] = 100
#: Size of the saved PNG in pixels, ``(width, height)``.
PLOT_SIZE_PX: Final[tuple[int, int]] = (1000, 900)

# Channel pairs of the two columns: (x channel, y channel).
_PAIRS: Final[tuple[tuple[int, int], ...]] = ((0, 1), (0, 2))
_CHANNEL_NAMES: Final[tuple[str, str, str]] = ("Red", "Green", "Blue")
# Marker areas in points^2: pixels small so 10,000 of them stay readable,
# centers big enough to keep a solid interior of their exact color.
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
) -> None:
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
    path_or_buffer : str, path-like or binary file object
        Where the PNG goes.

    Raises
    ------
    ValueError
        If the arrays are not (m, 3) or the pixel arrays differ in length.

    Notes
    -----
    The output depends only on the inputs (and the matplotlib version): no
    randomness, fixed size, no ``bbox_inches="tight"``, and no ``Software``
    metadata so equal inputs give equal bytes.
    """
    original = _check_rgb8("original_rgb8", original_rgb8)
    mapped = _check_rgb8("mapped_rgb8", mapped_rgb8)
    centers = _check_rgb8("centers_rgb8", centers_rgb8)
    if len(original) != len(mapped):
        raise ValueError(f"{len(original)} original pixels but {len(mapped)} mapped pixels")

    # Lazy: matplotlib costs ~0.3 s to import and most runs never plot.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Constrained layout keeps titles and axis labels of the 2x2 grid from overlapping.
    fig = Figure(figsize=PLOT_SIZE_INCHES, dpi=PLOT_DPI, layout="constrained")
    FigureCanvasAgg(fig)  # attaches itself to fig; savefig then renders with Agg
    axes = fig.subplots(2, 2)
    for col, (cx, cy) in enumerate(_PAIRS):
        pair = f"{_CHANNEL_NAMES[cx]} vs {_CHANNEL_NAMES[cy]}"
        _scatter_pixels(axes[0, col], original, original, cx, cy, f"Original: {pair}")
        _scatter_pixels(axes[1, col], original, mapped, cx, cy, f"Mapped to palette: {pair}")
        _scatter_centers(axes[1, col], centers, cx, cy)
    fig.suptitle(title)
    fig.savefig(path_or_buffer, format="png", dpi=PLOT_DPI, metadata={"Software": None})


def _scatter_pixels(
    ax: Axes,
    positions: NDArray[np.float64],
    colors: NDArray[np.float64],
    cx: int,
    cy: int,
    subtitle: str,
) -> None:
    """Plot ``positions`` on channels (cx, cy), colored by ``colors``; set up the axes."""
    ax.scatter(
        positions[:, cx], positions[:, cy], c=colors, s=_PIXEL_MARKER_AREA, linewidths=0, marker="o"
    )
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_aspect("equal")
    ax.set_xlabel(_CHANNEL_NAMES[cx])
    ax.set_ylabel(_CHANNEL_NAMES[cy])
    ax.set_title(subtitle)


def _scatter_centers(ax: Axes, centers: NDArray[np.float64], cx: int, cy: int) -> None:
    """Mark the cluster centers above the pixels, in their own color with a black rim."""
    ax.scatter(
        centers[:, cx],
        centers[:, cy],
        c=centers,
        s=_CENTER_MARKER_AREA,
        marker="o",
        edgecolors="black",
        linewidths=1.2,
        zorder=3,
        clip_on=False,  # centers near 0 or 1 stay whole instead of cut by the frame
    )
