"""Fit a palette to a weighted table of distinct colors, fast and exactly.

The image pipeline never clusters pixels one by one.  It clusters the table
of distinct colors weighted by their pixel counts, which has exactly the
same k-means objective, and this module makes that fast:

1. **Seed on coarse bins.**  Colors are grouped into cubes of
   ``2**(8 - bits)`` sRGB levels per side (:func:`quantize.histogram.coarse_bins`)
   and each bin is replaced by the exact weighted mean of its colors, in the
   working space (bin centers are never used).  Greedy k-means++ and
   Lloyd's iterations run on the few thousand 5-bit bin means, several
   times; the best run by inertia wins.  The runs advance in lockstep
   (:mod:`quantize.restarts`), which gives the same runs as one after the
   other for much less numpy overhead.  Above 32 clusters each run also
   takes a few iterations on the 6-bit bin means and is ranked there: the
   5-bit inertia no longer predicts which run ends best.  Up to 32
   clusters the best run is then improved by swaps on the 5-bit bins
   (:func:`_swap_search`), which escape the local optima that restarts
   only avoid by luck; so are tables too small to bin, up to 64 clusters
   (256 below 8192 rows).
2. **Refine.**  Lloyd's iterations continue to convergence on the 6-bit
   bin means, which stay close to the exact objective while being a few
   times fewer than the colors.  A bin heavier than a sixteenth of a
   cluster's average weight is split into finer bins, down to single
   colors (:func:`quantize._bins.split_heavy`): where the pixels pile up
   (a dark sky, a fundus photo's black) one point per uniform bin left
   the clusters there nothing to divide.  From 33 to 64 clusters, and below when
   the seed bins are coarse for the table (a dark or flat image piles its
   pixels into a few of them) or the 6-bit bins are few, a few more swaps
   follow on these bins.  In the command's fit of tables under ``2**18``
   colors above 32 clusters, split/merge moves follow there too
   (:func:`quantize.swaps.split_merge_search`), and from 9 to 23 clusters
   where the 6-bit bins are few.
   Only tables of up to ``2**18`` colors with 24 clusters or more
   converge on every distinct color instead,
   where per-row bounds (:class:`quantize._lloyd._Bounds`) make the late
   iterations revisit only the colors near a boundary; a few swaps follow
   on the colors up to ``2**22`` colors x clusters at 24 to 32 clusters,
   and, in the command's fit above 32 clusters, up to ``2**24``.
3. **Finish exactly.**  After converging on the bins, tables of up to
   ``2**18`` colors get one plain Lloyd step on every color.  Larger
   tables get one exact Lloyd step on every
   color, accelerated by the bins rather than approximated by them: a bin
   whose ball (bin mean, distance to its farthest color) is closer to one
   center than to any other, by the triangle inequality, is assigned in
   one step with its exact sufficient statistics; in a bin that straddles
   a boundary, a color closer to the bin mean than half the margin of the
   mean's nearest center keeps that center, and only the others are
   compared with every center.  Where only the centers are wanted
   (:func:`cluster_centers`, the image pipeline, which assigns the colors
   to the rounded palette afterwards), that last step compares every color
   with every center on float32 distances instead, on the threads: at high
   k most bins straddle a boundary, and a color that float32 rounding
   sends to a center no farther than the nearest by a few units in the
   seventh digit moves no center measurably.

In every case the returned labels are the nearest-center assignment of the
returned centers and the inertia is their exact weighted SSE over the table.

Points are in whatever working space the caller chose (rgb scaled to 0..1,
CIELAB, OKLab ...); nothing here assumes a range.  The sRGB keys are only
used to decide which colors share a bin.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from quantize import restarts
from quantize._bins import (
    Filter,
    exact_means,
    exact_update,
    filtered_assign,
    make_bins,
    seed_set,
)
from quantize._lloyd import (
    BOUNDS_MIN_WORK,
    LloydResult,
    Prepared,
    best_of,
    lloyd,
    lloyd_plain,
    lloyd_step_rounded,
    minibatch_fit,
    plain_passes,
    prepare,
)
from quantize._threads import Deferred
from quantize._validation import check_int, check_n_init, check_random_state
from quantize.histogram import nearest_float32

# Under the module's own name: the schedule's tests spy on it here.
from quantize.swaps import TOL
from quantize.swaps import split_merge_search as _split_merge_search
from quantize.swaps import swap_search as _swap_search
from quantize.vocabulary import Algorithm

__all__ = ["TableFit", "cluster_centers", "cluster_table", "resolve_n_init"]


# Tables with fewer rows than this are clustered directly: binning would not
# save anything worth its own cost.
MIN_ROWS_TO_BIN = 8192
# Above this many rows, Lloyd's iterations run on the 6-bit bins and only
# the finish touches every row.
_LARGE_TABLE = 1 << 18
# Smaller tables do the same up to this many clusters, finishing with
# EXACT_STEPS exact Lloyd steps: on photos the result is within a few
# hundredths of a percent of converging on every row, at a fraction of the
# cost.  With more clusters the bins' objective drifts further from the
# exact one, and smaller tables converge on every row.
_BINNED_REFINE_MAX_K = 32
EXACT_STEPS = 1

# Restarts on the bins only need to be ranked; the refinement goes on.
SEED_TOL = 1e-3
# Candidates per greedy k-means++ step when seeding on bins.  More than the
# textbook 2 + ln(k): on photos it lands in a good basin about twice as
# often, for little cost on a few thousand bins.
SEED_TRIALS = 8

# n_init="auto" restarts on the bins: 64 // k, between 1 and 8.  Local
# optima of photos differ by several percent at k <= 16, where restarts are
# also cheapest; at k = 64 they differ by tenths of a percent.
_AUTO_RESTART_BUDGET = 64
_AUTO_MAX_N_INIT = 8
# Above _BINNED_REFINE_MAX_K clusters, at least this many runs, ranked on
# the 6-bit bins: one run alone lands a percent above the best of two on
# photos at k = 64, more than the exact refinement can recover.
_RANKED_MIN_N_INIT = 2
# From this many clusters up to _BINNED_REFINE_MAX_K, the seeding run is
# improved by swaps on the seed bins (see _swap_search) and the refinement
# converges on every row: restarts alone leave flower.jpg at k = 32 about
# 1% above the best optimum in most seeds, swaps land within 0.3%.  Above
# _BINNED_REFINE_MAX_K the 5-bit bins are too coarse for swaps to be judged.
_SWAP_MIN_K = 24
_SWAP_TRIES = 20
# Below _SWAP_MIN_K, swaps follow the restarts too: on held-out photos and
# renders (benchmarks/bench_corpus.py) restarts alone left k = 16 more than
# 0.5% above scikit-learn's best of 10 on 5 of 11 images, up to 3% on dark
# or noisy flat areas.  Seeding on the 6-bit bins did better still but cost
# several times the whole fit.
_MINIBATCH_N_INIT = 3
# Tables too small to bin are improved by swaps up to this many clusters
# (a try costs Lloyd's iterations on fewer than MIN_ROWS_TO_BIN rows):
# without them the held-out corpus's flat illustrations and grayscale photo
# ended 2-3% above scikit-learn's best of 10 at k = 64.
_SMALL_SWAP_MAX_K = 64
# Tables of fewer than MIN_ROWS_TO_BIN rows get them up to this many: at
# k = 256 the corpus's logo (2139 colors) went from 4.3% above scikit-learn's
# best of 10 to 2.7%, its 1884-color illustration from 3.3% to 1.2%, for
# a few hundredths of a second.
_TINY_TABLE_SWAP_MAX_K = 256
# Their tries: as many as fit in _TINY_SWAP_WORK rows x clusters (a try is
# Lloyd's iterations on them), between _SWAP_TRIES and _TINY_SWAP_MAX_TRIES.
# On the tuning set (benchmarks/tuning.py) at k = 16, 20 tries left a
# 866-color logo 3.7% above scikit-learn's best of 10 in one seed of five
# and a 204-color texture 2.3% in two; the budget took them to -0.2% and
# one seed at +1.7%.  At k = 256 a table of 2000 colors keeps 20 tries.
_TINY_SWAP_WORK = 1 << 23
_TINY_SWAP_MAX_TRIES = 200
# The command's own fit of such a table draws no row twice against the same
# centers (a repeated try is the same Lloyd run, rejected again) and stops
# once every row was tried, so the tries of a table of a few dozen colors
# end where the search is exhausted: an 8x8 image of 64 random colors at
# k = 2 took 64 Lloyd runs instead of 200.  Its budget is then
# _TINY_COMMAND_SWAP_WORK: on the tuning set at k = 256 (benchmarks/tuning.py,
# seeds 0-4) it took the one table more than 0.5% above scikit-learn's best
# of 10 (a 2782-color flat illustration, +0.84%) to -1.2%, and the
# 866-color logo from -4.0..-6.6% to -6.6..-9.1%; four restarts instead of
# two did about as well for twice the added time (k-means++ seeding of 256
# centers costs more than the tries).
_TINY_COMMAND_SWAP_WORK = 1 << 25
# Up to this many clusters the fit converged on the 6-bit bins is improved
# by swaps there (see _swaps_on_fine_bins).  Above 32 clusters, where the
# 5-bit bins are too coarse to judge swaps, _RANKED_FINE_SWAP_TRIES of them:
# 8 took the corpus at k = 64 from 10 of 16 images more than 0.5% above
# scikit-learn's best of 10 to 6 (the night render from +10% to +3%), 16
# took it to 4 (seeds 0 and 1: from 12 of 32 cases to 8; color from +1.15%
# to +0.03%), for about 1.4 times the fit's time.  Each try costs Lloyd's
# iterations on the 6-bit bins, several times a try on the seed bins, so
# up to 32 clusters _FINE_SWAP_TRIES of them run only where they pay: on
# tables whose seed bins are coarse (_COARSE_SEED_PER_CLUSTER), and where
# the 6-bit bins are few enough for Lloyd's iterations on them to take
# plain passes (fewer than BOUNDS_MIN_WORK bins x clusters), so a try costs
# little.  The second took the corpus at k = 16 (seeds 0 and 1) from 7 of 32
# cases more than 0.5% above scikit-learn's best of 10 to 3 (ihc from
# +1.8% to -0.1%, coffee from +0.7% to -0.4%, the gradient render from
# +1.1% to 0.0%), for a quarter more fit time over the corpus; swaps on
# every table's 6-bit bins did no better and doubled the fit of tables
# with many bins (china.jpg at k = 16).
_FINE_SWAP_MAX_K = 64
_FINE_SWAP_TRIES = 8
# Cheap tries only from this many clusters: at k = 8 the restarts alone
# land within 0.1% of scikit-learn's best of 10 on every corpus image, and
# the tries doubled the fit (china.jpg).
_CHEAP_FINE_SWAP_MIN_K = 9
_RANKED_FINE_SWAP_TRIES = 16
# Tables that converge on every row (24 to 64 clusters, up to _LARGE_TABLE
# rows) get _EXACT_SWAP_TRIES swaps there too when rows x clusters is at
# most _EXACT_SWAP_MAX_WORK: the 6-bit bins of dark or hazy images (the
# night render, the astronomy photo) are too coarse to judge swaps that
# the exact objective separates.
_EXACT_SWAP_TRIES = 4
_EXACT_SWAP_MAX_WORK = 1 << 22
# Effective seed bins per cluster below which the seed bins are coarse for
# a table: the night render and the astronomy photo (about 0.5 and 2 at
# k = 16) are; the sample photos (about 40 and 20) are not.
_COARSE_SEED_PER_CLUSTER = 8.0
# Tables of fewer than _LARGE_TABLE rows, from _CHEAP_FINE_SWAP_MIN_K to
# _SWAP_MIN_K clusters, take the schedule of tables that converge on every
# row: _SMALL_FINE_SWAP_TRIES swaps on the 6-bit bins whatever their number,
# Lloyd's iterations to convergence on every row, and there
# _SMALL_EXACT_SWAP_TRIES swaps where rows x clusters is at most
# _SMALL_EXACT_SWAP_MAX_WORK.  One exact step after the 6-bit bins, as
# large tables take, left the tuning set (benchmarks/tuning.py) at k = 16
# more than 0.5% above scikit-learn's best of 10 in 13 of 75 image-seed
# cases (a darkened photo up to +9%, a sunset render +1.0%: the bins of
# dark or smooth images misjudge swaps that the exact objective
# separates); with these, 5.  The fit of such a table costs up to about
# twice as much; the 12 MP path, over _LARGE_TABLE rows, is unchanged.
_SMALL_FINE_SWAP_TRIES = 8
# After those swaps, where a try on the 6-bit bins is cheap (fewer than
# BOUNDS_MIN_WORK bins x clusters, plain passes), _SMALL_FINE_SPLITS
# split/merge tries (quantize.swaps.split_merge_search).  Smooth ramps
# (gradients, elevation maps under a colormap) end in basins where one
# cluster spans two stretches of the ramp while two centers share one: the
# 5-bit bins rank such a basin first, and a random swap rarely undoes it.
# On the tuning set at k = 16 (seeds 0-4) this took the cases more than
# 0.5% above scikit-learn's best of 10 from 4 of 45 on binned tables
# (a gradient render +1.1% to +1.7% in three seeds, an elevation map
# +1.06%) to 0 (+0.04% and +0.40% at worst).  Photos with many 6-bit bins
# (china.jpg) are outside the gate and unchanged; replacing the swaps by
# these moves instead cost the darkened photo +0.15%.  The first move
# ranked does it there: 1, 2, 4 and 8 tries gave the same misses and
# worst cases, and flower.jpg, just inside the gate (16,377 bins), spends
# about 5% more in quantize_image with 2 tries, about 20% with 8 (its
# moves are all rejected).
_SMALL_FINE_SPLITS = 2
_SMALL_EXACT_SWAP_TRIES = 8
_SMALL_EXACT_SWAP_MAX_WORK = 1 << 20
# Within that, tables whose tries are cheap get as many as fit in
# _SMALL_EXACT_SWAP_WORK rows x clusters, up to _SMALL_EXACT_SWAP_MAX_TRIES,
# and never repeat one (see swap_search's fresh_picks): on the tuning set
# at k = 16 (seeds 0-4) the darkened photo (12k colors, 16 tries) went from
# +0.36/+0.35% above scikit-learn's best of 10 in seeds 0 and 1 to
# -0.11/+0.35%.
_SMALL_EXACT_SWAP_WORK = 1 << 22
_SMALL_EXACT_SWAP_MAX_TRIES = 16
# Above _BINNED_REFINE_MAX_K clusters the command's fit of a table under
# _LARGE_TABLE rows (see _thorough_high_k) ranks its runs on the 6-bit bins
# after Lloyd's iterations there to _HIGH_K_RANK_TOL (not SEED_TOL: the run
# ahead after a few iterations often ends behind), converges on every row
# to _HIGH_K_EXACT_TOL (the late iterations at k = 256 still gain tenths of
# a percent, and per-row bounds make them cheap), and gets up to
# _HIGH_K_EXACT_SWAP_TRIES swaps there, as many as fit in
# _HIGH_K_EXACT_SWAP_WORK rows x clusters (none above 64 clusters before).
# On the tuning set (benchmarks/tuning.py, 15 images, seeds 0-4) this took
# the cases more than 0.5% above scikit-learn's best of 10 at k = 256 from
# 12 of 75 to 1 (elevation data under a colormap, +0.85%), at k = 64 from 5
# to 2 (a gradient render in two seeds); at k = 64, seeds 0-2, 4 tries
# instead of 8, or the old tolerance, each left a case (a darkened photo
# +1.2%, the gradient +0.6%) that these settings do not.
_HIGH_K_EXACT_TOL = 1e-6
_HIGH_K_RANK_TOL = TOL
_HIGH_K_EXACT_SWAP_TRIES = 8
_HIGH_K_EXACT_SWAP_WORK = 1 << 24
# The thorough schedule's fit on the 6-bit bins is then improved by
# split/merge moves (see quantize.swaps.split_merge_search):
# _HIGH_K_FINE_SPLITS tries up to _FINE_SWAP_MAX_K clusters, after the swaps
# there, and _HIGH_K_WIDE_SPLITS above, each try making one move per
# _SPLIT_BATCH_CLUSTERS clusters at once.  On the tuning set, seeds 0-4,
# they took the mean gap to scikit-learn's best of 10 at k = 64 from -0.42%
# to -0.64% (the gradient render's misses, +0.94% and +0.85%, to +0.05%
# and 0.00%), and at k = 256 from -0.41% to -0.78% (elevation data from
# +0.85% to +0.07%).  Eight tries at k = 256 did a little better (-0.83%)
# for about twice the cost; eight tries of one move each, worse (-0.70%).
_HIGH_K_FINE_SPLITS = 8
_HIGH_K_WIDE_SPLITS = 4
_SPLIT_BATCH_CLUSTERS = 64


@dataclass(frozen=True)
class TableFit:
    """A clustering of a weighted color table.

    Attributes
    ----------
    centers : ndarray of float64, shape (k', d)
        Centers in the working space, ``k' <= n_clusters``.  ``k'`` is
        smaller only when the table has fewer rows than ``n_clusters`` or a
        center ends up with no row.
    labels : ndarray of intp, shape (m,)
        Index of the nearest center of each table row (ties to the lowest
        index).
    inertia : float
        Weighted SSE of the rows to ``centers[labels]``.
    n_iter : int
        Center updates done, seeding and refinement together.
    """

    centers: NDArray[np.float64]
    labels: NDArray[np.intp]
    inertia: float
    n_iter: int


def cluster_table(
    points: NDArray[np.float64],
    weights: NDArray[np.float64],
    keys: NDArray[np.uint32] | None,
    n_clusters: int,
    *,
    algorithm: Algorithm = "kmeans",
    n_init: int | Literal["auto"] = "auto",
    max_iter: int = 300,
    random_state: int | np.random.Generator | None = None,
    fixed_centers: NDArray[np.float64] | None = None,
    max_swap_tries: int | None = None,
) -> TableFit:
    """Cluster the distinct colors of an image weighted by their pixel counts.

    Parameters
    ----------
    points : ndarray of float64, shape (m, d)
        Distinct colors in the working space; any range.
    weights : ndarray of float64, shape (m,)
        Pixel count of each color, strictly positive.
    keys : ndarray of uint32, shape (m,), or None
        Packed sRGB key of each row (:func:`quantize.histogram.pack_rgb`),
        used to group colors into coarse bins.  ``None`` disables binning.
    n_clusters : int
        Number of centers wanted, >= 1.
    algorithm : {"kmeans", "minibatch"}, default "kmeans"
        "kmeans" seeds on coarse bins, then runs Lloyd's iterations until
        the SSE improves by less than 1e-4 relatively, on the 6-bit bins
        followed by one exact Lloyd step on every row (plain up to
        ``2**18`` rows, bin-accelerated above), or, for 24 clusters or
        more on up to ``2**18`` rows, on the exact table.  Up to 32
        clusters the best seeding run is improved by center swaps, and
        up to 64 (below 33 only on coarse seed bins or few 6-bit bins)
        the fit on the 6-bit bins too, and a fit converged on the exact
        table of up to ``2**22`` rows x clusters; from 9 to 23 clusters,
        tables of fewer than ``2**18`` rows get swaps on the 6-bit bins
        (and split/merge moves where those are few),
        converge on every row and get swaps there up to ``2**20`` rows x
        clusters; above 32 clusters, uncapped fits of such tables get
        split/merge moves on the 6-bit bins, converge further on every row
        and get swaps there up to ``2**24`` rows x clusters, at any k;
        tables too small to bin get swaps up to 64 clusters (up to 256
        below 8192 rows).
        "minibatch" fits mini-batches sampled in proportion to the
        weights, then finishes with one exact Lloyd step.
    n_init : int or "auto", default "auto"
        Seeding runs, the best by inertia is kept.  "auto": ``64 // k``
        clamped to 1..8 for "kmeans" (restarts run on the coarse bins, and
        the spread between local optima of photos shrinks as k grows), but
        1 from 24 to 32 clusters (swaps do better) and at least 2 above 32
        clusters; 3 for "minibatch".
    max_iter : int, default 300
        Cap on the center updates of each phase.
    random_state : None, int or numpy.random.Generator, default None
        The same int gives the same result on every run.
    fixed_centers : ndarray of float64, shape (f, d), optional
        Distinct centers that never move, ``f <= n_clusters``: they come
        first in ``centers``, unchanged (kept even when no row is nearest),
        and the other ``n_clusters - f`` are learned around them
        (:mod:`quantize.fixed`).
    max_swap_tries : int or None, default None
        Cap on the tries of each swap search (None: the schedule above; 0:
        no swap search, restarts only, and "auto" ``n_init`` as
        :func:`resolve_n_init` with ``swaps=False``), except on tables
        whose seed bins are coarse (dark, hazy, flat images), where the
        whole schedule runs: a good local optimum for less, where the best
        one is not the goal (the estimators of :mod:`quantize.kmeans`).
        Under a cap the seeding on few bins computes in float32, and the
        first assignment of the plain exact step compares float32 scores
        (its last one, which gives ``labels`` and ``inertia``, is exact).
        A cap also skips the fuller schedule of tables under ``2**18``
        rows at 9 to 23 clusters.  Ignored with ``fixed_centers``.

    Returns
    -------
    TableFit
        ``labels`` is the nearest-center assignment of ``centers`` and
        ``inertia`` their exact weighted SSE.  Each center is the exact
        weighted mean of its rows under the assignment *before* the last
        one (Lloyd's last step is always an assignment); the two differ only
        on the few boundary rows that the last assignment moved, none once
        the iterations reached a fixed point.  With fewer rows
        than ``n_clusters`` every row is its own center (no warning: a
        palette smaller than asked is a legitimate result for an image).

    Raises
    ------
    ValueError
        On inconsistent shapes, non-finite points, non-positive weights or
        invalid parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from quantize.histogram import color_table, pack_rgb
    >>> rng = np.random.default_rng(0)
    >>> pixels = rng.integers(0, 256, size=(5000, 3), dtype=np.uint8)
    >>> table = color_table(pack_rgb(pixels))
    >>> fit = cluster_table(table.colors / 255.0, table.counts.astype(float),
    ...                     table.keys, 8, random_state=0)
    >>> fit.centers.shape, fit.labels.shape == (table.n_colors,)
    ((8, 3), True)
    """
    fit = _cluster(
        points,
        weights,
        keys,
        n_clusters,
        algorithm,
        n_init,
        max_iter,
        random_state,
        assign=True,
        fixed=fixed_centers,
        max_swap_tries=max_swap_tries,
    )
    assert isinstance(fit, TableFit)
    return fit


def cluster_centers(
    points: NDArray[np.float64],
    weights: NDArray[np.float64],
    keys: NDArray[np.uint32] | None,
    n_clusters: int,
    *,
    algorithm: Algorithm = "kmeans",
    n_init: int | Literal["auto"] = "auto",
    max_iter: int = 300,
    random_state: int | np.random.Generator | None = None,
    fixed_centers: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], int]:
    """The centers :func:`cluster_table` finds, without its final assignment.

    For callers that reassign the rows anyway, to centers they change (the
    image pipeline rounds them to 8-bit colors first): it skips one pass
    over every row.  Parameters as for :func:`cluster_table`.

    Returns
    -------
    centers : ndarray of float64, shape (k', d)
        The centers ``cluster_table`` would return, except that a center
        left with no row by its last assignment is not dropped.
    n_iter : int
        Center updates done.
    """
    fit = _cluster(
        points,
        weights,
        keys,
        n_clusters,
        algorithm,
        n_init,
        max_iter,
        random_state,
        assign=False,
        fixed=fixed_centers,
    )
    return (fit.centers, fit.n_iter) if isinstance(fit, TableFit) else fit


def _cluster(
    points: NDArray[np.float64],
    weights: NDArray[np.float64],
    keys: NDArray[np.uint32] | None,
    n_clusters: int,
    algorithm: str,
    n_init: int | Literal["auto"],
    max_iter: int,
    random_state: int | np.random.Generator | None,
    *,
    assign: bool,
    fixed: NDArray[np.float64] | None = None,
    max_swap_tries: int | None = None,
) -> TableFit | tuple[NDArray[np.float64], int]:
    """Validate, then run the strategy.  A TableFit, or with ``assign=False``
    just (centers, n_iter) where labelling the rows would take one more pass."""
    x, w, k = _check_table(points, weights, keys, n_clusters)
    if algorithm not in ("kmeans", "minibatch"):
        raise ValueError(f"algorithm must be 'kmeans' or 'minibatch', got {algorithm!r}")
    swaps = max_swap_tries != 0 or fixed is not None
    runs = resolve_n_init(n_init, k, algorithm, swaps=swaps)
    max_iter = check_int(max_iter, "max_iter", 1)
    rng = check_random_state(random_state)
    if fixed is not None:
        return _fit_fixed(x, w, keys, k, fixed, algorithm, runs, max_iter, rng, assign)
    if x.shape[0] <= k:
        return _one_per_row(x)
    if algorithm == "minibatch":
        return _fit_minibatch(x, w, k, runs, max_iter, rng, assign)
    return _fit_kmeans(x, w, keys, k, runs, max_iter, rng, assign, max_swap_tries)


def resolve_n_init(
    n_init: int | Literal["auto"], n_clusters: int, algorithm: str = "kmeans", *, swaps: bool = True
) -> int:
    """The number of seeding runs ``n_init`` stands for: quantize's one rule,
    used by the command, :func:`cluster_table` and the estimators.

    An int is itself.  "auto" is, for "kmeans", ``64 // n_clusters``
    between 1 and 8 (local optima differ by several percent at small k,
    where runs are also cheapest), except 1 from 24 to 32 clusters (center
    swaps do better there) and at least 2 above 32 clusters; for
    "minibatch" it is 3.

    Parameters
    ----------
    n_init : int or "auto"
    n_clusters : int
    algorithm : {"kmeans", "minibatch"}, default "kmeans"
    swaps : bool, default True
        False for a fit that runs no swap search (around fixed centers,
        :mod:`quantize.fixed`): restarts then stand in for the swaps too, so
        24 to 32 clusters get ``64 // n_clusters`` runs like the others.

    Returns
    -------
    int
        At least 1.

    Examples
    --------
    >>> [resolve_n_init("auto", k) for k in (2, 16, 24, 64, 256)], resolve_n_init(5, 16)
    ([8, 4, 1, 2, 2], 5)
    """
    runs = check_n_init(n_init)
    if runs is not None:
        return runs
    if algorithm == "minibatch":
        return _MINIBATCH_N_INIT
    return _auto_n_init(check_int(n_clusters, "n_clusters", 1), swaps)


def _fit_fixed(
    x: NDArray[np.float64],
    w: NDArray[np.float64],
    keys: NDArray[np.uint32] | None,
    k: int,
    fixed: NDArray[np.float64],
    algorithm: str,
    runs: int | None,
    max_iter: int,
    rng: np.random.Generator,
    assign: bool,
) -> TableFit | tuple[NDArray[np.float64], int]:
    """Clustering around fixed centers (quantize.fixed, imported here: it builds on this module)."""
    from quantize import fixed as fixed_fit

    f = fixed_fit.check_fixed(fixed, x.shape[1], k)
    fit = fixed_fit.fit_table(
        x, w, keys, k, f, algorithm=algorithm, n_init=runs, max_iter=max_iter, rng=rng
    )
    if not assign:
        return fit.centers, fit.n_iter
    return TableFit(fit.centers, fit.labels, fit.inertia, fit.n_iter)


def _auto_n_init(n_clusters: int, swaps: bool = True) -> int:
    if swaps and _SWAP_MIN_K <= n_clusters <= _BINNED_REFINE_MAX_K:
        return 1  # swaps do better than restarts, for less
    floor = 1 if n_clusters <= _BINNED_REFINE_MAX_K else _RANKED_MIN_N_INIT
    return max(floor, min(_AUTO_MAX_N_INIT, _AUTO_RESTART_BUDGET // n_clusters))


def _check_table(
    points: NDArray[np.float64],
    weights: NDArray[np.float64],
    keys: NDArray[np.uint32] | None,
    n_clusters: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
    x = np.ascontiguousarray(points, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"points must have shape (m, d) with m, d >= 1, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("points contain NaN or infinity")
    w = np.ascontiguousarray(weights, dtype=np.float64)
    if w.shape != (x.shape[0],):
        raise ValueError(f"weights must have shape ({x.shape[0]},), got {w.shape}")
    if not (np.isfinite(w).all() and (w > 0).all()):
        raise ValueError("weights must be finite and strictly positive")
    if keys is not None and np.shape(keys) != (x.shape[0],):
        raise ValueError(f"keys must have shape ({x.shape[0]},), got {np.shape(keys)}")
    return x, w, check_int(n_clusters, "n_clusters", 1)


def _one_per_row(x: NDArray[np.float64]) -> TableFit:
    return TableFit(x.copy(), np.arange(x.shape[0], dtype=np.intp), 0.0, 0)


def _drop_unused(
    centers: NDArray[np.float64], labels: NDArray[np.intp], inertia: float, n_iter: int
) -> TableFit:
    """Remove centers that no row chose (rare) and renumber the labels."""
    used = np.bincount(labels, minlength=centers.shape[0]) > 0
    if not used.all():
        labels = (np.cumsum(used) - 1)[labels]
        centers = centers[used]
    return TableFit(centers, labels, inertia, n_iter)


def _exact_step(
    f: Filter, centers: NDArray[np.float64], n_iter: int, assign: bool
) -> TableFit | tuple[NDArray[np.float64], int]:
    """One exact Lloyd step on every row, ending with an assignment unless
    ``assign`` is False (then only the new centers and ``n_iter``)."""
    centers = exact_update(f, centers)
    if not assign:
        return centers, n_iter + 1
    last = filtered_assign(f, centers)
    return _drop_unused(centers, last.labels(f.bins.index), last.inertia, n_iter + 1)


def _last_step(
    x: NDArray[np.float64], w: NDArray[np.float64], centers: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The centers after one Lloyd step on every row of a large table whose
    labels are not wanted (`cluster_centers`): rows assigned on float32
    distances on the threads (`quantize.histogram.nearest_float32`), the
    means summed in float64.  At high k most bins straddle a boundary, so
    the bin filter of `_exact_step` saves little over comparing every row;
    a center that lost every row takes the exact step's reseeding."""
    labels = nearest_float32(x, centers)
    k, d = centers.shape
    totals = np.bincount(labels, weights=w, minlength=k)
    if not (totals > 0).all():
        return exact_means(x, w, centers)
    sums = np.empty((k, d))
    for j in range(d):
        sums[:, j] = np.bincount(labels, weights=w * x[:, j], minlength=k)
    return sums / totals[:, None]


# --------------------------------------------------------------------------
# Strategies.


def _fit_kmeans(
    x: NDArray[np.float64],
    w: NDArray[np.float64],
    keys: NDArray[np.uint32] | None,
    k: int,
    n_init: int,
    max_iter: int,
    rng: np.random.Generator,
    assign: bool = True,
    max_swap_tries: int | None = None,
) -> TableFit | tuple[NDArray[np.float64], int]:
    cap = max_swap_tries
    bins = None
    if keys is not None and x.shape[0] >= MIN_ROWS_TO_BIN:
        bins = make_bins(x, w, np.asarray(keys, dtype=np.uint32), k)
    exact_filter: Deferred[Filter] | None = None
    exact_prep: Deferred[Prepared] | None = None
    large = bins is not None and x.shape[0] >= _LARGE_TABLE
    if bins is not None and large and assign:
        # Depends only on the rows and bins: made on another thread while
        # the restarts run on this one.
        made = bins
        exact_filter = Deferred(lambda: Filter.of(x, w, made))
    elif bins is not None and not large and assign:
        # The rows prepared for the exact finish, the same way (under the
        # estimators' cap, with the float32 copy of lloyd_step_rounded).
        rounded = max_swap_tries is not None
        exact_prep = Deferred(lambda: _exact_prep(x, w, k, rounded))
    if bins is None:
        result = _fit_unbinned(x, w, k, n_init, max_iter, rng, cap)
        return _drop_unused(result.centers, result.labels, result.inertia, result.n_iter)
    seed_x, seed_w = seed_set(bins, k)
    if _coarse_seed_bins(seed_w, k):
        # Restarts alone fail on coarse seed bins: the whole schedule runs.
        cap = None
    if _seed_on_fine_bins(seed_w, k, x.shape[0]):
        seed_x, seed_w = bins.means, bins.totals
    # The 6-bit bins prepared on another thread while the restarts run.
    fine_ready = Deferred(functools.partial(prepare, bins.means, bins.totals))
    high_k = _thorough_high_k(x.shape[0], k, max_swap_tries)
    resume = None
    if k <= _BINNED_REFINE_MAX_K:
        if cap is None:
            seeded = _seed_runs(seed_x, seed_w, k, n_init, max_iter, rng)
            seeded = _swap_search(prepare(seed_x, seed_w), seeded, max_iter, rng, _SWAP_TRIES)
        else:
            seeded = _seed_capped(seed_x, seed_w, k, n_init, max_iter, rng, cap)
        fine_prep = fine_ready.result()
    else:
        # Ranked on the 6-bit bins: go on from where the winner stopped.
        fine_prep = fine_ready.result()
        rank_tol = _HIGH_K_RANK_TOL if high_k else SEED_TOL
        seeded = resume = _ranked_on_bins(
            seed_x, seed_w, fine_prep, k, n_init, max_iter, rng, rank_tol
        )
    fine = lloyd(fine_prep, seeded.centers, max_iter, TOL, resume)
    # Not under the caller's cap (the estimators): a good optimum for less.
    small = cap is None and x.shape[0] < _LARGE_TABLE and _CHEAP_FINE_SWAP_MIN_K <= k < _SWAP_MIN_K
    if cap != 0 and (small or _swaps_on_fine_bins(seed_w, k, bins.means.shape[0])):
        tries = _fine_swap_tries(k, small)
        fine = _swap_search(fine_prep, fine, max_iter, rng, _capped(tries, cap))
    if high_k:
        tries, batch = _fine_split_tries(k)
        fine = _split_merge_search(fine_prep, fine, max_iter, tries, batch)
    elif small and fine_prep.X.shape[0] * k < BOUNDS_MIN_WORK:
        fine = _split_merge_search(fine_prep, fine, max_iter, _SMALL_FINE_SPLITS)
    n_iter = seeded.n_iter + fine.n_iter
    if exact_filter is not None:
        return _exact_step(exact_filter.result(), fine.centers, n_iter, assign)
    if large:
        return _last_step(x, w, fine.centers), n_iter + 1
    if k >= _SWAP_MIN_K or small:
        exact = prepare(x, w) if exact_prep is None else exact_prep.result()
        refined = lloyd(exact, fine.centers, max_iter, _HIGH_K_EXACT_TOL if high_k else TOL)
        tries = _exact_swap_tries(x.shape[0], k, small, high_k)
        if cap != 0 and tries and small:
            refined = _swap_search(exact, refined, max_iter, rng, tries, fresh_picks=True)
        elif cap != 0 and tries:
            refined = _swap_search(exact, refined, max_iter, rng, _capped(tries, cap))
        n_iter += refined.n_iter
        return _drop_unused(refined.centers, refined.labels, refined.inertia, n_iter)
    # Plain passes: on a table this small, at these k, the bin filter of
    # _exact_step costs about as much as it saves.
    if not assign:
        return exact_means(x, w, fine.centers), n_iter + 1
    assert exact_prep is not None
    if cap is not None and EXACT_STEPS == 1:
        # The estimators: see lloyd_step_rounded.
        done = lloyd_step_rounded(exact_prep.result(), fine.centers)
    else:
        done = lloyd_plain(exact_prep.result(), fine.centers, EXACT_STEPS, 0.0)
    return _drop_unused(done.centers, done.labels, done.inertia, n_iter + done.n_iter)


def _exact_prep(x: NDArray[np.float64], w: NDArray[np.float64], k: int, rounded: bool) -> Prepared:
    """:func:`prepare` for the exact finish; with ``rounded``, also the
    float32 rows of :func:`lloyd_step_rounded`'s first pass (on the thread
    that prepares them, off the fit's critical path)."""
    prep = prepare(x, w, k)
    if rounded and EXACT_STEPS == 1:
        prep.xt_aug32  # noqa: B018  # made now: a cached property
    return prep


def _fit_unbinned(
    x: NDArray[np.float64],
    w: NDArray[np.float64],
    k: int,
    n_init: int,
    max_iter: int,
    rng: np.random.Generator,
    cap: int | None,
) -> LloydResult:
    """Restarts and swaps on every row of a table that is not binned: too
    small (fewer than ``MIN_ROWS_TO_BIN`` rows) or without keys."""
    tiny = x.shape[0] < MIN_ROWS_TO_BIN and k <= _TINY_TABLE_SWAP_MAX_K
    if tiny and cap is None:
        return _fit_tiny(x, w, k, n_init, max_iter, rng)
    result = best_of(x, w, k, "k-means++", n_init, max_iter, TOL, rng)
    if cap != 0 and (k <= _SMALL_SWAP_MAX_K or tiny):
        tries = _tiny_swap_tries(x.shape[0], k) if tiny else _SWAP_TRIES
        result = _swap_search(prepare(x, w), result, max_iter, rng, _capped(tries, cap))
    return result


def _fit_tiny(
    x: NDArray[np.float64],
    w: NDArray[np.float64],
    k: int,
    n_init: int,
    max_iter: int,
    rng: np.random.Generator,
) -> LloydResult:
    """The command's own fit of a table too small to bin: restarts, then
    swaps that never repeat a try (see ``_TINY_COMMAND_SWAP_WORK``)."""
    result = best_of(x, w, k, "k-means++", n_init, max_iter, TOL, rng)
    tries = _tiny_swap_tries(x.shape[0], k, _TINY_COMMAND_SWAP_WORK)
    return _swap_search(prepare(x, w), result, max_iter, rng, tries, fresh_picks=True)


def _tiny_swap_tries(n_rows: int, k: int, work: int = _TINY_SWAP_WORK) -> int:
    """Swap tries on a table too small to bin: as many as fit in ``work``
    rows x clusters (see ``_TINY_SWAP_WORK``)."""
    return max(_SWAP_TRIES, min(_TINY_SWAP_MAX_TRIES, work // (n_rows * k)))


def _thorough_high_k(n_rows: int, k: int, max_swap_tries: int | None) -> bool:
    """Whether a binned table gets the thorough schedule above
    ``_BINNED_REFINE_MAX_K`` clusters (see ``_HIGH_K_EXACT_TOL``): only the
    command's own fit (no cap on the swaps, unlike the estimators') of a
    table that converges on every row (fewer than ``_LARGE_TABLE``)."""
    return max_swap_tries is None and k > _BINNED_REFINE_MAX_K and n_rows < _LARGE_TABLE


def _exact_swap_tries(n_rows: int, k: int, small: bool, high_k: bool = False) -> int:
    """Swap tries on every row of a table that converged there (0: none)."""
    if high_k:
        return min(_HIGH_K_EXACT_SWAP_TRIES, _HIGH_K_EXACT_SWAP_WORK // (n_rows * k))
    if small:
        if n_rows * k > _SMALL_EXACT_SWAP_MAX_WORK:
            return 0
        scaled = _SMALL_EXACT_SWAP_WORK // (n_rows * k)
        return min(_SMALL_EXACT_SWAP_MAX_TRIES, max(_SMALL_EXACT_SWAP_TRIES, scaled))
    return _EXACT_SWAP_TRIES if k <= _FINE_SWAP_MAX_K and n_rows * k <= _EXACT_SWAP_MAX_WORK else 0


def _fine_split_tries(k: int) -> tuple[int, int]:
    """Split/merge tries on the 6-bit bins of the thorough schedule, and
    moves per try (see ``_HIGH_K_FINE_SPLITS``)."""
    tries = _HIGH_K_FINE_SPLITS if k <= _FINE_SWAP_MAX_K else _HIGH_K_WIDE_SPLITS
    return tries, max(1, k // _SPLIT_BATCH_CLUSTERS)


def _fine_swap_tries(k: int, small: bool) -> int:
    """Swap tries on the 6-bit bins (see ``_FINE_SWAP_TRIES``)."""
    if k > _BINNED_REFINE_MAX_K:
        return _RANKED_FINE_SWAP_TRIES
    return _SMALL_FINE_SWAP_TRIES if small else _FINE_SWAP_TRIES


def _capped(tries: int, cap: int | None) -> int:
    """Tries of a swap search under the caller's ``max_swap_tries``."""
    return tries if cap is None else min(tries, cap)


def _swaps_on_fine_bins(seed_w: NDArray[np.float64], k: int, n_fine: int) -> bool:
    """Whether the fit on the ``n_fine`` 6-bit bins is improved by swaps
    there too: always from 33 to ``_FINE_SWAP_MAX_K`` clusters (the seed
    bins are too coarse to judge swaps), and below when the seed bins are
    coarse for this table (see :func:`_coarse_seed_bins`) or, from
    ``_CHEAP_FINE_SWAP_MIN_K`` clusters, a try on the 6-bit bins is cheap
    (Lloyd's iterations there take plain passes)."""
    if k > _FINE_SWAP_MAX_K:
        return False
    if k > _BINNED_REFINE_MAX_K:
        return True
    if k >= _CHEAP_FINE_SWAP_MIN_K and n_fine * k < BOUNDS_MIN_WORK:
        return True
    return _coarse_seed_bins(seed_w, k)


def _seed_on_fine_bins(seed_w: NDArray[np.float64], k: int, n_rows: int) -> bool:
    """Whether to seed on the 6-bit bins instead of ``seed_w``'s: above
    ``_FINE_SWAP_MAX_K`` clusters no swaps correct what coarse seed bins
    (see :func:`_coarse_seed_bins`) misjudge, and on tables that converge on
    every row (fewer than ``_LARGE_TABLE``) seeding on the 6-bit bins costs
    about as much as the rest of the fit.  On the held-out corpus at
    k = 256 this took the astronomy photo from 7.1% above scikit-learn's
    best of 10 to 1.0%, the retina photo from 3.1% to 1.1% and the rocket
    from 2.1% to 0.0%."""
    return k > _FINE_SWAP_MAX_K and n_rows < _LARGE_TABLE and _coarse_seed_bins(seed_w, k)


def _coarse_seed_bins(seed_w: NDArray[np.float64], k: int) -> bool:
    """Whether the seed bins hold fewer than ``_COARSE_SEED_PER_CLUSTER``
    effective bins per cluster: the exponential of the entropy of their
    weights, which counts a bin holding most of the pixels once and a bin
    holding almost none as almost nothing.  Dark, hazy and flat images
    pile their pixels into a few seed bins, where swaps judged on those
    bins cannot tell apart centers that the exact objective separates."""
    return _effective_bins(seed_w) < _COARSE_SEED_PER_CLUSTER * k


def _effective_bins(weights: NDArray[np.float64]) -> float:
    """The exponential of the entropy of the bins' weights."""
    p = weights[weights > 0] / weights.sum()
    return float(np.exp(-(p @ np.log(p))))


def _seed_runs(
    seed_x: NDArray[np.float64],
    seed_w: NDArray[np.float64],
    k: int,
    n_init: int,
    max_iter: int,
    rng: np.random.Generator,
    one_at_a_time: bool = False,
) -> LloydResult:
    """Best of ``n_init`` k-means++ + Lloyd runs on the seed bins.

    The runs advance in lockstep (:mod:`quantize.restarts`) where each of
    their steps is mostly numpy overhead: several runs on few bins, which
    Lloyd's iterations would do in plain passes anyway; their seeding
    always, their iterations unless ``one_at_a_time`` (see
    :func:`quantize.restarts.best_of_batched`).
    """
    if seeds_in_lockstep(seed_x.shape[0], k, n_init):
        return restarts.best_of_batched(
            seed_x, seed_w, k, n_init, max_iter, SEED_TOL, rng, SEED_TRIALS, one_at_a_time
        )
    return best_of(seed_x, seed_w, k, "k-means++", n_init, max_iter, SEED_TOL, rng, SEED_TRIALS)


def _seed_capped(
    seed_x: NDArray[np.float64],
    seed_w: NDArray[np.float64],
    k: int,
    n_init: int,
    max_iter: int,
    rng: np.random.Generator,
    cap: int,
) -> LloydResult:
    """Restarts and swaps on the seed bins under the caller's cap (the
    estimators).  Where Lloyd's iterations on the seed bins take plain
    passes (few bins), both run in float32, their Lloyd's iterations one
    run at a time without the lockstep's setup
    (:class:`quantize.restarts.PlainRuns`, see also
    :func:`quantize.swaps.swap_search`): the seeding only needs to
    rank runs and find a basin; the refinement that follows, in float64,
    settles the centers and the exact objective.  On the held-out corpus
    (benchmarks/corpus.py) at k = 16 and 64, seeds 0-2, the estimator's
    inertia stayed that of float64 seeding."""
    low = plain_passes(seed_x.shape[0], k)
    if low:
        seed_x = seed_x.astype(np.float32)
    seeded = _seed_runs(seed_x, seed_w, k, n_init, max_iter, rng, one_at_a_time=low)
    if cap == 0:
        return seeded
    prep = prepare(seed_x, seed_w)
    tries = _capped(_SWAP_TRIES, cap)
    return _swap_search(prep, seeded, max_iter, rng, tries, lockstep=low)


def seeds_in_lockstep(n: int, k: int, n_init: int) -> bool:
    """Whether the seeding runs pay to be run in lockstep: several of them,
    on so few bins that Lloyd's iterations would take plain passes."""
    return n_init > 1 and plain_passes(n, k)


def _ranked_on_bins(
    seed_x: NDArray[np.float64],
    seed_w: NDArray[np.float64],
    fine_prep: Prepared,
    k: int,
    n_init: int,
    max_iter: int,
    rng: np.random.Generator,
    rank_tol: float = SEED_TOL,
) -> LloydResult:
    """Best of ``n_init`` runs seeded on the 5-bit bins, ranked on the 6-bit
    bins: at high k the 5-bit inertia no longer tells which run ends best,
    while the 6-bit one, after Lloyd's iterations there down to a relative
    improvement of ``rank_tol``, does.

    The result lives on the 6-bit bins; ``n_iter`` counts the winner's
    updates on both binnings.
    """
    if seeds_in_lockstep(seed_x.shape[0], k, n_init):
        seeds: list[restarts.Run | LloydResult] = list(
            restarts.seeded_runs(seed_x, seed_w, k, n_init, max_iter, SEED_TOL, rng, SEED_TRIALS)
        )
    else:
        seeds = [
            best_of(seed_x, seed_w, k, "k-means++", 1, max_iter, SEED_TOL, rng, SEED_TRIALS)
            for _ in range(n_init)
        ]
    # Each run on a thread of its own where there are cores for them.
    runs = restarts.lloyd_each(fine_prep, [s.centers for s in seeds], max_iter, rank_tol)
    best: LloydResult | None = None
    for seeded, run in zip(seeds, runs, strict=True):
        if best is None or run.inertia < best.inertia:
            best = run.after(seeded.n_iter)
    assert best is not None
    return best


def _fit_minibatch(
    x: NDArray[np.float64],
    w: NDArray[np.float64],
    k: int,
    n_init: int,
    max_iter: int,
    rng: np.random.Generator,
    assign: bool = True,
) -> TableFit | tuple[NDArray[np.float64], int]:
    centers, n_iter = minibatch_fit(
        x,
        w,
        k,
        batch_size=1024,
        max_iter=max_iter,
        max_no_improvement=10,
        n_init=n_init,
        rng=rng,
    )
    # Finish exactly: one Lloyd step on the whole table, ending with an assignment.
    if not assign:
        return exact_means(x, w, centers), n_iter + 1
    refined = lloyd(prepare(x, w), centers, 1, 0.0)
    return _drop_unused(refined.centers, refined.labels, refined.inertia, n_iter + 1)
