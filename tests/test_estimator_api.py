"""scikit-learn's estimator protocol, implemented without scikit-learn."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

from quantize import KMeans, MiniBatchKMeans
from quantize.kmeans import NotFittedError


def test_repr_shows_changed_params_only() -> None:
    assert repr(KMeans()) == "KMeans()"
    assert repr(KMeans(16, random_state=0)) == "KMeans(n_clusters=16, random_state=0)"
    assert repr(MiniBatchKMeans(batch_size=256)) == "MiniBatchKMeans(batch_size=256)"
    text = repr(KMeans(3, init=np.zeros((3, 100))))
    assert text.startswith("KMeans(init=array(") and "n_clusters=3" in text
    assert len(text) < 200


def test_get_and_set_params() -> None:
    model = KMeans(5)
    assert model.get_params() == {
        "fixed_centers": None,
        "init": "k-means++",
        "max_iter": 300,
        "n_clusters": 5,
        "n_init": "auto",
        "random_state": None,
        "tol": 1e-4,
    }
    assert model.set_params(n_clusters=7, tol=0.0) is model
    assert (model.n_clusters, model.tol) == (7, 0.0)
    with pytest.raises(ValueError, match="Invalid parameter 'colors'"):
        model.set_params(colors=3)
    # Values are checked by fit, as in scikit-learn, not by set_params.
    model.set_params(n_clusters=-1)
    with pytest.raises(ValueError, match="n_clusters"):
        model.fit(np.zeros((4, 2)))


def test_nested_params() -> None:
    class Holder(KMeans):
        def __init__(self, inner: Any = None, n_clusters: int = 8) -> None:
            self.inner = inner
            self.n_clusters = n_clusters

    holder = Holder(KMeans(3))
    assert holder.get_params()["inner__n_clusters"] == 3
    holder.set_params(inner__n_clusters=4)
    assert holder.inner.n_clusters == 4


class FrameLike:
    """Just enough of a DataFrame: named columns and an array (pandas may be absent)."""

    def __init__(self, values: Any, columns: list[str]) -> None:
        self.values = np.asarray(values, dtype=float)
        self.columns = columns

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        return self.values if dtype is None else self.values.astype(dtype)


def test_feature_names_follow_sklearn() -> None:
    X = np.random.default_rng(0).random((50, 2))
    model = KMeans(2, random_state=0).fit(FrameLike(X, ["a", "b"]))
    assert model.feature_names_in_.tolist() == ["a", "b"]
    model.predict(FrameLike(X, ["a", "b"]))
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(FrameLike(X, ["b", "a"]))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        model.predict(X)
    model.fit(X)
    assert not hasattr(model, "feature_names_in_")
    with pytest.warns(UserWarning, match="fitted without feature names"):
        model.predict(FrameLike(X, ["a", "b"]))


def test_validation_messages() -> None:
    scipy_sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match="sparse input is not supported"):
        KMeans(2).fit(scipy_sparse.csr_matrix(np.eye(3)))
    with pytest.raises(ValueError, match="Complex data not supported"):
        KMeans(2).fit(np.ones((3, 2)) * 1j)
    with pytest.raises(ValueError, match="Reshape your data"):
        KMeans(2).fit(np.ones(3))
    with pytest.raises(ValueError, match=r"0 feature\(s\) \(shape=\(3, 0\)\)"):
        KMeans(2).fit(np.ones((3, 0)))
    model = KMeans(2, random_state=0).fit(np.eye(3))
    with pytest.raises(ValueError, match="X has 2 features, but KMeans is expecting 3"):
        model.predict(np.ones((1, 2)))
    assert KMeans(2, random_state=0).fit(np.eye(3).astype(object)).n_features_in_ == 3


def test_fit_takes_y_and_score_is_minus_inertia() -> None:
    X = np.random.default_rng(0).random((60, 3))
    model = KMeans(3, random_state=0).fit(X, np.arange(60))
    assert model.score(X) == pytest.approx(-model.inertia_)
    assert model.fit_transform(X).shape == (60, 3)
    assert model.get_feature_names_out().tolist() == ["kmeans0", "kmeans1", "kmeans2"]


def test_not_fitted_is_sklearns_error_once_sklearn_is_loaded() -> None:
    exceptions = pytest.importorskip("sklearn.exceptions")
    with pytest.raises(exceptions.NotFittedError):
        KMeans(2).predict(np.ones((1, 2)))
    with pytest.raises(NotFittedError):
        KMeans(2).predict(np.ones((1, 2)))


def test_protocol_never_imports_sklearn() -> None:
    script = textwrap.dedent(
        """
        import sys
        import numpy as np
        from quantize import KMeans, MiniBatchKMeans
        X = np.random.default_rng(0).random((100, 2))
        for model in (KMeans(3, random_state=0), MiniBatchKMeans(3, random_state=0)):
            repr(model.set_params(**model.get_params()).fit(X))
            model.score(X)
        try:
            KMeans(2).predict(X)
        except ValueError:
            pass
        print(sorted(m for m in sys.modules if m.split(".")[0] == "sklearn"))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
