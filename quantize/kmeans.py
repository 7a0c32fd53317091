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
  without importing it, and pass its conformance checks.  Pixel-like data
  (at most 4 features, 8-bit values or many repeated rows) is clustered as
  the weighted table of its distinct rows on the image path's engine
  (:func:`quantize.cluster.cluster_table`); ``n_init="auto"`` is one rule
  for both (:func:`quantize.cluster.resolve_n_init`).
* The kernels shared with the image path live in :mod:`quantize._kernels`
  (distances, assignment, center updates, k-means++) and
  :mod:`quantize._lloyd` (Lloyd's iterations, best of several runs,
  mini-batch k-means); :mod:`quantize._validation` holds the checks shared
  with :mod:`quantize.cluster`.  This module keeps the validation of the
  public boundary and the estimators.
* Every random decision draws from one :class:`numpy.random.Generator`
  derived once from ``random_state``.  Nothing depends on the number of
  threads: row blocks have a fixed size and ties break towards the lowest
  index.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import sys
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

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


class ConvergenceWarning(UserWarning):
    """The data cannot support the requested clustering.

    Raised as a warning, for instance, when there are fewer distinct points
    than clusters: the distinct points are then returned as the centers.
    """


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit`` (or ``partial_fit``) was called."""


# --------------------------------------------------------------------------
# Validation, done once at the public boundary.


def _check_data(X: ArrayLike, name: str = "X") -> FloatArray:
    """Validate a data matrix: 2-D, non-empty, finite; float32 stays float32.

    The messages follow scikit-learn's ``check_array`` where its conformance
    checks look for them (complex data, sparse input, empty arrays).
    """
    if _is_sparse(X):
        raise TypeError(
            f"{name} is a sparse matrix: sparse input is not supported; densify it with X.toarray()"
        )
    arr = np.asarray(X)
    if arr.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} has dtype {arr.dtype}")
    if arr.dtype.kind == "O":
        # Numbers held as objects (e.g. a mixed table); anything else raises
        # float()'s own TypeError or ValueError.
        arr = arr.astype(np.float64)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features), got {arr.ndim}-D. "
            "Reshape your data: X.reshape(-1, 1) for a single feature, "
            "X.reshape(1, -1) for a single sample"
        )
    if arr.shape[0] == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    if arr.shape[1] == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required."
        )
    out: FloatArray
    if arr.dtype == np.float32:
        out = np.ascontiguousarray(arr)
    else:
        out = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return out


def _is_sparse(X: object) -> bool:
    """Whether X is a scipy.sparse matrix or array, without importing scipy."""
    return type(X).__module__.startswith("scipy.sparse") and hasattr(X, "toarray")


def _check_sample_weight(sample_weight: ArrayLike | None, n_samples: int) -> NDArray[np.float64]:
    """Validate weights: shape (n_samples,), finite and strictly positive."""
    if sample_weight is None:
        return np.ones(n_samples, dtype=np.float64)
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight must be numeric, got dtype {w.dtype}")
    w = np.ascontiguousarray(w, dtype=np.float64)
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},), got {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or infinity")
    if not (w > 0).all():
        raise ValueError(
            "sample_weight must be strictly positive; drop the samples with zero weight instead"
        )
    return w


def _check_tol(tol: object) -> float:
    if not isinstance(tol, numbers.Real) or isinstance(tol, bool | np.bool_):
        raise ValueError(f"tol must be a real number, got {tol!r}")
    if not (math.isfinite(float(tol)) and float(tol) >= 0):
        raise ValueError(f"tol must be finite and >= 0, got {tol}")
    return float(tol)


def _check_fitted(estimator: object) -> NDArray[np.floating[Any]]:
    centers: FloatArray | None = getattr(estimator, "cluster_centers_", None)
    if centers is None:
        raise _not_fitted_error()(
            f"this {type(estimator).__name__} is not fitted yet; call fit before using it"
        )
    return centers


@functools.cache
def _sklearn_not_fitted(base: type) -> type[NotFittedError]:
    return type("NotFittedError", (NotFittedError, base), {"__module__": __name__})


def _not_fitted_error() -> type[NotFittedError]:
    """:class:`NotFittedError`, which is also scikit-learn's when scikit-learn
    is loaded already (so ``except`` clauses and checks written for it work)
    without ever importing scikit-learn here."""
    exceptions = sys.modules.get("sklearn.exceptions")
    base = getattr(exceptions, "NotFittedError", None)
    return NotFittedError if base is None else _sklearn_not_fitted(base)


def _check_predict_data(X: ArrayLike, centers: FloatArray, estimator: object) -> FloatArray:
    arr = _check_data(X)
    if arr.shape[1] != centers.shape[1]:
        raise ValueError(
            f"X has {arr.shape[1]} features, but {type(estimator).__name__} is expecting "
            f"{centers.shape[1]} features as input"
        )
    return arr


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
    data = _check_data(X)
    c = _check_data(centers, "centers")
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
    arr = _check_data(np.asarray(init), "init").astype(np.float64)
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
    data = _check_data(X)
    k = check_int(n_clusters, "n_clusters", 1)
    w = _check_sample_weight(sample_weight, data.shape[0])
    rng = check_random_state(random_state)
    indices = kmeans_plusplus_indices(data, w, k, rng)
    if indices.size < k:
        _warn_few_distinct(indices.size, k)
    return data[indices], indices


# --------------------------------------------------------------------------
# One engine: low-dimensional data with many repeated rows (pixels) is
# clustered as a weighted table of its distinct rows, on the image path's
# coarse-to-fine strategy (quantize.cluster.cluster_table).

# The distinct-row path is tried on at most this many features (RGB, RGBA,
# gray + alpha ...) and at least this many rows: below it Lloyd's
# iterations on the rows cost less than building the table.
_TABLE_MAX_FEATURES = 4
_TABLE_MIN_ROWS = 1 << 13
# Off the 8-bit grid, the table must leave at most this fraction of the rows.
_TABLE_MAX_DISTINCT = 0.5
# ... and a probe of its first 8192 rows must repeat some (a sample holds
# fewer repeats than the whole, so this rejects only hopeless data).
_PROBE_MAX_DISTINCT = 0.95
# 8-bit levels: pixels given as integers 0..255 or as floats i / 255.
_GRID_SCALES = (255.0, 1.0)
_GRID_PROBE_ROWS = 256
_GRID_CHUNK = 1 << 15
# Rows of the 2**24-entry lookup that maps packed keys back to table rows.
_N_KEYS = 1 << 24


@dataclass(frozen=True)
class _RowTable:
    """The distinct rows of X, how many times each occurs, and where.

    ``keys`` group the rows into coarse bins for the coarse-to-fine path:
    packed 8-bit levels of up to three varying columns, ``r << 16 | g << 8 |
    b`` as for colors (None when more than three columns vary).
    """

    rows: FloatArray
    counts: NDArray[np.float64]
    inverse: NDArray[np.intp]
    keys: NDArray[np.uint32] | None

    def weights(self, w: NDArray[np.float64] | None) -> NDArray[np.float64]:
        """Per-row weight: the count, or the sum of the rows' sample weights."""
        if w is None:
            return self.counts
        return np.asarray(
            np.bincount(self.inverse, weights=w, minlength=self.rows.shape[0]), dtype=np.float64
        )


