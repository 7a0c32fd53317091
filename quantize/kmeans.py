"""Weighted k-means and mini-batch k-means in plain numpy.

This is the clustering core of quantize, usable on any numeric data, not only
pixels.  The estimators follow scikit-learn's conventions: ``__init__`` only
stores parameters, everything is validated when ``fit`` is called, and the
fitted state lives in attributes ending with an underscore.

Design notes
------------
* ``sample_weight`` is first-class: fitting distinct points with their counts
  as weights optimizes the same objective as fitting the points repeated.
  The image path relies on this (it clusters a table of distinct colors).
* Squared distances use ``||x||^2 - 2 x.c + ||c||^2`` on row blocks small
  enough to stay in cache, in the input's precision (float32 input is
  computed in float32), clamped at zero.  Center updates always accumulate
  weighted sums in float64.
* Lloyd's iterations stop when the weighted SSE improves by less than
  ``tol`` relative to its previous value.  Unlike a summed center
  displacement, this cannot be fooled by centers moving in opposite
  directions.  The SSE comes free from per-cluster sufficient statistics
  (weight, weighted sums, weighted squared norms) of data shifted to its
  mean, which also keeps the distance expansion accurate far from the origin.
* On larger data, per-row bounds in the spirit of Hamerly (2010) let the
  late iterations revisit only the rows near a Voronoi boundary; the
  result is the same as with full passes.
* Empty clusters are reseeded with the rows farthest from their centers
  (ties by row index), never with a copy of a center.
* The estimators follow scikit-learn's protocol by duck typing
  (``get_params``/``set_params``, repr, tags, ``fit(X, y, sample_weight)``)
  without importing it, and pass its conformance checks; that protocol,
  their shared prediction methods and the validation of the public boundary
  live in :mod:`quantize._estimator_base`.  Pixel-like data (at most 4
  features, 8-bit values or many repeated rows) is clustered as the weighted
  table of its distinct rows (:mod:`quantize._distinct_rows`) on the image
  path's engine (:func:`quantize.cluster.cluster_table`); ``n_init="auto"``
  is one rule for both (:func:`quantize.cluster.resolve_n_init`).
* The kernels shared with the image path live in :mod:`quantize._kernels`
  (distances, assignment, center updates, k-means++) and
  :mod:`quantize._lloyd` (Lloyd's iterations, best of several runs,
  mini-batch k-means); :mod:`quantize._validation` holds the checks shared
  with :mod:`quantize.cluster`.  This module keeps the two estimators and
  the public functions beside them.
* Every random decision draws from one :class:`numpy.random.Generator`
  derived once from ``random_state``.  Nothing depends on the number of
  threads: row blocks have a fixed size and ties break towards the lowest
  index.
"""

from __future__ import annotations

import math
import warnings
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quantize._distinct_rows import fit_table_kmeans, row_table
from quantize._estimator_base import (
    BaseKMeans,
    ConvergenceWarning,
    NotFittedError,
    check_data,
    check_predict_data,
    check_sample_weight,
    check_tol,
)
from quantize._kernels import FloatArray, assign_nearest, kmeans_plusplus_indices, row_norms
from quantize._lloyd import LloydResult, best_of, lloyd, minibatch_run, minibatch_step, prepare
from quantize._validation import RandomStateLike, check_int, check_n_init, check_random_state

__all__ = [
    "ConvergenceWarning",
    "KMeans",
    "MiniBatchKMeans",
    "NotFittedError",
    "check_random_state",
    "kmeans_plusplus",
    "nearest_center",
]

# Restarts run in lockstep only while their distances fit in this many
# floats (quantize.restarts holds them for all runs at once).
_LOCKSTEP_MAX_WORK = 1 << 23


