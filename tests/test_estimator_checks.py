"""scikit-learn's own conformance suite, and its meta-estimators, on our estimators.

The estimators implement scikit-learn's protocol by duck typing; scikit-learn
is only needed here.  A check that cannot apply is listed below by name with
the reason; every other check must pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn", minversion="1.6")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from quantize import KMeans, MiniBatchKMeans  # noqa: E402

# Checks that test a promise these estimators deliberately do not make.
_NOT_APPLICABLE = {
    "check_sample_weight_equivalence_on_dense_data": (
        "zero weights are refused (drop those samples instead), and k-means++ "
        "draws depend on the order of the rows: weights equal repetitions in the "
        "objective, tested in test_kmeans, not in the random seeding"
    ),
}


def _expected_failures(estimator: Any) -> dict[str, str]:
    return dict(_NOT_APPLICABLE)


@parametrize_with_checks([KMeans(), MiniBatchKMeans()], expected_failed_checks=_expected_failures)
def test_sklearn_conformance(estimator: Any, check: Any) -> None:
    check(estimator)


@pytest.mark.parametrize("estimator", [KMeans, MiniBatchKMeans])
def test_clone_keeps_params(estimator: type) -> None:
    model = estimator(5, random_state=3)
    copy = clone(model)
    assert copy is not model
    assert copy.get_params() == model.get_params()


def test_pipeline_and_grid_search() -> None:
    X, _ = make_blobs(n_samples=300, centers=4, random_state=0)
    pipe = Pipeline([("scale", StandardScaler()), ("km", KMeans(random_state=0))])
    search = GridSearchCV(pipe, {"km__n_clusters": [2, 4, 6]}, cv=3).fit(X)
    # Score is minus the inertia, so more clusters always win on held-out data.
    assert search.best_params_ == {"km__n_clusters": 6}
    assert search.best_estimator_.named_steps["km"].cluster_centers_.shape == (6, 2)
    assert pipe.fit_transform(X).shape == (300, 8)


def test_tags_ask_for_dense_numeric_input() -> None:
    from sklearn.utils import get_tags

    tags = get_tags(KMeans())
    assert tags.estimator_type == "clusterer"
    assert not tags.input_tags.sparse and not tags.target_tags.required


def test_zero_weight_not_accepted_as_documented() -> None:
    with pytest.raises(ValueError, match="strictly positive"):
        KMeans(2).fit(np.eye(3), sample_weight=[1.0, 0.0, 1.0])