def _row_table(X: FloatArray, *, grid_only: bool = False) -> _RowTable | None:
    """The table of distinct rows when it is the faster way to cluster X:
    at most 4 features, 8192 rows or more, and either values on an 8-bit
    grid (pixels) or, unless ``grid_only``, at most half as many distinct
    rows as rows."""
    n, d = X.shape
    if d > _TABLE_MAX_FEATURES or n < _TABLE_MIN_ROWS:
        return None
    grid = _grid_levels(X)
    if grid is not None:
        return _grid_table(X, *grid)
    if grid_only or _all_distinct(X[:_TABLE_MIN_ROWS]):
        return None
    rows, inverse, counts = np.unique(X, axis=0, return_inverse=True, return_counts=True)
    if rows.shape[0] > _TABLE_MAX_DISTINCT * n:
        return None
    return _RowTable(rows, counts.astype(np.float64), inverse.reshape(-1), _range_keys(rows))


def _all_distinct(X: FloatArray) -> bool:
    """Whether the rows of a probe are (nearly) all distinct: then sorting
    every row to count the repeats would be wasted."""
    return bool(np.unique(X, axis=0).shape[0] > _PROBE_MAX_DISTINCT * X.shape[0])


def _grid_levels(X: FloatArray) -> tuple[NDArray[np.uint8], float] | None:
    """X's values as 8-bit levels, and the scale ``s``, when every value is
    exactly ``level / s`` (255: pixels / 255; 1: pixels as numbers)."""
    flat = X.reshape(-1)
    for scale in _GRID_SCALES:
        if _on_grid(flat[: _GRID_PROBE_ROWS * X.shape[1]], scale) is not None:
            levels = _on_grid(flat, scale)
            if levels is not None:
                return levels.reshape(X.shape), scale
    return None


