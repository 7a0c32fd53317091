"""Swap search where restarts alone were not enough: small tables above 32
clusters, the 6-bit bins at k = 33..64, and coarse seed bins below."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from quantize import _bins, cluster, histogram, swaps
from quantize._kernels import draw, nearest_three, weighted_count
from quantize._lloyd import LloydResult, Prepared, best_of, lloyd, prepare
from quantize._validation import check_random_state
from quantize.histogram import ColorTable, color_table, pack_rgb
from tests.helpers import sample_rgb


def table_of(pixels: NDArray[np.uint8]) -> ColorTable:
    return color_table(pack_rgb(pixels.reshape(-1, 3)))


def lumps(n_lumps: int, rows: int, seed: int) -> NDArray[np.uint8]:
    """Pixels in ``n_lumps`` tight lumps of color of very different sizes."""
    rng = np.random.default_rng(seed)
    centers = rng.integers(20, 236, size=(n_lumps, 3))
    sizes = rng.integers(1, 40, size=n_lumps)
    which = rng.choice(n_lumps, size=rows, p=sizes / sizes.sum())
    noise = rng.normal(0, 6, size=(rows, 3))
    return np.clip(np.rint(centers[which] + noise), 0, 255).astype(np.uint8)


def _rows_of(prep: Prepared, tries: int, options: dict[str, object]) -> int:
    return int(prep.X.shape[0])


def spy_swaps(
    monkeypatch: pytest.MonkeyPatch,
    record: Callable[[Prepared, int, dict[str, object]], Any] = _rows_of,
) -> list[Any]:
    """Record every swap search: by default its number of rows, else what
    ``record`` makes of its rows, tries and keyword options."""
    calls: list[Any] = []
    original = cluster._swap_search

    def spy(
        prep: Prepared,
        start: LloydResult,
        max_iter: int,
        rng: np.random.Generator,
        tries: int,
        **options: object,
    ) -> LloydResult:
        calls.append(record(prep, tries, options))
        return original(prep, start, max_iter, rng, tries, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(cluster, "_swap_search", spy)
    return calls


def test_small_table_gets_swaps_at_64_clusters(monkeypatch: pytest.MonkeyPatch) -> None:
    table = table_of(lumps(90, 6000, seed=3))
    assert table.n_colors < cluster.MIN_ROWS_TO_BIN  # clustered without bins
    x, w = table.colors / 255.0, table.counts.astype(np.float64)
    swaps = spy_swaps(monkeypatch)
    fit = cluster.cluster_table(x, w, table.keys, 64, random_state=0)
    assert swaps == [table.n_colors]
    # The swaps start from exactly the restarts' result and keep only gains.
    runs = cluster.resolve_n_init("auto", 64)
    alone = best_of(x, w, 64, "k-means++", runs, 300, cluster.TOL, check_random_state(0))
    assert fit.inertia < alone.inertia


def test_binned_table_gets_swaps_on_the_fine_bins_at_64_clusters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = table_of(lumps(120, 200_000, seed=5))
    assert table.n_colors >= cluster.MIN_ROWS_TO_BIN
    swaps = spy_swaps(monkeypatch)
    cluster.cluster_centers(
        table.colors / 255.0, table.counts.astype(np.float64), table.keys, 64, random_state=0
    )
    # On the 6-bit bins (more rows than the 5-bit seed bins, fewer than the
    # table), then on every row: the table has fewer than 2**18.
    assert len(swaps) == 2
    assert cluster.make_bins(table.colors / 255.0, table.counts.astype(float), table.keys, 64)
    assert 4 * 64 < swaps[0] < table.n_colors
    assert swaps[1] == table.n_colors


def test_coarse_seed_bins_tell_dark_tables_from_photos() -> None:
    china = sample_rgb("china.jpg")
    # The same photo, darkened to a night scene: its pixels pile into few bins.
    night = (china * 0.2).astype(np.uint8)
    for pixels, coarse in ((china, False), (night, True)):
        table = table_of(pixels)
        bins = cluster.make_bins(table.colors / 255.0, table.counts.astype(float), table.keys, 16)
        assert bins is not None
        _, seed_w = cluster.seed_set(bins, 16)
        assert cluster._coarse_seed_bins(seed_w, 16) is coarse


def test_small_table_gets_swaps_on_every_level_at_16_clusters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Below 2**18 rows, from 9 to 23 clusters: swaps on the seed bins and
    # the 6-bit bins, photo or dark scene alike, and on every row where
    # rows x clusters is small.
    china = sample_rgb("china.jpg")
    for pixels in (china, (china * 0.2).astype(np.uint8)):
        table = table_of(pixels)
        searched = spy_swaps(monkeypatch)
        x, w = table.colors / 255.0, table.counts.astype(np.float64)
        fit = cluster.cluster_table(x, w, table.keys, 16, random_state=0)
        exact = table.n_colors * 16 <= cluster._SMALL_EXACT_SWAP_MAX_WORK
        assert searched[0] < searched[1] < table.n_colors
        assert searched[2:] == ([table.n_colors] if exact else [])
        assert fit.centers.shape == (16, 3)
    # At 8 clusters the restarts alone do: swaps on the seed bins only.
    table = table_of(china)
    searched = spy_swaps(monkeypatch)
    cluster.cluster_table(table.colors / 255.0, table.counts.astype(float), table.keys, 8)
    assert len(searched) == 1


def test_small_table_with_cheap_exact_tries_gets_more_of_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A dark photo of some 10,000 colors at 16 clusters: a swap try on every
    # row is cheap, so it gets twice the tries of a table near the limit,
    # none of them repeated.
    table = table_of((sample_rgb("china.jpg")[::2, ::2] * 0.2).astype(np.uint8))
    assert table.n_colors >= cluster.MIN_ROWS_TO_BIN and table.n_colors * 16 <= 1 << 18
    calls = spy_swaps(
        monkeypatch,
        lambda prep, tries, options: (prep.X.shape[0], tries, options.get("fresh_picks", False)),
    )
    x, w = table.colors / 255.0, table.counts.astype(np.float64)
    cluster.cluster_table(x, w, table.keys, 16, random_state=0)
    assert calls[-1] == (table.n_colors, 2 * cluster._SMALL_EXACT_SWAP_TRIES, True)
    # Near the limit of rows x clusters, the tries stay as they were.
    assert cluster._exact_swap_tries(1 << 16, 16, small=True) == cluster._SMALL_EXACT_SWAP_TRIES


def smooth_ramp(h: int, w: int) -> NDArray[np.uint8]:
    """A two-axis color gradient with a little noise: many colors, few 6-bit bins."""
    y, x = np.mgrid[0:h, 0:w] / np.array([h - 1, w - 1])[:, None, None]
    rgb = np.stack([0.9 * x + 0.1 * y, 0.2 + 0.6 * y * (1 - x), 1 - 0.8 * x * y], axis=-1)
    noise = np.random.default_rng(0).normal(0.0, 1.5, rgb.shape)
    return np.clip(rgb * 255 + noise, 0, 255).astype(np.uint8)


def test_split_merge_moves_follow_where_the_fine_bins_are_few_at_16_clusters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A smooth ramp: swaps alone leave basins where one cluster spans two
    # stretches of it; a photo with many 6-bit bins is left as it was.
    moved: list[int] = []
    original = cluster._split_merge_search

    def spy(prep: Prepared, start: LloydResult, *args: int) -> LloydResult:
        moved.append(prep.X.shape[0])
        return original(prep, start, *args)

    monkeypatch.setattr(cluster, "_split_merge_search", spy)
    for pixels, expected in ((smooth_ramp(150, 200), 1), (sample_rgb("china.jpg"), 0)):
        table = table_of(pixels)
        moved.clear()
        x, w = table.colors / 255.0, table.counts.astype(np.float64)
        fit = cluster.cluster_table(x, w, table.keys, 16, random_state=0)
        assert len(moved) == expected
        assert all(0 < rows < table.n_colors for rows in moved)  # on the 6-bit bins
        # Not under the estimators' swap cap.
        moved.clear()
        capped = cluster.cluster_table(x, w, table.keys, 16, random_state=0, max_swap_tries=4)
        assert moved == []
        assert fit.centers.shape == capped.centers.shape == (16, 3)


def swap_search_recomputing(
    prep: Prepared, start: LloydResult, max_iter: int, rng: np.random.Generator, tries: int
) -> tuple[LloydResult, int]:
    """The swap search with every try's distances computed afresh, and how
    many tries it kept."""
    best, accepted = start, 0
    k = start.centers.shape[0]
    for _ in range(tries):
        labels, _, near, others = nearest_three(prep.X, best.centers - prep.shift, prep.x_sq)
        d1, d2 = near**2, others[:, 0] ** 2
        pick = int(draw(rng, prep.w * d1, 1)[0])
        offset = prep.X - prep.X[pick]
        d_new = np.einsum("ij,ij->i", offset, offset)
        kept = np.minimum(d1, d_new)
        cost = weighted_count(labels, prep.w * (np.minimum(d2, d_new) - kept), k)
        centers = best.centers.copy()
        centers[int(np.argmin(cost))] = prep.X[pick] + prep.shift
        run = lloyd(prep, centers, max_iter, cluster.TOL)
        if run.inertia < best.inertia:
            n_iter = best.n_iter + run.n_iter
            best = LloydResult(run.centers, run.labels, run.inertia, n_iter, run.state)
            accepted += 1
    return best, accepted


@pytest.mark.parametrize("seed", [0, 1])
def test_swaps_reuse_the_distances_of_a_kept_center_set(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    table = table_of(lumps(40, 3000, seed=seed))
    x, w = table.colors / 255.0, table.counts.astype(np.float64)
    prep = prepare(x, w)
    start = best_of(x, w, 12, "k-means++", 1, 300, cluster.TOL, check_random_state(seed))
    oracle_rng = check_random_state(seed + 10)
    expected, accepted = swap_search_recomputing(prep, start, 300, oracle_rng, 20)
    passes: list[int] = []

    def counted(*args: NDArray[np.float64]) -> object:
        passes.append(1)
        return nearest_three(*args)

    monkeypatch.setattr(swaps, "nearest_three", counted)
    rng = check_random_state(seed + 10)
    got = swaps.swap_search(prep, start, 300, rng, 20)
    np.testing.assert_array_equal(got.centers, expected.centers)
    np.testing.assert_array_equal(got.labels, expected.labels)
    assert (got.inertia, got.n_iter) == (expected.inertia, expected.n_iter)
    np.testing.assert_array_equal(rng.random(4), oracle_rng.random(4))  # same draws
    # One pass for the start and one per kept try, not one per try.
    assert accepted < 19
    assert len(passes) == 1 + accepted


def test_few_fine_bins_get_swaps_on_them_at_16_clusters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Seed bins that are not coarse, but few enough 6-bit bins for a try
    # there to take plain passes: the fit on them gets swaps too.
    rng = np.random.default_rng(8)
    # Every color in 0..95: at most 24**3 6-bit bins, spread evenly.
    table = table_of(rng.integers(0, 96, size=(60_000, 3)).astype(np.uint8))
    assert table.n_colors >= cluster.MIN_ROWS_TO_BIN
    x, w = table.colors / 255.0, table.counts.astype(np.float64)
    bins = cluster.make_bins(x, w, table.keys, 16)
    assert bins is not None
    _, seed_w = cluster.seed_set(bins, 16)
    assert not cluster._coarse_seed_bins(seed_w, 16)
    assert bins.means.shape[0] * 16 < cluster.BOUNDS_MIN_WORK
    swaps = spy_swaps(monkeypatch)
    fit = cluster.cluster_table(x, w, table.keys, 16, random_state=0)
    # Then, on a table this small, swaps on every row (see the test above).
    assert swaps[1:] == [bins.means.shape[0], table.n_colors]
    assert fit.centers.shape == (16, 3)


def test_exact_rows_get_swaps_when_few_at_64_clusters(monkeypatch: pytest.MonkeyPatch) -> None:
    # A dark table: its 6-bit bins are coarse, so after converging on every
    # row the fit gets swaps on the rows themselves, and keeps only gains.
    night = (sample_rgb("china.jpg") * 0.3).astype(np.uint8)
    table = table_of(night)
    x, w = table.colors / 255.0, table.counts.astype(np.float64)
    assert table.n_colors >= cluster.MIN_ROWS_TO_BIN
    assert table.n_colors * 64 <= cluster._EXACT_SWAP_MAX_WORK
    swaps = spy_swaps(monkeypatch)
    fit = cluster.cluster_table(x, w, table.keys, 64, random_state=0)
    assert swaps[-1] == table.n_colors
    labels = nearest_three(x, fit.centers, np.einsum("ij,ij->i", x, x))[0]
    np.testing.assert_array_equal(fit.labels, labels)


def test_above_64_clusters_coarse_seed_bins_give_way_to_the_fine_bins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # No swaps above 64 clusters: a table small enough to converge on every
    # row is seeded on its 6-bit bins when the 5-bit ones are coarse.
    table = table_of(sample_rgb("china.jpg"))
    x, w = table.colors / 255.0, table.counts.astype(np.float64)
    bins = cluster.make_bins(x, w, table.keys, 128)
    assert bins is not None
    _, seed_w = cluster.seed_set(bins, 128)
    assert cluster._coarse_seed_bins(seed_w, 128)
    seeded_on: list[int] = []
    original = cluster._ranked_on_bins

    def spy(seed_x: NDArray[np.float64], *args: object) -> LloydResult:
        seeded_on.append(seed_x.shape[0])
        return original(seed_x, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(cluster, "_ranked_on_bins", spy)
    fit = cluster.cluster_table(x, w, table.keys, 128, random_state=0)
    assert seeded_on == [bins.means.shape[0]]
    assert fit.centers.shape == (128, 3)


def test_tiny_table_gets_swaps_at_256_clusters(monkeypatch: pytest.MonkeyPatch) -> None:
    table = table_of(lumps(600, 6000, seed=4))
    assert table.n_colors < cluster.MIN_ROWS_TO_BIN
    x, w = table.colors / 255.0, table.counts.astype(np.float64)
    swaps = spy_swaps(monkeypatch)
    cluster.cluster_table(x, w, table.keys, 256, random_state=0)
    assert swaps == [table.n_colors]


def test_tiny_table_swaps_stop_once_every_row_was_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    # An 8x8 image of 64 random colors: a try that draws a row already tried
    # against the same centers would repeat a rejected Lloyd run.
    rng = np.random.default_rng(0)
    table = table_of(rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8))
    assert table.n_colors == 64
    x, w = table.colors / 255.0, table.counts.astype(np.float64)
    starts: list[float] = []
    tries: list[float] = []
    search, run = cluster._swap_search, swaps.lloyd

    def spy_search(
        prep: Prepared, start: LloydResult, *args: object, **options: object
    ) -> LloydResult:
        starts.append(start.inertia)
        return search(prep, start, *args, **options)  # type: ignore[arg-type]

    def spy_try(*args: object, **options: object) -> LloydResult:
        result = run(*args, **options)  # type: ignore[arg-type]
        tries.append(result.inertia)
        return result

    monkeypatch.setattr(cluster, "_swap_search", spy_search)
    monkeypatch.setattr(swaps, "lloyd", spy_try)
    fit = cluster.cluster_table(x, w, table.keys, 2, random_state=0)
    assert len(starts) == 1
    best, kept = starts[0], 0
    for inertia in tries:
        if inertia < best:
            best, kept = inertia, kept + 1
    # At most one try per row between two kept ones, not the 200 of a budget
    # meant for a table a hundred times larger.
    assert 0 < len(tries) <= (kept + 1) * table.n_colors
    assert fit.inertia == pytest.approx(best)


def test_command_fit_of_a_tiny_table_gets_a_larger_swap_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Tries that never repeat stop early on the smallest tables, so the
    # command's fit can afford more of them on a table of 2,000 colors.
    table = table_of(lumps(600, 2500, seed=4))
    assert 1000 < table.n_colors < 4096
    x, w = table.colors / 255.0, table.counts.astype(np.float64)
    tries = spy_swaps(monkeypatch, lambda prep, count, options: count)
    cluster.cluster_table(x, w, table.keys, 256, random_state=0)
    assert tries == [(1 << 25) // (table.n_colors * 256)]
    assert tries[0] > 2 * cluster._SWAP_TRIES
    tries.clear()
    cluster.cluster_table(x, w, table.keys, 256, random_state=0, max_swap_tries=40)
    assert tries == [cluster._SWAP_TRIES]  # the estimators' budget is as it was


def test_heavy_bins_are_split_down_to_single_colors() -> None:
    # A dark photo piles its pixels into a few 6-bit bins: split, no bin
    # the iterations run on weighs more than the cap unless it is one color,
    # and each split bin lies inside one 6-bit bin.
    night = (sample_rgb("china.jpg") * 0.3).astype(np.uint8)
    table = table_of(night)
    w = table.counts.astype(np.float64)
    cap = float(w.sum()) / 1024
    index, n_bins = _bins.split_heavy(table.keys, w, 6, cap)
    totals = np.bincount(index, weights=w, minlength=n_bins)
    colors_per_bin = np.bincount(index, minlength=n_bins)
    assert ((totals <= cap) | (colors_per_bin == 1)).all()
    plain, n_plain = histogram.coarse_bins(table.keys, 6)
    assert n_bins > n_plain
    parent = np.full(n_bins, -1)
    parent[index] = plain
    assert (parent[index] == plain).all()
    assert np.bincount(plain, weights=w).max() > cap  # something was split


def test_split_bins_keep_the_exact_objective() -> None:
    # The bins are a partition of the rows with exact weighted means.
    night = (sample_rgb("china.jpg") * 0.3).astype(np.uint8)
    table = table_of(night)
    x, w = table.colors / 255.0, table.counts.astype(np.float64)
    bins = cluster.make_bins(x, w, table.keys, 256)
    assert bins is not None
    assert bins.totals.sum() == pytest.approx(w.sum())
    sums = np.stack([np.bincount(bins.index, weights=w * x[:, j]) for j in range(3)], axis=1)
    np.testing.assert_allclose(bins.means * bins.totals[:, None], sums, atol=1e-9)
    fit = cluster.cluster_table(x, w, table.keys, 256, random_state=0)
    assert fit.inertia == pytest.approx(float(w @ ((x - fit.centers[fit.labels]) ** 2).sum(1)))


def test_command_fit_of_a_small_table_gets_swaps_on_every_row_at_256_clusters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Binned but under 2**18 rows: the command's fit (no cap) converges on
    # every row and gets swaps there above 64 clusters too; the estimators
    # (a cap) and tables over 2**18 rows keep their schedule.
    table = table_of(sample_rgb("flower.jpg")[::2, ::2])
    x, w = table.colors / 255.0, table.counts.astype(np.float64)
    assert cluster.MIN_ROWS_TO_BIN <= table.n_colors < cluster._LARGE_TABLE
    assert cluster._exact_swap_tries(table.n_colors, 256, False, True) > 0
    swaps = spy_swaps(monkeypatch)
    fit = cluster.cluster_table(x, w, table.keys, 256, random_state=0)
    assert swaps == [table.n_colors]
    labels = nearest_three(x, fit.centers, np.einsum("ij,ij->i", x, x))[0]
    np.testing.assert_array_equal(fit.labels, labels)
    swaps.clear()
    cluster.cluster_table(x, w, table.keys, 256, random_state=0, max_swap_tries=8)
    assert swaps == []
    assert not cluster._thorough_high_k(cluster._LARGE_TABLE, 256, None)
    assert not cluster._thorough_high_k(table.n_colors, 32, None)


def three_lumps() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Three tight lumps of equal weight on a line, at 0, 0.4 and 0.8."""
    rng = np.random.default_rng(0)
    x = np.concatenate([c + rng.normal(0, 0.01, size=(200, 3)) for c in (0.0, 0.4, 0.8)])
    return x, np.ones(x.shape[0])


