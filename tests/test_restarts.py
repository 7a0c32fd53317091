"""Restarts of k-means run in lockstep (quantize.restarts) against the
sequential restarts of quantize.kmeans."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from numpy.typing import NDArray

from quantize import cluster, restarts
from quantize._kernels import draw, kmeans_plusplus_indices
from quantize._lloyd import best_of, lloyd_plain, prepare
from quantize.histogram import color_table, pack_rgb
from tests.helpers import outputs_by_blas_threads, sample_rgb

TRIALS = 8


@pytest.fixture(scope="module")
def seed_bins() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The 5-bit bin means of china.jpg that the image path seeds on at k = 16."""
    pixels = sample_rgb("china.jpg")
    table = color_table(pack_rgb(pixels).ravel())
    x, w = table.colors / 255.0, table.counts.astype(np.float64)
    bins = cluster.make_bins(x, w, table.keys, 16)
    assert bins is not None
    return cluster.seed_set(bins, 16)


def sequential(
    x: NDArray[np.float64], w: NDArray[np.float64], k: int, n_init: int, seed: int
) -> object:
    rng = np.random.default_rng(seed)
    return best_of(x, w, k, "k-means++", n_init, 300, 1e-3, rng, TRIALS)


def batched(
    x: NDArray[np.float64], w: NDArray[np.float64], k: int, n_init: int, seed: int
) -> object:
    rng = np.random.default_rng(seed)
    return restarts.best_of_batched(x, w, k, n_init, 300, 1e-3, rng, TRIALS)


@pytest.mark.parametrize(("k", "n_init"), [(8, 8), (16, 4)])
def test_same_seeds_as_sequential_runs(
    seed_bins: tuple[NDArray[np.float64], NDArray[np.float64]], k: int, n_init: int
) -> None:
    x, w = seed_bins
    for seed in range(3):
        rng, reference = np.random.default_rng(seed), np.random.default_rng(seed)
        seeds = restarts.kmeans_plusplus_runs(x, w, k, n_init, rng, TRIALS)
        expected = [
            kmeans_plusplus_indices(x, w, k, reference, n_local_trials=TRIALS)
            for _ in range(n_init)
        ]
        np.testing.assert_array_equal(seeds, expected)
        # The generator is left where the sequential runs leave it.
        assert rng.random() == reference.random()


@pytest.mark.parametrize(("k", "n_init"), [(8, 8), (16, 4)])
def test_quality_as_sequential_runs(
    seed_bins: tuple[NDArray[np.float64], NDArray[np.float64]], k: int, n_init: int
) -> None:
    x, w = seed_bins
    for seed in range(4):
        ours, theirs = batched(x, w, k, n_init, seed), sequential(x, w, k, n_init, seed)
        assert ours.inertia == pytest.approx(theirs.inertia, rel=1e-9)  # type: ignore[attr-defined]
        np.testing.assert_allclose(ours.centers, theirs.centers, atol=1e-9)  # type: ignore[attr-defined]
        assert ours.n_iter == theirs.n_iter  # type: ignore[attr-defined]