def _on_grid(flat: FloatArray, scale: float) -> NDArray[np.uint8] | None:
    """The levels ``rint(flat * scale)`` when they divide back to ``flat``
    exactly (so equal levels <=> equal values), else None.  In chunks that
    stay in cache: five passes over the data otherwise cost more than the
    sort that counts the distinct rows."""
    s = flat.dtype.type(scale)
    levels = np.empty(flat.shape, dtype=np.uint8)
    size = min(flat.size, _GRID_CHUNK)
    q = np.empty(size, dtype=flat.dtype)
    back = np.empty(size, dtype=flat.dtype)
    for start in range(0, flat.size, _GRID_CHUNK):
        part = flat[start : start + _GRID_CHUNK]
        n = part.size
        np.multiply(part, s, out=q[:n])
        np.rint(q[:n], out=q[:n])
        # Values off 0..255 cast to some level that cannot divide back to them.
        with np.errstate(invalid="ignore"):
            lv = levels[start : start + n]
            np.copyto(lv, q[:n], casting="unsafe")
        np.divide(lv, s, out=back[:n], dtype=flat.dtype)
        if not np.array_equal(back[:n], part):
            return None
    return levels


def _pack_levels(levels: NDArray[np.uint8], columns: list[int]) -> NDArray[np.uint32]:
    """``c0 << 16 | c1 << 8 | c2`` of up to three columns (missing ones 0)."""
    keys = np.zeros(levels.shape[0], dtype=np.uint32)
    for j in columns:
        keys <<= np.uint32(8)
        keys |= levels[:, j]
    keys <<= np.uint32(8 * (3 - len(columns)))
    return keys


def _varying(levels: NDArray[np.uint8]) -> list[int]:
    """Columns that hold more than one level."""
    lo, hi = levels.min(axis=0), levels.max(axis=0)
    return [j for j in range(levels.shape[1]) if lo[j] != hi[j]]


def _grid_table(X: FloatArray, levels: NDArray[np.uint8], scale: float) -> _RowTable:
    """Distinct rows of 8-bit data by their packed levels (a radix sort or a
    histogram, as for an image's colors)."""
    from quantize.histogram import color_table

    # A constant column adds nothing to a key: drop it from RGBA-like data.
    varying = list(range(levels.shape[1])) if levels.shape[1] <= 3 else _varying(levels)
    if len(varying) <= 3:
        keys = _pack_levels(levels, varying)
        table = color_table(keys)
        if table.inverse is not None:
            inverse = table.inverse
        else:
            lookup = np.empty(_N_KEYS, dtype=np.int32)
            lookup[table.keys] = np.arange(table.n_colors, dtype=np.int32)
            inverse = lookup[keys].astype(np.intp)
        rows = _rows_of_keys(X, table.keys, varying, scale)
        return _RowTable(rows, table.counts.astype(np.float64), inverse, table.keys)
    packed = np.ascontiguousarray(levels).view(np.uint32).reshape(-1)
    _, first, inverse, counts = np.unique(
        packed, return_index=True, return_inverse=True, return_counts=True
    )
    return _RowTable(X[first], counts.astype(np.float64), inverse.reshape(-1), None)