def test_split_merge_moves_a_center_from_a_shared_lump_to_a_split_one() -> None:
    # Two centers share the first lump and one sits between the other two:
    # Lloyd's iterations stay there.  The best move merges the first two
    # and splits the wide cluster, which lands on one center per lump.
    x, w = three_lumps()
    prep = prepare(x, w)
    start = lloyd(prep, np.array([[-0.01] * 3, [0.01] * 3, [0.6] * 3]), 300, cluster.TOL)
    assert np.bincount(start.labels, minlength=3)[2] == 400
    moves = swaps._moves(prep, start)
    assert {moves[0].b, moves[0].c} == {0, 1} and moves[0].a == 2
    got = swaps.split_merge_search(prep, start, 300, 1)
    best = lloyd(prep, np.array([[0.0] * 3, [0.4] * 3, [0.8] * 3]), 300, cluster.TOL)
    assert got.inertia == pytest.approx(best.inertia)
    assert got.inertia < start.inertia / 10
    np.testing.assert_array_equal(
        got.labels, nearest_three(prep.X, got.centers - prep.shift, prep.x_sq)[0]
    )


def test_split_merge_keeps_its_start_when_no_move_gains() -> None:
    x, w = three_lumps()
    prep = prepare(x, w)
    best = lloyd(prep, np.array([[0.0] * 3, [0.4] * 3, [0.8] * 3]), 300, cluster.TOL)
    got = swaps.split_merge_search(prep, best, 300, 4, 2)
    assert got is best