def nearest_center(X: ArrayLike, centers: ArrayLike) -> NDArray[np.intp]:
    """Index of the nearest center (Euclidean) for every row of ``X``.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
    centers : array-like, shape (n_centers, n_features)

    Returns
    -------
    labels : ndarray of intp, shape (n_samples,)
        Ties go to the lowest center index.

    Examples
    --------
    >>> nearest_center([[0.0], [0.9], [2.0]], [[0.0], [1.0]]).tolist()
    [0, 1, 1]
    """
    data = check_data(X)
    c = check_data(centers, "centers")
    if c.shape[1] != data.shape[1]:
        raise ValueError(f"centers have {c.shape[1]} features but X has {data.shape[1]}")
    return assign_nearest(data, c)[0]


def _warn_few_distinct(found: int, n_clusters: int) -> None:
    warnings.warn(
        f"only {found} distinct points for n_clusters={n_clusters}; "
        f"returning the {found} distinct points as centers",
        ConvergenceWarning,
        stacklevel=3,
    )


def _resolve_init(init: object, n_clusters: int, n_features: int) -> str | NDArray[np.float64]:
    if isinstance(init, str):
        if init not in ("k-means++", "random"):
            raise ValueError(f"init must be 'k-means++', 'random' or an array, got {init!r}")
        return init
    arr = check_data(np.asarray(init), "init").astype(np.float64)
    if arr.shape != (n_clusters, n_features):
        raise ValueError(
            f"init array must have shape (n_clusters, n_features) = "
            f"({n_clusters}, {n_features}), got {arr.shape}"
        )
    return arr


# --------------------------------------------------------------------------
# Public API.


def kmeans_plusplus(
    X: ArrayLike,
    n_clusters: int,
    *,
    sample_weight: ArrayLike | None = None,
    random_state: RandomStateLike = None,
) -> tuple[FloatArray, NDArray[np.intp]]:
    """Choose initial centers with greedy, weighted k-means++.

    Each new center is the best (lowest resulting potential) of
    ``2 + int(ln(n_clusters))`` candidates drawn with probability
    proportional to ``sample_weight * D(x)^2``, where ``D(x)`` is the
    distance to the nearest center chosen so far.

    Parameters
    ----------
    X : array-like, shape (n_samples, n_features)
        Data; float32 stays float32, anything else becomes float64.
    n_clusters : int
        Number of centers wanted, >= 1.
    sample_weight : array-like, shape (n_samples,), default None
        Strictly positive weights; ``None`` means all ones.
    random_state : None, int or numpy.random.Generator, default None
        Seed of the candidate draws.

    Returns
    -------
    centers : ndarray, shape (k', n_features)
        Rows of X, ``k' = min(n_clusters, number of distinct rows)``; never
        two equal rows.  X's dtype.
    indices : ndarray of intp, shape (k',)
        Position of each center in X.

    Warns
    -----
    ConvergenceWarning
        When X has fewer distinct rows than ``n_clusters``.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]])
    >>> centers, indices = kmeans_plusplus(X, 2, random_state=0)
    >>> sorted(centers[:, 0].tolist())
    [0.0, 10.0]
    """
    data = check_data(X)
    k = check_int(n_clusters, "n_clusters", 1)
    w = check_sample_weight(sample_weight, data.shape[0])
    rng = check_random_state(random_state)
    indices = kmeans_plusplus_indices(data, w, k, rng)
    if indices.size < k:
        _warn_few_distinct(indices.size, k)
    return data[indices], indices


# --------------------------------------------------------------------------