def _rows_of_keys(
    X: FloatArray, keys: NDArray[np.uint32], varying: list[int], scale: float
) -> FloatArray:
    """The rows of X that packed to ``keys``, rebuilt from them: ``level /
    scale`` is exactly X's value (checked by :func:`_on_grid`), and the
    table is a few times shorter than X."""
    rows = np.empty((keys.shape[0], X.shape[1]), dtype=X.dtype)
    s = X.dtype.type(scale)
    for j in range(X.shape[1]):
        if j in varying:
            shift = np.uint32(16 - 8 * varying.index(j))
            np.divide((keys >> shift) & np.uint32(0xFF), s, out=rows[:, j], dtype=X.dtype)
        else:
            rows[:, j] = X[0, j]
    return rows


def _range_keys(rows: FloatArray) -> NDArray[np.uint32] | None:
    """Bin keys of rows off the 8-bit grid: each varying column cut into 256
    equal steps of its range (None when more than three columns vary)."""
    lo, hi = rows.min(axis=0), rows.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    levels = np.minimum((rows - lo) * (256.0 / span), 255).astype(np.uint8)
    varying = [j for j in range(rows.shape[1]) if hi[j] > lo[j]]
    return _pack_levels(levels, varying) if len(varying) <= 3 else None


def _fit_table_kmeans(
    table: _RowTable,
    w: NDArray[np.float64] | None,
    n_clusters: int,
    n_init: int,
    max_iter: int,
    rng: np.random.Generator,
) -> LloydResult:
    """The image path's coarse-to-fine k-means on the distinct rows; labels
    and inertia of every original row."""
    from quantize.cluster import cluster_table

    fit = cluster_table(
        table.rows.astype(np.float64),
        table.weights(w),
        table.keys,
        n_clusters,
        n_init=n_init,
        max_iter=max_iter,
        random_state=rng,
    )
    return LloydResult(fit.centers, fit.labels[table.inverse], fit.inertia, fit.n_iter)


# --------------------------------------------------------------------------
# scikit-learn's estimator protocol, without importing scikit-learn.


def _same_value(value: object, default: object) -> bool:
    """Whether a parameter still holds its default (for the repr)."""
    if value is default:
        return True
    if isinstance(value, np.ndarray) or isinstance(default, np.ndarray):
        return False
    both_float = isinstance(value, float) and isinstance(default, float)
    if both_float and math.isnan(value) and math.isnan(default):  # type: ignore[arg-type]
        return True
    try:
        return bool(type(value) is type(default) and value == default)
    except (TypeError, ValueError):
        return False


