"""What the estimators of :mod:`quantize.kmeans` share, without scikit-learn.

* The validation of the public boundary (data, weights, ``tol``, fitted
  state, prediction data), with the messages scikit-learn's conformance
  checks look for.
* scikit-learn's estimator protocol by duck typing, as its developer guide
  allows: ``get_params``/``set_params``, the repr, the tags, column names
  of DataFrame input, so that ``clone``, ``Pipeline`` and ``GridSearchCV``
  work without scikit-learn being a dependency.
* :class:`BaseKMeans`, the prediction methods of both estimators
  (``predict``, ``transform``, ``score`` ...).

The exceptions are public as :class:`quantize.kmeans.ConvergenceWarning`
and :class:`quantize.kmeans.NotFittedError`, their home for users.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import sys
import warnings
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from quantize._distinct_rows import row_table
from quantize._kernels import FloatArray, assign_nearest, distances

__all__ = [
    "BaseKMeans",
    "ConvergenceWarning",
    "NotFittedError",
    "check_data",
    "check_predict_data",
    "check_sample_weight",
    "check_tol",
]


class ConvergenceWarning(UserWarning):
    """The data cannot support the requested clustering.

    Raised as a warning, for instance, when there are fewer distinct points
    than clusters: the distinct points are then returned as the centers.
    """

    __module__ = "quantize.kmeans"  # its public home


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before ``fit`` (or ``partial_fit``) was called."""

    __module__ = "quantize.kmeans"  # its public home


# --------------------------------------------------------------------------
# Validation, done once at the public boundary.


def check_data(X: ArrayLike, name: str = "X") -> FloatArray:
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


def check_sample_weight(sample_weight: ArrayLike | None, n_samples: int) -> NDArray[np.float64]:
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


def check_tol(tol: object) -> float:
    """Validate ``tol``: a finite real number >= 0, as a float."""
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
    return type("NotFittedError", (NotFittedError, base), {"__module__": NotFittedError.__module__})


def _not_fitted_error() -> type[NotFittedError]:
    """:class:`NotFittedError`, which is also scikit-learn's when scikit-learn
    is loaded already (so ``except`` clauses and checks written for it work)
    without ever importing scikit-learn here."""
    exceptions = sys.modules.get("sklearn.exceptions")
    base = getattr(exceptions, "NotFittedError", None)
    return NotFittedError if base is None else _sklearn_not_fitted(base)


def check_predict_data(X: ArrayLike, centers: FloatArray, estimator: object) -> FloatArray:
    """Validate data to map onto fitted ``centers``: as :func:`check_data`, same width."""
    arr = check_data(X)
    if arr.shape[1] != centers.shape[1]:
        raise ValueError(
            f"X has {arr.shape[1]} features, but {type(estimator).__name__} is expecting "
            f"{centers.shape[1]} features as input"
        )
    return arr


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


class BaseKMeans(_Params):
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
        data = check_data(X)
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
        return check_predict_data(X, centers, self), centers

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
        table = row_table(data, grid_only=True)
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
        table = row_table(data, grid_only=True)
        if table is None:
            return distances(data, centers)
        return distances(table.rows, centers)[table.inverse]

    def fit(
        self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None
    ) -> BaseKMeans:
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
        w = check_sample_weight(sample_weight, data.shape[0])
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


def _feature_names(X: object) -> NDArray[np.object_] | None:
    """Column names of a DataFrame-like X when they are all strings."""
    columns = getattr(X, "columns", None)
    if columns is None or isinstance(X, np.ndarray):
        return None
    names = np.asarray(list(columns), dtype=object)
    if names.size == 0 or not all(isinstance(name, str) for name in names):
        return None
    return names