class KMeans(BaseKMeans):
    """Weighted k-means (Lloyd's algorithm) with greedy k-means++ seeding.

    Parameters
    ----------
    n_clusters : int, default 8
        Number of clusters k.  With fewer distinct samples than k, the
        distinct samples are returned as centers with a
        :class:`ConvergenceWarning`.
    init : {"k-means++", "random"} or array-like of shape (k, n_features), \
default "k-means++"
        Seeding: greedy weighted k-means++, k distinct samples drawn with
        probability proportional to their weight, or given starting centers.
    n_init : int or "auto", default "auto"
        Number of seeded runs; the one with the lowest inertia is kept.
        "auto" is quantize's one rule, shared with the command
        (:func:`quantize.cluster.resolve_n_init`): ``64 // n_clusters``
        runs between 1 and 8, but 1 from 24 to 32 clusters and at least 2
        above 32; 1 for an array ``init``.  Unlike scikit-learn's "auto"
        (one k-means++ run), on purpose: small k is where one run is a
        gamble (on scikit-learn's digits one greedy k-means++ run maps to
        the true digits with accuracy below 0.78 four times in ten).
    max_iter : int, default 300
        Maximum number of center updates per run.
    tol : float, default 1e-4
        Stop when an update lowers the weighted SSE by at most ``tol`` times
        its previous value.  ``0`` runs until the assignment stops changing.
        scikit-learn's ``tol`` bounds the centers' movement instead; the
        same number is a similar stopping point on most data.
    random_state : None, int or numpy.random.Generator, default None
        Seed of the initializations; the same int gives the same result on
        every run and with any number of threads.
    fixed_centers : array-like of shape (f, n_features), default None
        Distinct centers that never move, ``f <= n_clusters``; they count
        toward ``n_clusters`` and come first in ``cluster_centers_``,
        unchanged.  The other centers are learned around them: k-means++
        treats them as already chosen and Lloyd's update moves only the
        learned ones (:mod:`quantize.fixed`).  Needs ``init="k-means++"``.

    Notes
    -----
    **One engine.**  Data with at most 4 features and at least 8192 rows
    whose values lie on an 8-bit grid (pixels: integers 0..255, or such
    integers divided by 255) or that has at most half as many distinct rows
    as rows is clustered like an image by the command: as the weighted
    table of its distinct rows, seeded on coarse bins and refined to an
    exact finish (:func:`quantize.cluster.cluster_table`), when ``init`` is
    "k-means++" and ``tol`` is 1e-4, but with shorter swap searches than
    the command's (a few tries each; the full schedule on dark or flat
    data) and a seeding computed in float32: the command aims at the best
    of many runs, the estimator at a better optimum than one scikit-learn
    run in a fraction of its time, so
    its result can differ from the command's palette.  The results mean
    the same:
    ``labels_`` covers every row, ``inertia_`` is the weighted SSE of every
    row.  Other data takes Lloyd's iterations on the rows themselves.
    :meth:`predict` and :meth:`transform` map 8-bit data through its
    distinct rows too.

    Unlike scikit-learn, ``sample_weight`` must be strictly positive (drop
    zero-weight samples instead), and fewer distinct samples than
    ``n_clusters`` give fewer centers with a warning instead of an error.

    Attributes
    ----------
    cluster_centers_ : ndarray, shape (k', n_features)
        Centers in X's dtype, ``k' <= n_clusters`` (smaller only when X has
        fewer distinct samples), the ``fixed_centers`` first.  ``labels_`` is their nearest-center
        assignment.
    labels_ : ndarray of intp, shape (n_samples,)
    inertia_ : float
        Weighted sum of squared distances of the samples to their centers.
    n_iter_ : int
        Center updates done by the best run (on the distinct-row path:
        its seeding and refinement together, as in the image report).
    n_features_in_ : int
    feature_names_in_ : ndarray of str objects, shape (n_features,)
        Only when X had string column names (a DataFrame).

    See Also
    --------
    MiniBatchKMeans : Faster on very large data, slightly worse inertia.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1.0, 2.0], [1.0, 4.0], [1.0, 0.0],
    ...               [10.0, 2.0], [10.0, 4.0], [10.0, 0.0]])
    >>> km = KMeans(n_clusters=2, random_state=0).fit(X)
    >>> sorted(km.cluster_centers_.tolist())
    [[1.0, 2.0], [10.0, 2.0]]
    >>> km.predict([[0.0, 0.0], [12.0, 3.0]]).tolist() == km.predict(X[[0, 3]]).tolist()
    True
    """

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        init: str | ArrayLike = "k-means++",
        n_init: int | Literal["auto"] = "auto",
        max_iter: int = 300,
        tol: float = 1e-4,
        random_state: RandomStateLike = None,
        fixed_centers: ArrayLike | None = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.fixed_centers = fixed_centers

    def fit(self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None) -> KMeans:
        """Compute the clustering.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Finite numbers; float32 is computed in float32, anything else in
            float64.  Sparse input is refused.
        y : ignored
            For scikit-learn's API.
        sample_weight : array-like, shape (n_samples,), default None
            Strictly positive weights; fitting distinct rows with their
            counts equals fitting the rows repeated.

        Returns
        -------
        self : KMeans

        Raises
        ------
        ValueError
            On invalid data, weights or parameters.
        """
        data = self._validate_fit_data(X)
        k = check_int(self.n_clusters, "n_clusters", 1)
        max_iter = check_int(self.max_iter, "max_iter", 1)
        tol = check_tol(self.tol)
        check_n_init(self.n_init)
        init = _resolve_init(self.init, k, data.shape[1])
        w = None if sample_weight is None else check_sample_weight(sample_weight, data.shape[0])
        rng = check_random_state(self.random_state)
        n_init = _resolve_n_init(self.n_init, init, k)
        if self.fixed_centers is not None:
            from quantize.fixed import fit_points

            weights = np.ones(data.shape[0]) if w is None else w
            result = fit_points(
                data, weights, k, self.fixed_centers, init, n_init, max_iter, tol, rng
            )
            found = result.centers.shape[0]
        elif (table := row_table(data) if _image_path_settings(init, tol) else None) is not None:
            result = fit_table_kmeans(table, w, k, n_init, max_iter, rng)
            found = min(k, table.rows.shape[0])
        else:
            weights = np.ones(data.shape[0]) if w is None else w
            result = _general_runs(data, weights, k, init, n_init, max_iter, tol, rng)
            found = result.centers.shape[0]
        if found < k:
            _warn_few_distinct(found, k)
        self.cluster_centers_ = result.centers.astype(data.dtype)
        self.labels_ = result.labels
        self.inertia_ = result.inertia
        self.n_iter_ = result.n_iter
        return self