def test_deterministic_and_consistent(
    seed_bins: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> None:
    x, w = seed_bins
    first, again = batched(x, w, 8, 8, 3), batched(x, w, 8, 8, 3)
    for name in ("centers", "labels", "inertia", "n_iter"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    # Labels are the nearest-center assignment, inertia their weighted SSE.
    centers, labels = first.centers, first.labels  # type: ignore[attr-defined]
    sq = ((x[:, None, :] - centers[None]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(labels, np.argmin(sq, axis=1))
    assert first.inertia == pytest.approx(float(w @ sq.min(axis=1)), rel=1e-9)  # type: ignore[attr-defined]


def starts_and_data() -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Blobs, and two runs' starts: rows of the data, and centers one of
    which is far from every row (its cluster is empty from the start)."""
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(c, 0.1, (60, 2)) for c in ((0, 0), (3, 0), (0, 3), (3, 3))])
    w = rng.integers(1, 5, x.shape[0]).astype(np.float64)
    plain = x[[0, 70, 130, 190]]
    far = np.array([[0.0, 0.0], [3.0, 0.0], [50.0, 50.0], [3.0, 3.0]])
    return x, w, np.stack([plain, far])


@pytest.mark.parametrize("max_iter", [0, 1, 2, 300])
def test_each_run_as_plain_lloyd(max_iter: int) -> None:
    x, w, starts = starts_and_data()
    prep = prepare(x, w)
    runs = restarts.lloyd_runs(prep, starts, max_iter, 1e-4)
    assert len(runs) == starts.shape[0]
    for run, start in zip(runs, starts, strict=True):
        expected = lloyd_plain(prep, start, max_iter, 1e-4)
        np.testing.assert_allclose(run.centers + prep.shift, expected.centers, atol=1e-12)
        assert run.inertia == pytest.approx(expected.inertia, rel=1e-9)
        assert run.n_iter == expected.n_iter


def test_empty_cluster_reseeded_with_the_farthest_row() -> None:
    x, w, starts = starts_and_data()
    prep = prepare(x, w)
    far = restarts.lloyd_runs(prep, starts[1:2], 1, 0.0)[0]
    assert np.isfinite(far.centers).all()
    # The empty center took the row farthest from its center ...
    sq = ((x[:, None, :] - starts[1][None]) ** 2).sum(axis=2).min(axis=1)
    np.testing.assert_allclose(far.centers[2] + prep.shift, x[np.argmax(sq)], atol=1e-12)
    # ... and the run goes on to a proper clustering.
    done = restarts.lloyd_runs(prep, starts[1:2], 300, 1e-4)[0]
    assert done.inertia < far.inertia


def test_rows_halfway_go_to_the_lower_center() -> None:
    # Small integers with an integer mean: the row at 1 is exactly as far
    # from 0 as from 2, also after the shift to the mean and in the product.
    x = np.array([[0.0], [1.0], [2.0], [5.0]])
    prep = prepare(x, np.ones(4))
    starts = np.array([[[0.0], [2.0], [5.0]], [[2.0], [0.0], [5.0]]])
    runs = restarts.lloyd_runs(prep, starts, 1, 0.0)
    centers = [run.centers[:, 0] + prep.shift[0] for run in runs]
    np.testing.assert_array_equal(centers[0], [0.5, 2.0, 5.0])
    np.testing.assert_array_equal(centers[1], [1.5, 0.0, 5.0])
    for run, start in zip(runs, starts, strict=True):
        expected = lloyd_plain(prep, start, 1, 0.0)
        np.testing.assert_array_equal(run.centers + prep.shift, expected.centers)


def test_fewer_distinct_rows_than_clusters() -> None:
    rows = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0], [2.0, 2.0]])
    x = np.repeat(rows, [3, 1, 2, 4, 1], axis=0)
    w = np.arange(1.0, x.shape[0] + 1)
    ours, theirs = batched(x, w, 8, 4, 0), sequential(x, w, 8, 4, 0)
    assert ours.inertia == 0.0  # type: ignore[attr-defined]
    found = ours.centers  # type: ignore[attr-defined]
    assert found.shape == (5, 2)
    np.testing.assert_array_equal(np.unique(found, axis=0), np.unique(rows, axis=0))
    np.testing.assert_array_equal(found, theirs.centers)  # type: ignore[attr-defined]
    np.testing.assert_array_equal(found[ours.labels], x)  # type: ignore[attr-defined]


def test_draw_maps_uniforms_as_the_sequential_draw() -> None:
    rng = np.random.default_rng(0)
    mass = np.zeros((3, 4 * restarts._DRAW_BLOCK))
    n = mass.shape[1] - 17  # padding at the end stays zero
    mass[:, :n] = rng.random((3, n)) ** 3
    mass[1, 10:150] = 0  # zero mass across whole blocks
    mass[2, : n - 1] = 0  # a single row with mass
    uniform = np.random.default_rng(1).random((3, 500))
    drawn = restarts._draw_runs(uniform, mass)
    for r in range(3):
        expected = draw(np.random.default_rng(1), mass[r], 1500)[r * 500 : (r + 1) * 500]
        np.testing.assert_array_equal(drawn[r], expected)
        assert (mass[r, drawn[r]] > 0).all()
    assert (drawn[2] == n - 1).all()
    # u * total rounding up to the total still draws a row with mass.
    top = restarts._draw_runs(np.full((3, 1), np.nextafter(1.0, 0.0)), mass)
    assert (mass[np.arange(3), top[:, 0]] > 0).all()


@pytest.mark.parametrize("k", [16, 48])
def test_image_path_seeds_in_lockstep_as_in_sequence(
    monkeypatch: pytest.MonkeyPatch, k: int
) -> None:
    # k = 48: runs ranked on the 6-bit bins, seeded in lockstep.
    pixels = sample_rgb("china.jpg")
    table = color_table(pack_rgb(pixels).ravel())
    x, w = table.colors / 255.0, table.counts.astype(np.float64)
    assert cluster.seeds_in_lockstep(5455, k, cluster._auto_n_init(k))
    ours = cluster.cluster_table(x, w, table.keys, k, random_state=1)
    monkeypatch.setattr(cluster, "seeds_in_lockstep", lambda *args: False)
    theirs = cluster.cluster_table(x, w, table.keys, k, random_state=1)
    np.testing.assert_allclose(ours.centers, theirs.centers, atol=1e-9)
    np.testing.assert_array_equal(ours.labels, theirs.labels)


def test_products_cut_by_runs_and_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    x, w, starts = starts_and_data()
    prep = prepare(x, w)
    runs = np.concatenate([starts, starts[:1] + 0.5])
    # Two runs per product at most, then one run per product in row blocks
    # of 100 (the products have k * (d + 2) = 16 columns at most).
    monkeypatch.setattr(restarts, "_MIN_BLOCK_ROWS", 10)
    for budget, groups, blocks in ((2 * 16 * x.shape[0], 2, 1), (16 * 100, 3, 3)):
        monkeypatch.setattr(restarts, "MAX_PRODUCT", budget)
        work = restarts._Workspace(x.shape, 3, 4)
        assert (len(work.groups(3, 4)), len(work.row_blocks(4))) == (groups, blocks)
        for run, start in zip(restarts.lloyd_runs(prep, runs, 300, 1e-4), runs, strict=True):
            expected = lloyd_plain(prep, start, 300, 1e-4)
            np.testing.assert_allclose(run.centers + prep.shift, expected.centers, atol=1e-12)
            assert run.n_iter == expected.n_iter


_THREADS_SCRIPT = textwrap.dedent(
    """
    import hashlib
    import numpy as np
    from quantize.cluster import cluster_table
    from quantize.histogram import color_table, pack_rgb
    rng = np.random.default_rng(0)
    table = color_table(pack_rgb(rng.integers(0, 256, (60000, 3), dtype=np.uint8)))
    digest = hashlib.sha256()
    for k in (4, 8, 16):
        fit = cluster_table(table.colors / 255.0, table.counts * 1.0, table.keys, k, random_state=1)
        digest.update(fit.centers.tobytes() + fit.labels.tobytes())
    print(digest.hexdigest())
    """
)


def test_same_result_with_any_number_of_threads() -> None:
    assert len(outputs_by_blas_threads(_THREADS_SCRIPT, ("1", "2"))) == 1


def test_float32_rows_computed_in_float32(
    seed_bins: tuple[NDArray[np.float64], NDArray[np.float64]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The estimators' seeding hands float32 bins: every score matrix is
    # float32 (none cast to float64 whole), and the runs land where
    # float64 ones do, up to rounding.
    x, w = seed_bins
    dtypes: set[np.dtype[np.floating]] = set()
    original = restarts._Table.assign

    def spy(self: restarts._Table, centers: NDArray[np.float64]) -> object:
        dtypes.add(self.work.dist.dtype)
        return original(self, centers)

    monkeypatch.setattr(restarts._Table, "assign", spy)
    for seed in range(3):
        low = batched(x.astype(np.float32), w, 16, 4, seed)
        high = batched(x, w, 16, 4, seed)
        assert low.inertia == pytest.approx(high.inertia, rel=1e-5)  # type: ignore[attr-defined]
        np.testing.assert_allclose(low.centers, high.centers, atol=1e-4)  # type: ignore[attr-defined]
        assert low.centers.dtype == np.float64  # type: ignore[attr-defined]
    assert dtypes == {np.dtype(np.float32), np.dtype(np.float64)}


def test_runs_one_at_a_time_as_in_lockstep(
    seed_bins: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> None:
    # PlainRuns: the same iterations as lloyd_runs, one run after the other.
    x, w = seed_bins
    for seed in range(3):
        args = (x, w, 16, 4, 300, 1e-3)
        together = restarts.best_of_batched(*args, np.random.default_rng(seed), TRIALS)
        alone = restarts.best_of_batched(*args, np.random.default_rng(seed), TRIALS, True)
        assert alone.inertia == pytest.approx(together.inertia, rel=1e-9)
        np.testing.assert_allclose(alone.centers, together.centers, atol=1e-9)
        np.testing.assert_array_equal(alone.labels, together.labels)
        assert alone.n_iter == together.n_iter