class _Params:
    """``get_params``, ``set_params``, the repr and the tags of a scikit-learn
    estimator: duck typing, as scikit-learn's developer guide allows, so that
    ``clone``, ``Pipeline`` and ``GridSearchCV`` work without scikit-learn
    being a dependency.  Parameters are the keyword arguments of
    ``__init__``, stored unchanged under the same names."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(
            p.name
            for p in signature.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        )

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Parameters of this estimator.

        Parameters
        ----------
        deep : bool, default True
            Also return the parameters of parameters that are estimators,
            as ``name__parameter``.

        Returns
        -------
        dict
        """
        out: dict[str, Any] = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{key}", v) for key, v in value.get_params().items())
            out[name] = value
        return out

    def set_params(self, **params: Any) -> Any:
        """Set parameters; validated when ``fit`` is called, as in scikit-learn.

        Parameters
        ----------
        **params
            ``name=value``, or ``name__parameter=value`` for a parameter of
            a nested estimator.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For a name that is not a parameter.
        """
        valid = self.get_params(deep=True)
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, sep, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {self}. "
                    f"Valid parameters are: {self._get_param_names()!r}."
                )
            if sep:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
                valid[name] = value
        for name, sub_params in nested.items():
            valid[name].set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        signature = inspect.signature(type(self).__init__)
        changed = []
        for name in self._get_param_names():
            value = getattr(self, name)
            if not _same_value(value, signature.parameters[name].default):
                changed.append(f"{name}={_short_repr(value)}")
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_tags__(self) -> Any:
        """Tags for scikit-learn (>= 1.6): a clusterer that is also a
        transformer, dense input only.

        Only scikit-learn calls this, so it imports scikit-learn here and
        nowhere else: the library never needs it at run time.
        """
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type="clusterer",
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(preserves_dtype=["float64", "float32"]),
            input_tags=InputTags(allow_nan=False, sparse=False),
        )


def _short_repr(value: object) -> str:
    if isinstance(value, np.ndarray):
        with np.printoptions(threshold=6, edgeitems=2, precision=4):
            return repr(value)
    return repr(value)


class _BaseKMeans(_Params):
    """Shared prediction methods; subclasses set ``cluster_centers_``."""

    cluster_centers_: FloatArray
    labels_: NDArray[np.intp]
    inertia_: float
    n_iter_: int
    n_features_in_: int
    feature_names_in_: NDArray[np.object_]

    def __sklearn_is_fitted__(self) -> bool:
        return getattr(self, "cluster_centers_", None) is not None

    def _validate_fit_data(self, X: ArrayLike, reset: bool = True) -> FloatArray:
        """Validate training data; record its width and column names."""
        data = _check_data(X)
        names = _feature_names(X)
        if reset:
            self.n_features_in_ = data.shape[1]
            if names is None:
                self.__dict__.pop("feature_names_in_", None)
            else:
                self.feature_names_in_ = names
        return data

    def _validate_predict_data(self, X: ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Fitted centers and validated data of the same width and column names."""
        centers = _check_fitted(self)
        self._check_feature_names(X)
        return _check_predict_data(X, centers, self), centers

    def _check_feature_names(self, X: ArrayLike) -> None:
        """scikit-learn's rules for column names (DataFrame input)."""
        fitted = getattr(self, "feature_names_in_", None)
        names = _feature_names(X)
        cls = type(self).__name__
        if fitted is None and names is not None:
            warnings.warn(
                f"X has feature names, but {cls} was fitted without feature names",
                UserWarning,
                stacklevel=3,
            )
        elif fitted is not None and names is None:
            warnings.warn(
                f"X does not have valid feature names, but {cls} was fitted with feature names",
                UserWarning,
                stacklevel=3,
            )
        elif fitted is not None and names is not None and not np.array_equal(fitted, names):
            raise ValueError(
                "The feature names should match those that were passed during fit.\n"
                f"Fitted with {list(fitted)}, got {list(names)}."
            )

    def predict(self, X: ArrayLike) -> NDArray[np.intp]:
        """Index of the nearest center for each sample.

        Pixels (8-bit values, see :class:`KMeans`) are mapped through
        their table of distinct rows, as the image path maps colors.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of intp, shape (n_samples,)
        """
        data, centers = self._validate_predict_data(X)
        table = _row_table(data, grid_only=True)
        if table is None:
            return assign_nearest(data, centers)[0]
        return assign_nearest(table.rows, centers)[0][table.inverse]

    def transform(self, X: ArrayLike) -> NDArray[np.floating[Any]]:
        """Euclidean distance from each sample to every center.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        distances : ndarray, shape (n_samples, n_clusters_found)
            In X's precision.
        """
        data, centers = self._validate_predict_data(X)
        table = _row_table(data, grid_only=True)
        if table is None:
            return _distances(data, centers)
        return _distances(table.rows, centers)[table.inverse]

    def fit(
        self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None
    ) -> _BaseKMeans:
        raise NotImplementedError

    def fit_predict(
        self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None
    ) -> NDArray[np.intp]:
        """Fit, then return ``labels_``.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : ignored
            For scikit-learn's API.
        sample_weight : array-like, shape (n_samples,), default None

        Returns
        -------
        labels : ndarray of intp, shape (n_samples,)
        """
        return self.fit(X, sample_weight=sample_weight).labels_

    def fit_transform(
        self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None
    ) -> NDArray[np.floating[Any]]:
        """Fit, then return the distances of X to the centers (:meth:`transform`).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like, shape (n_samples,), default None

        Returns
        -------
        distances : ndarray, shape (n_samples, n_clusters_found)
        """
        return self.fit(X, sample_weight=sample_weight).transform(X)

    def score(
        self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None
    ) -> float:
        """Opposite of the (weighted) inertia of X on the fitted centers,
        so that higher is better, as scikit-learn's model selection expects.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like, shape (n_samples,), default None

        Returns
        -------
        float
        """
        data, centers = self._validate_predict_data(X)
        w = _check_sample_weight(sample_weight, data.shape[0])
        return -float(w @ assign_nearest(data, centers)[1])

    def get_feature_names_out(self, input_features: object = None) -> NDArray[np.object_]:
        """Names of the columns of :meth:`transform`: ``kmeans0``, ``kmeans1`` ...

        Parameters
        ----------
        input_features : ignored
            For scikit-learn's API (the output columns are clusters).

        Returns
        -------
        ndarray of str objects, shape (n_clusters_found,)
        """
        centers = _check_fitted(self)
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(centers.shape[0])], dtype=object)