def _general_runs(
    X: FloatArray,
    w: NDArray[np.float64],
    k: int,
    init: str | NDArray[np.float64],
    n_init: int,
    max_iter: int,
    tol: float,
    rng: np.random.Generator,
) -> LloydResult:
    """Best of ``n_init`` runs on the rows: several k-means++ runs on small
    data advance in lockstep (:mod:`quantize.restarts`, the same runs as one
    after the other, for less numpy overhead), as the image path's seeding."""
    from quantize import cluster, restarts

    lockstep = (
        cluster.seeds_in_lockstep(X.shape[0], k, n_init)
        and X.shape[0] * k * n_init <= _LOCKSTEP_MAX_WORK
        and isinstance(init, str)
        and init == "k-means++"
        and X.dtype == np.float64
    )
    if lockstep:
        trials = 2 + int(math.log(k))
        x64 = np.asarray(X, dtype=np.float64)
        return restarts.best_of_batched(x64, w, k, n_init, max_iter, tol, rng, trials)
    return best_of(X, w, k, init, n_init, max_iter, tol, rng, dense=True)


def _image_path_settings(init: str | NDArray[np.float64], tol: float) -> bool:
    """Whether the image path can honor these settings (its seeding and tol)."""
    from quantize.cluster import TOL

    return isinstance(init, str) and init == "k-means++" and tol == TOL


