"""Centers moved onto the 8-bit palette grid by Lloyd's steps there.

The clustering core finds real-valued centers; a palette holds 8-bit sRGB
colors, and what an image is judged by is the error of its pixels mapped
to those colors.  Rounding each center alone costs its cluster's weight
times its distance to the grid, which on flat illustrations or at many
colors, where the error left is a fraction of a level, is several percent
of it.  Lloyd's steps on the grid lower that: map every row to its nearest
grid center, move each center to the grid point nearest its rows' mean
(for sRGB that is the best grid point for those rows), and repeat while
the error falls.  Arrays in, arrays out: no Pillow, no files.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from quantize import colors as cs
from quantize._kernels import assign_nearest, weighted_count
from quantize.histogram import pack_rgb

__all__ = ["DESCENT_MAX_ROWS", "MAX_WORK", "snap_centers"]

#: Rows x centers up to which the grid steps run: each step is one plain
#: assignment of every row, cheap on such tables, and the tables where
#: rounding costs most (flat illustrations, few distinct colors, dark
#: images whose error left at k = 256 is a fraction of a level) are these.
#: Up to 2**21 the corpus's night render at k = 256 (18648 colors) was
#: only rounded; the grid steps took a darkened photo of the tuning set
#: (benchmarks/tuning.py) from 0.3% above scikit-learn's best of 10 to
#: 0.9% below.
MAX_WORK = 1 << 23
#: Steps at most; they stop as soon as one does not lower the error.
MAX_STEPS = 8
#: Sweeps of single-center moves on the grid at most (sRGB only), on
#: tables of up to DESCENT_MAX_ROWS rows: a sweep costs a few passes over
#: the rows per center, more than the whole fit of a larger table.
MAX_SWEEPS = 4
DESCENT_MAX_ROWS = 1 << 15
# The 26 neighbors of a grid point, in sRGB scaled to 0..1.
_MOVES = (
    np.array([(r, g, b) for r in (-1, 0, 1) for g in (-1, 0, 1) for b in (-1, 0, 1)])[
        [i for i in range(27) if i != 13]
    ]
    / 255.0
)
_MOVES_SQ = np.einsum("ij,ij->i", _MOVES, _MOVES)


def snap_centers(
    points: NDArray[np.float64],
    weights: NDArray[np.float64],
    centers: NDArray[np.float64],
    space: str,
) -> NDArray[np.float64]:
    """Centers on the 8-bit sRGB grid, improved by Lloyd's steps there.

    Parameters
    ----------
    points : ndarray of float64, shape (m, 3)
        Distinct colors in ``space``.
    weights : ndarray of float64, shape (m,)
        Pixel count of each row.
    centers : ndarray of float64, shape (k, 3)
        Centers in ``space``.
    space : str
        Working space of ``points`` and ``centers`` (see :mod:`quantize.colors`).

    Returns
    -------
    ndarray of float64, shape (k', 3)
        Distinct grid colors in ``space``, ``k' <= k``: the rounded
        ``centers`` when ``m * k`` exceeds :data:`MAX_WORK`, else the
        rounded centers after the grid steps that lowered the weighted SSE
        of every row to its nearest center.
    """
    grid = _on_grid(centers, space)
    if points.shape[0] * grid.shape[0] > MAX_WORK:
        return grid
    labels, sq = assign_nearest(points, grid)
    sse = float(weights @ sq)
    for _ in range(MAX_STEPS):
        k = grid.shape[0]
        totals = weighted_count(labels, weights, k)
        sums = np.stack(
            [weighted_count(labels, weights * points[:, j], k) for j in range(points.shape[1])],
            axis=1,
        )
        used = totals > 0
        moved = grid.copy()
        moved[used] = sums[used] / totals[used, None]
        candidate = _on_grid(moved, space)
        new_labels, new_sq = assign_nearest(points, candidate)
        new_sse = float(weights @ new_sq)
        if not new_sse < sse:
            break
        grid, labels, sse = candidate, new_labels, new_sse
    if space == "rgb" and points.shape[0] <= DESCENT_MAX_ROWS:
        grid = _descend(points, weights, grid)
    return grid


def _descend(
    x: NDArray[np.float64], w: NDArray[np.float64], grid: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Move single centers to a neighboring sRGB grid point (one level along
    any of the channels) while that lowers the SSE.

    Lloyd's steps on the grid stop where the best grid point for each
    cluster's rows is the rounded mean; moving a center by one level also
    moves its boundaries, which those steps never try.  Where pixels pile up
    in a few heavy clusters (a dark sky's noise) that is worth tenths of a
    percent.  A move is judged on the rows that have the center nearest or
    second nearest: the rows it would take from others are left out, so the
    judged SSE is an upper bound; several centers move in one sweep only if
    no row has two of them as its two nearest, so the bounds add up.
    """
    if grid.shape[0] < 2:
        return grid
    for _ in range(MAX_SWEEPS):
        d = _sq_dist(x, grid)
        order = np.argpartition(d, 1, axis=1)[:, :2]
        d1 = np.take_along_axis(d, order[:, :1], axis=1)[:, 0]
        d2 = np.take_along_axis(d, order[:, 1:], axis=1)[:, 0]
        first, second = order[:, 0], order[:, 1]
        touched: NDArray[np.bool_] = np.zeros(grid.shape[0], dtype=bool)
        moved = grid.copy()
        for j in range(grid.shape[0]):
            rows = np.flatnonzero((first == j) | (second == j))
            if rows.size == 0 or touched[j]:
                continue
            without = np.where(first[rows] == j, d2[rows], d1[rows])
            # |x - c - m|^2 = |x - c|^2 - 2 (x - c).m + |m|^2, for the 26 moves m.
            offset = x[rows] - grid[j]
            moved_sq = offset @ (-2.0 * _MOVES.T)
            moved_sq += _MOVES_SQ
            moved_sq += np.einsum("ij,ij->i", offset, offset)[:, None]
            cost = w[rows] @ np.minimum(without[:, None], moved_sq)
            # Off the grid's ends a palette color would be clipped back.
            cost[_off_range(grid[j])] = np.inf
            best = int(np.argmin(cost))
            if cost[best] < float(w[rows] @ d1[rows]) * (1 - 1e-12):
                moved[j] = grid[j] + _MOVES[best]
                # Centers sharing a row with j wait for the next sweep.
                touched[first[rows]] = True
                touched[second[rows]] = True
        if not touched.any():
            break
        if float(w @ _sq_dist(x, moved).min(axis=1)) >= float(w @ d1):
            break
        grid = moved
    return grid


def _off_range(center: NDArray[np.float64]) -> NDArray[np.bool_]:
    """Which of the 26 moves take ``center`` outside 0..1 in some channel."""
    moved = center + _MOVES
    outside = (moved < -0.5 / 255.0) | (moved > 1.0 + 0.5 / 255.0)
    return np.asarray(outside.any(axis=1), dtype=np.bool_)


def _sq_dist(x: NDArray[np.float64], centers: NDArray[np.float64]) -> NDArray[np.float64]:
    """Squared distances (m, k), by the expansion: no (m, k, 3) temporary."""
    d = x @ (-2.0 * centers.T)
    d += np.einsum("ij,ij->i", centers, centers)
    d += np.einsum("ij,ij->i", x, x)[:, None]
    return np.maximum(d, 0.0, out=d)


def _on_grid(centers: NDArray[np.float64], space: str) -> NDArray[np.float64]:
    """The distinct 8-bit sRGB colors nearest ``centers``, in ``space``."""
    rgb8 = cs.space_to_rgb8(centers, space)
    # By packed key: np.unique along an axis would load numpy.ma.
    _, first = np.unique(pack_rgb(rgb8), return_index=True)
    return cs.rgb8_to_space(rgb8[np.sort(first)], space)
