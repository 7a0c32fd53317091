"""Colors grouped into sRGB cubes, and the exact Lloyd step they accelerate.

Internal to the clustering core (:mod:`quantize.cluster`), with plain names.
A table's colors are grouped by the high bits of their sRGB keys: the 5-bit
bins seed the restarts, the 6-bit bins (:class:`Bins`) carry the iterations
of large tables, and :class:`Filter` uses them for an exact Lloyd step on
every color: a bin whose ball (mean, distance to its farthest color) lies
closer to one center than to any other is assigned whole, with its exact
sufficient statistics, and only the colors of bins that straddle a boundary
are compared with the centers: with the mean's nearest center when they
provably keep it, with its two nearest when one of those is provably the
nearest, and with every center only otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from quantize import histogram
from quantize._kernels import (
    FloatArray,
    assign_nearest,
    row_norms,
    transpose_weighted,
    update_centers,
    weighted_count,
)
from quantize._threads import run_stripes

__all__ = [
    "Assignment",
    "Bins",
    "Filter",
    "exact_means",
    "exact_update",
    "filtered_assign",
    "make_bins",
    "seed_set",
]

#: Bits per channel of the bins the restarts run on, and of the finer bins
#: that large tables converge on and that accelerate their exact finish.
SEED_BITS = 5
FINE_BITS = 6
#: Rows per chunk when setting up the bin filter of large tables.
FILTER_CHUNK = 1 << 16
#: Distances per block when testing which bins are settled: 1 MiB of
#: float64, within the L2 cache, and a product of (rows, d) by (d, k) small
#: enough for OpenBLAS's small-matrix kernels (see
#: quantize._kernels.MAX_PRODUCT); larger blocks made the settling test
#: several times slower at k = 256.
SETTLE_BLOCK_ELEMENTS = 1 << 17
SETTLE_MIN_ROWS = 256
#: A binning is only useful when it leaves several bins per cluster.
MIN_BINS_PER_CLUSTER = 4
#: A bin heavier than 1 / (HEAVY_BIN_SPLIT * clusters) of the table's weight
#: is split (see split_heavy).
HEAVY_BIN_SPLIT = 16.0


@dataclass(frozen=True)
class Bins:
    """Colors grouped into sRGB cubes, with each bin's exact weighted mean."""

    index: NDArray[np.intp]
    keys: NDArray[np.uint32]
    means: NDArray[np.float64]
    totals: NDArray[np.float64]
    bits: int

    def coarser(self, bits: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Weighted means of coarser bins, from these bins rather than the rows."""
        index, n_bins = histogram.coarse_bins(self.keys, bits)
        return histogram.bin_means(self.means, self.totals, index, n_bins)


def make_bins(
    x: NDArray[np.float64], w: NDArray[np.float64], keys: NDArray[np.uint32], n_clusters: int
) -> Bins | None:
    """6-bit bins (finer if they would leave too few bins per cluster), the
    heavy ones split (see :func:`split_heavy`)."""
    cap = float(w.sum()) / (HEAVY_BIN_SPLIT * n_clusters)
    for bits in range(FINE_BITS, 8):
        index, n_bins = split_heavy(keys, w, bits, cap)
        if n_bins >= MIN_BINS_PER_CLUSTER * n_clusters:
            means, totals = histogram.bin_means(x, w, index, n_bins)
            bin_keys = np.zeros(n_bins, dtype=np.uint32)
            bin_keys[index] = keys  # every key of a bin gives the same coarse key
            return Bins(index, bin_keys, means, totals, bits)
    return None


def split_heavy(
    keys: NDArray[np.uint32], w: NDArray[np.float64], bits: int, cap: float
) -> tuple[NDArray[np.intp], int]:
    """:func:`quantize.histogram.coarse_bins` at ``bits``, except that a bin
    weighing more than ``cap`` is replaced by its bins of one more bit, and
    so on down to single colors.

    A bin is one point to the iterations that run on it: where the pixels
    pile up (the dark sky of a night scene, the background of a flat
    illustration, the black of a fundus photo) a uniform grid leaves the
    clusters that belong there nothing to divide.
    """
    index, n_bins = histogram.coarse_bins(keys, bits)
    for finer in range(bits + 1, 9):
        heavy = np.bincount(index, weights=w, minlength=n_bins) > cap
        if not heavy.any():
            break
        rows = np.flatnonzero(heavy[index])
        sub, n_sub = histogram.coarse_bins(keys[rows], finer)
        light = ~heavy
        renumber = np.cumsum(light) - 1
        n_light = int(renumber[-1]) + 1 if n_bins else 0
        index = renumber[index]
        index[rows] = n_light + sub
        n_bins = n_light + n_sub
    return index, n_bins


def seed_set(bins: Bins, n_clusters: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """5-bit bin means to seed on, unless too few for ``n_clusters``."""
    for bits in range(SEED_BITS, bins.bits):
        means, totals = bins.coarser(bits)
        if means.shape[0] >= MIN_BINS_PER_CLUSTER * n_clusters:
            return means, totals
    return bins.means, bins.totals


# --------------------------------------------------------------------------
# The exact Lloyd step accelerated by the bins.


@dataclass(frozen=True)
class Filter:
    """What the filtered assignment needs besides the rows themselves.

    ``spread[b]`` is the weighted SSE of bin b's rows around their mean, so
    a bin wholly assigned to center c contributes exactly
    ``spread[b] + totals[b] * |means[b] - c|^2`` to the SSE.
    """

    x: NDArray[np.float64]
    w: NDArray[np.float64]
    bins: Bins
    spread: NDArray[np.float64]
    radius: NDArray[np.float64]

    @classmethod
    def of(cls, x: NDArray[np.float64], w: NDArray[np.float64], bins: Bins) -> Filter:
        n_bins = bins.means.shape[0]
        spread = np.zeros(n_bins)
        radius = np.zeros(n_bins)
        # In chunks: row-sized temporaries would be ~100 MB on a 12 MP photo,
        # and fresh memory is what the first run in a process pays most for.
        for start in range(0, x.shape[0], FILTER_CHUNK):
            rows = slice(start, start + FILTER_CHUNK)
            index = bins.index[rows]
            offset = x[rows] - np.take(bins.means, index, axis=0)
            sq = np.einsum("ij,ij->i", offset, offset)
            spread += weighted_count(index, w[rows] * sq, n_bins)
            np.maximum.at(radius, index, np.sqrt(sq, out=sq))
        return cls(x, w, bins, spread, radius)


@dataclass(frozen=True)
class Assignment:
    """One exact assignment of every row, kept in compact form."""

    bin_labels: NDArray[np.intp]
    rows: NDArray[np.intp]
    row_labels: NDArray[np.intp]
    sums: NDArray[np.float64]
    totals: NDArray[np.float64]
    inertia: float

    def labels(self, bin_index: NDArray[np.intp]) -> NDArray[np.intp]:
        out = self.bin_labels[bin_index]
        out[self.rows] = self.row_labels
        return out


def settled_bins(
    f: Filter, centers: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.bool_]]:
    """Nearest center of each bin mean, the squared distance to it, and
    whether every row of the bin provably has that nearest center."""
    gaps = bin_gaps(f, centers)
    return gaps.labels, gaps.d1, gaps.gap > 2.0 * f.radius * (1 + 1e-9)


@dataclass(frozen=True)
class Gaps:
    """Where each of b points (bin means) stands among the centers.

    ``labels`` and ``second`` are its nearest and second-nearest centers,
    ``d1`` the squared distance to the nearest, ``gap`` a lower bound on how
    much nearer the nearest is than any other center (``inf`` with one
    center): a point within half that distance of the mean has the same
    nearest center, by the triangle inequality.  ``third`` is a lower
    bound on the distance to every center but those two (``inf`` with
    fewer than three centers).  The bounds allow for the rounding of the
    expanded distances.
    """

    labels: NDArray[np.intp]
    d1: NDArray[np.float64]
    gap: NDArray[np.float64]
    second: NDArray[np.intp]
    third: NDArray[np.float64]

    @classmethod
    def empty(cls, n: int) -> Gaps:
        labels, second = np.empty(n, dtype=np.intp), np.empty(n, dtype=np.intp)
        return cls(labels, np.empty(n), np.empty(n), second, np.empty(n))

    def fill(self, rows: slice, other: Gaps) -> None:
        """Copy ``other`` (the gaps of the points ``rows``) into place."""
        for name in ("labels", "d1", "gap", "second", "third"):
            getattr(self, name)[rows] = getattr(other, name)


def bin_gaps(f: Filter, centers: NDArray[np.float64]) -> Gaps:
    """:func:`gap_block` of every bin mean."""
    n_bins = f.bins.means.shape[0]
    gaps = Gaps.empty(n_bins)
    # In blocks of bins: the whole (bins, k) distance matrix would be 512 MB
    # for the 2**18 6-bit bins of noise at k = 256.
    rows = max(SETTLE_MIN_ROWS, SETTLE_BLOCK_ELEMENTS // centers.shape[0])

    def stripe(first: int, last: int) -> None:
        for start in range(first, last, rows):
            part = slice(start, min(start + rows, last))
            gaps.fill(part, gap_block(f.bins.means[part], centers))

    # Stripes of whole blocks: every block is the one the serial loop makes.
    run_stripes(stripe, n_bins, min_rows=rows, align=rows)
    return gaps


def settled_block(
    means: NDArray[np.float64], radius: NDArray[np.float64], centers: NDArray[np.float64]
) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.bool_]]:
    """`settled_bins` of some bins: their means (b, d) and radii (b,)."""
    gaps = gap_block(means, centers)
    return gaps.labels, gaps.d1, gaps.gap > 2.0 * radius * (1 + 1e-9)


def gap_block(means: NDArray[np.float64], centers: NDArray[np.float64]) -> Gaps:
    """The `Gaps` of the points ``means`` (b, d) among ``centers`` (k, d)."""
    b = means.shape[0]
    m_sq, c_sq = row_norms(means), row_norms(centers)
    # A C-ordered right operand: OpenBLAS is many times slower on the
    # transposed view for these shapes.
    dist = means @ np.ascontiguousarray(-2.0 * centers.T)
    dist += c_sq
    dist += m_sq[:, None]
    np.maximum(dist, 0, out=dist)
    labels = np.argmin(dist, axis=1)
    d1 = np.take_along_axis(dist, labels[:, None], axis=1)[:, 0]
    if centers.shape[0] == 1:
        return Gaps(labels, d1, np.full(b, np.inf), labels, np.full(b, np.inf))
    np.put_along_axis(dist, labels[:, None], np.inf, axis=1)
    second = np.argmin(dist, axis=1)
    d2 = np.take_along_axis(dist, second[:, None], axis=1)[:, 0]
    np.put_along_axis(dist, second[:, None], np.inf, axis=1)
    d3 = dist.min(axis=1)
    # Generous bound on the rounding of the expansion, so that no bin whose
    # rows could tie is called settled.
    slack = 16 * np.finfo(np.float64).eps * (m_sq + float(c_sq.max()))
    gap = np.sqrt(np.maximum(d2 - slack, 0)) - np.sqrt(d1 + slack)
    return Gaps(labels, d1, gap, second, np.sqrt(np.maximum(d3 - slack, 0)))


def filtered_assign(f: Filter, centers: NDArray[np.float64]) -> Assignment:
    """Exact nearest-center assignment of every row, bin by bin where possible."""
    k, d = centers.shape
    gaps = bin_gaps(f, centers)
    bin_labels, d1 = gaps.labels, gaps.d1
    settled = gaps.gap > 2.0 * f.radius * (1 + 1e-9)
    lab = bin_labels[settled]
    inertia = float(f.spread[settled].sum() + f.bins.totals[settled] @ d1[settled])
    totals = weighted_count(lab, f.bins.totals[settled], k)
    sums = np.empty((k, d))
    settled_sums = f.bins.means[settled] * f.bins.totals[settled, None]
    for j in range(d):
        sums[:, j] = np.bincount(lab, weights=settled_sums[:, j], minlength=k)
    rows = np.flatnonzero(~settled[f.bins.index])
    x, w = f.x[rows], f.w[rows]
    row_labels, sq = assign_unsettled(f, centers, gaps, rows, x)
    inertia += float(w @ sq)
    totals += weighted_count(row_labels, w, k)
    for j in range(d):
        sums[:, j] += np.bincount(row_labels, weights=w * x[:, j], minlength=k)
    return Assignment(bin_labels, rows, row_labels, sums, totals, inertia)


def assign_unsettled(
    f: Filter,
    centers: NDArray[np.float64],
    gaps: Gaps,
    rows: NDArray[np.intp],
    x: NDArray[np.float64],
) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Nearest center of the rows ``rows`` (points ``x``) of unsettled bins
    and the squared distance to it.

    A bin straddles a boundary when its farthest row might cross it, yet
    most of its rows cannot: every center but the mean's nearest one, c,
    is at least ``sqrt(d2) - |x - m|`` from a row x of a bin with mean m,
    and ``gap + sqrt(d1)`` bounds the mean's second-nearest distance
    ``sqrt(d2)`` from below, so a row nearer to c than that keeps c (more
    than half the rows of such bins on photos at k = 256).  Of the others,
    a row goes to the nearer of the mean's two nearest centers when that
    one is clearly nearer than the other and than ``third - |x - m|``,
    which bounds every further center's distance from below (most of the
    rest).  Only the remaining rows are compared with every center.
    """
    index = f.bins.index[rows]
    labels = gaps.labels[index]
    offset = np.take(f.bins.means, index, axis=0)
    offset -= x
    to_mean = np.sqrt(np.einsum("ij,ij->i", offset, offset))
    np.take(centers, labels, axis=0, out=offset)
    offset -= x
    sq = np.einsum("ij,ij->i", offset, offset)
    del offset
    # As in gap_block: slack for the rounding of the expanded distances
    # that assign_nearest compares, so that no kept row could tie there.
    slack = row_norms(x)
    slack += float(row_norms(centers).max())
    slack *= 16 * np.finfo(np.float64).eps
    near = slack + sq
    np.sqrt(near, out=near)
    near += to_mean
    near *= 1 + 1e-9
    keep = near < np.take(gaps.gap + np.sqrt(gaps.d1), index)
    del near
    # A row within half the gap of its mean keeps c too (implied by the
    # test above but for rounding: such rows were never compared).
    keep |= np.take(gaps.gap, index) > 2.0 * (1 + 1e-9) * to_mean
    rest = np.flatnonzero(~keep)
    del keep
    far = rest[~_pair_settles(centers, gaps, x, index, rest, to_mean, slack, labels, sq)]
    if far.size:
        labels[far], sq[far] = assign_nearest(x[far], centers)
    return labels, sq


def _pair_settles(
    centers: NDArray[np.float64],
    gaps: Gaps,
    x: NDArray[np.float64],
    index: NDArray[np.intp],
    rest: NDArray[np.intp],
    to_mean: NDArray[np.float64],
    slack: FloatArray,
    labels: NDArray[np.intp],
    sq: NDArray[np.float64],
) -> NDArray[np.bool_]:
    """Which of the rows ``rest`` go to the nearer of their mean's two
    nearest centers, provably: it is nearer than the other by more than
    twice the rounding ``slack`` of the expanded distances, and than any
    further center.  Their ``labels`` and ``sq`` are set; the rest are
    left for a search over every center."""
    at = index[rest]
    second = gaps.second[at]
    offset = np.take(centers, second, axis=0)
    offset -= x[rest]
    sq_second = np.einsum("ij,ij->i", offset, offset)
    del offset
    sq_first = sq[rest]
    moved = sq_second < sq_first
    best = np.where(moved, sq_second, sq_first)
    margin = slack[rest]
    margin *= 2.0
    settles = best + margin < np.where(moved, sq_first, sq_second)
    margin += best
    np.sqrt(margin, out=margin)
    margin += to_mean[rest]
    margin *= 1 + 1e-9
    settles &= margin < gaps.third[at]
    went = rest[settles & moved]
    labels[went] = second[settles & moved]
    sq[went] = sq_second[settles & moved]
    return settles


def exact_update(f: Filter, centers: NDArray[np.float64]) -> NDArray[np.float64]:
    """The centers after one exact Lloyd step on every row (filtered by the bins)."""
    first = filtered_assign(f, centers)
    if (first.totals > 0).all():
        return first.sums / first.totals[:, None]
    # A center lost every row: a plain pass gives the distances that
    # reseeding with the worst-fitting color needs.
    labels, sq = assign_nearest(f.x, centers)
    return update_centers(f.x, f.w, transpose_weighted(f.x, f.w), labels, sq, centers)


def exact_means(
    x: NDArray[np.float64], w: NDArray[np.float64], centers: NDArray[np.float64]
) -> NDArray[np.float64]:
    """One exact center update: assign every row, then the weighted means
    (empty clusters reseeded as in Lloyd's iterations)."""
    labels, sq = assign_nearest(x, centers)
    return update_centers(x, w, transpose_weighted(x, w), labels, sq, centers)