def _distances(X: FloatArray, centers: FloatArray) -> FloatArray:
    c = centers.astype(X.dtype)
    sq = row_norms(X)[:, None] - 2.0 * (X @ c.T) + row_norms(c)
    return np.sqrt(np.maximum(sq, 0, out=sq), out=sq)


def _feature_names(X: object) -> NDArray[np.object_] | None:
    """Column names of a DataFrame-like X when they are all strings."""
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, np.ndarray):
        return None
    names = np.asarray(list(columns), dtype=object)
    if names.size == 0 or not all(isinstance(name, str) for name in names):
        return None
    return names


class KMeans(_BaseKMeans):
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
    "k-means++" and ``tol`` is 1e-4.  The results mean the same:
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
        tol = _check_tol(self.tol)
        check_n_init(self.n_init)
        init = _resolve_init(self.init, k, data.shape[1])
        w = None if sample_weight is None else _check_sample_weight(sample_weight, data.shape[0])
        rng = check_random_state(self.random_state)
        n_init = _resolve_n_init(self.n_init, init, k)
        if self.fixed_centers is not None:
            from quantize.fixed import fit_points

            weights = np.ones(data.shape[0]) if w is None else w
            result = fit_points(
                data, weights, k, self.fixed_centers, init, n_init, max_iter, tol, rng
            )
            found = result.centers.shape[0]
        elif (table := _row_table(data) if _image_path_settings(init, tol) else None) is not None:
            result = _fit_table_kmeans(table, w, k, n_init, max_iter, rng)
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
    return best_of(X, w, k, init, n_init, max_iter, tol, rng)


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


class MiniBatchKMeans(_BaseKMeans):
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
        w = _check_sample_weight(sample_weight, data.shape[0])
        rng = check_random_state(self.random_state)
        table = _row_table(data)
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
        w = _check_sample_weight(sample_weight, data.shape[0])
        if first:
            self._rng = check_random_state(self.random_state)
            self._centers = np.empty((0, data.shape[1]))
            self._counts = np.empty(0)
            self.n_steps_ = 0
        else:
            self._check_feature_names(X)
            _check_predict_data(data, self._centers, self)
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