def spy_splits(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """Record rows, tries and batch of every split/merge search."""
    calls: list[tuple[int, int, int]] = []
    original = cluster._split_merge_search

    def spy(
        prep: Prepared, start: LloydResult, max_iter: int, tries: int, batch: int
    ) -> LloydResult:
        calls.append((prep.X.shape[0], tries, batch))
        return original(prep, start, max_iter, tries, batch)

    monkeypatch.setattr(cluster, "_split_merge_search", spy)
    return calls


def test_command_fit_above_32_clusters_gets_split_merge_moves_on_the_fine_bins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Only the command's thorough schedule (no cap, under 2**18 rows, above
    # 32 clusters): the estimators and the large-table path are unchanged.
    table = table_of(sample_rgb("flower.jpg")[::2, ::2])
    x, w = table.colors / 255.0, table.counts.astype(np.float64)
    fine = []
    for k in (256, 64):
        bins = cluster.make_bins(x, w, table.keys, k)
        assert bins is not None
        fine.append(bins.means.shape[0])
    calls = spy_splits(monkeypatch)
    with_moves = cluster.cluster_table(x, w, table.keys, 256, random_state=0)
    cluster.cluster_table(x, w, table.keys, 64, random_state=0)
    assert calls == [(fine[0], 4, 4), (fine[1], 8, 1)]
    calls.clear()
    cluster.cluster_table(x, w, table.keys, 256, random_state=0, max_swap_tries=8)
    cluster.cluster_table(x, w, table.keys, 32, random_state=0)
    assert calls == []
    # On this photo the moves find a better optimum than the schedule without them.
    monkeypatch.setattr(cluster, "_HIGH_K_WIDE_SPLITS", 0)
    without = cluster.cluster_table(x, w, table.keys, 256, random_state=0)
    assert with_moves.inertia < without.inertia


def test_split_merge_never_merges_two_empty_clusters() -> None:
    # Two centers far from every row hold nothing: merging one into the
    # other would put a center at 0/0.
    rng = np.random.default_rng(1)
    x, w = rng.random((500, 3)), rng.random(500) + 0.1
    prep = prepare(x, w)
    fit = lloyd(prep, x[rng.choice(500, 14, replace=False)], 300, 1e-4)
    centers = np.vstack([[10.0, 10.0, 10.0], [11.0, 11.0, 11.0], fit.centers])
    d = ((x[:, None, :] - centers[None]) ** 2).sum(axis=2)
    start = LloydResult(centers, d.argmin(axis=1), float(w @ d.min(axis=1)), 0)
    with np.errstate(all="raise"):
        moves = swaps._moves(prep, start)
    assert moves and all(np.isfinite(move.centers).all() for move in moves)
    assert not any({move.b, move.c} == {0, 1} for move in moves)


def test_lockstep_swap_search_makes_the_same_tries() -> None:
    # The estimators' seeding computes its tries as the lockstep restarts
    # do: the same draws, swaps and Lloyd runs up to rounding.
    table = table_of(lumps(30, 20000, 4))
    x, w = table.colors / 255.0, table.counts.astype(np.float64)
    prep = prepare(x, w)
    start = best_of(x, w, 12, "k-means++", 1, 300, 1e-3, np.random.default_rng(0))
    plain = swaps.swap_search(prep, start, 300, np.random.default_rng(1), 8)
    lockstep = swaps.swap_search(prep, start, 300, np.random.default_rng(1), 8, lockstep=True)
    assert plain.inertia < start.inertia
    assert lockstep.inertia == pytest.approx(plain.inertia, rel=1e-9)
    np.testing.assert_allclose(lockstep.centers, plain.centers, atol=1e-9)
    np.testing.assert_array_equal(lockstep.labels, plain.labels)
    assert lockstep.n_iter == plain.n_iter