def _resolve_n_init(n_init: object, init: str | NDArray[np.float64], k: int) -> int:
    """Runs to make: the shared rule, but one for explicit initial centers."""
    if isinstance(init, np.ndarray):
        if n_init not in ("auto", 1):
            warnings.warn(
                f"n_init={n_init} has no effect with explicit initial centers; running once",
                UserWarning,
                stacklevel=3,
            )
        return 1
    from quantize.cluster import resolve_n_init

    return resolve_n_init(n_init, k)  # type: ignore[arg-type]


class MiniBatchKMeans(BaseKMeans):
    """Weighted mini-batch k-means (Sculley 2010) with streaming ``partial_fit``.

    ``fit`` seeds with the best of ``n_init`` k-means++ + Lloyd runs on a
    sample of ``max(3 * batch_size, 3 * n_clusters)`` rows, then updates the
    centers on batches drawn with probability proportional to
    ``sample_weight``: each center is the running mean of everything ever
    assigned to it (learning rate = batch weight / accumulated weight).

    Parameters
    ----------
    n_clusters : int, default 8
    batch_size : int, default 1024
        Rows per mini-batch.
    max_iter : int, default 100
        Maximum number of passes over the data (in batches of rows).
    max_no_improvement : int or None, default 10
        Stop after this many batches without improvement of the smoothed
        batch inertia; ``None`` always runs ``max_iter`` passes.
    n_init : int or "auto", default "auto"
        Seeding runs on the sample, the best by inertia is kept.  "auto"
        is 3 (:func:`quantize.cluster.resolve_n_init`, shared with the
        command's ``--algorithm minibatch``), cheap since the sample is
        small; scikit-learn's "auto" is 1 run, ours differs on purpose.
    random_state : None, int or numpy.random.Generator, default None
        Seed of the sampling and seeding.  ``partial_fit`` draws it once, on
        its first call, and keeps the generator for the next calls.

    Attributes
    ----------
    cluster_centers_ : ndarray, shape (k', n_features)
        In the dtype of the last data seen; ``k' < n_clusters`` only while
        fewer distinct points than clusters were seen.
    labels_ : ndarray of intp, shape (n_samples,)
        Set by ``fit``: nearest center of every sample.
    inertia_ : float
        Set by ``fit``: weighted SSE of all samples to their nearest center.
    n_iter_ : int
        Passes over the data done by ``fit``.
    n_steps_ : int
        Mini-batch updates done so far (``fit`` and ``partial_fit``).
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 0.1, (500, 2)), rng.normal(5, 0.1, (500, 2))])
    >>> mbk = MiniBatchKMeans(n_clusters=2, batch_size=100, random_state=0).fit(X)
    >>> sorted(np.round(mbk.cluster_centers_[:, 0]).astype(int).tolist())
    [0, 5]

    Streaming, one chunk at a time:

    >>> stream = MiniBatchKMeans(n_clusters=2, random_state=0)
    >>> for chunk in np.array_split(rng.permutation(X), 5):
    ...     stream = stream.partial_fit(chunk)
    >>> sorted(np.round(stream.cluster_centers_[:, 0]).astype(int).tolist())
    [0, 5]
    """

    n_steps_: int

    def __init__(
        self,
        n_clusters: int = 8,
        *,
        batch_size: int = 1024,
        max_iter: int = 100,
        max_no_improvement: int | None = 10,
        n_init: int | Literal["auto"] = "auto",
        random_state: RandomStateLike = None,
    ) -> None:
        self.n_clusters = n_clusters
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.max_no_improvement = max_no_improvement
        self.n_init = n_init
        self.random_state = random_state

    def _check_params(self) -> tuple[int, int, int | None, int]:
        from quantize.cluster import resolve_n_init

        k = check_int(self.n_clusters, "n_clusters", 1)
        batch_size = check_int(self.batch_size, "batch_size", 1)
        patience = (
            None
            if self.max_no_improvement is None
            else check_int(self.max_no_improvement, "max_no_improvement", 0)
        )
        n_init = resolve_n_init(self.n_init, k, "minibatch")
        return k, batch_size, patience, n_init

    def fit(
        self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None
    ) -> MiniBatchKMeans:
        """Compute the clustering with mini-batches.

        Pixel-like data (see :class:`KMeans`) is clustered as the command's
        ``--algorithm minibatch`` does: mini-batches drawn from its weighted
        table of distinct rows, then one exact Lloyd step on the table.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : ignored
            For scikit-learn's API.
        sample_weight : array-like, shape (n_samples,), default None
            Strictly positive; batches are drawn in proportion to it.

        Returns
        -------
        self : MiniBatchKMeans
        """
        data = self._validate_fit_data(X)
        k, batch_size, patience, n_init = self._check_params()
        max_iter = check_int(self.max_iter, "max_iter", 1)
        w = check_sample_weight(sample_weight, data.shape[0])
        rng = check_random_state(self.random_state)
        table = row_table(data)
        points = data if table is None else table.rows
        weights = w if table is None else table.weights(w if sample_weight is not None else None)
        result = minibatch_run(points, weights, k, batch_size, max_iter, patience, n_init, rng)
        centers = result.centers
        if centers.shape[0] < k:
            _warn_few_distinct(centers.shape[0], k)
        self._rng = rng
        self._counts = result.counts
        if table is None:
            self.cluster_centers_ = centers.astype(data.dtype)
            self.labels_, sq = assign_nearest(data, self.cluster_centers_)
            self.inertia_ = float(w @ sq)
            self.n_iter_ = result.n_iter
        else:
            # One exact Lloyd step on the table, as the image path finishes.
            done = lloyd(prepare(points, weights), centers, 1, 0.0)
            centers = done.centers
            self.cluster_centers_ = centers.astype(data.dtype)
            self.labels_ = done.labels[table.inverse]
            self.inertia_ = done.inertia
            self.n_iter_ = result.n_iter + done.n_iter
        self._centers = centers
        self.n_steps_ = result.n_steps
        return self

    def partial_fit(
        self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None
    ) -> MiniBatchKMeans:
        """Update the centers with one mini-batch (the whole of ``X``).

        The first call seeds the centers from ``X`` with k-means++; while
        fewer distinct points than ``n_clusters`` have been seen, later
        calls add centers from their batch.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like, shape (n_samples,), default None

        Returns
        -------
        self : MiniBatchKMeans
        """
        first = getattr(self, "_centers", None) is None
        data = self._validate_fit_data(X, reset=first)
        k, _, _, n_init = self._check_params()
        w = check_sample_weight(sample_weight, data.shape[0])
        if first:
            self._rng = check_random_state(self.random_state)
            self._centers = np.empty((0, data.shape[1]))
            self._counts = np.empty(0)
            self.n_steps_ = 0
        else:
            self._check_feature_names(X)
            check_predict_data(data, self._centers, self)
        self._grow(data, w, k, n_init)
        minibatch_step(data, w, row_norms(data), self._centers, self._counts)
        self.n_steps_ += 1
        self.cluster_centers_ = self._centers.astype(data.dtype)
        if self._centers.shape[0] < k:
            _warn_few_distinct(self._centers.shape[0], k)
        return self

    def _grow(self, X: FloatArray, w: NDArray[np.float64], k: int, n_init: int) -> None:
        """Seed the missing centers from this batch (all of them on the first call)."""
        missing = k - self._centers.shape[0]
        if missing <= 0:
            return
        if self._centers.shape[0] == 0:
            new = best_of(X, w, k, "k-means++", n_init, 0, 0.0, self._rng).centers
        else:
            chosen = kmeans_plusplus_indices(X, w, missing, self._rng, existing=self._centers)
            new = X[chosen].astype(np.float64)
        self._centers = np.concatenate([self._centers, new])
        self._counts = np.concatenate([self._counts, np.zeros(new.shape[0])])
