"""Work split over threads gives exactly the serial results.

`quantize._threads` runs stripes of rows on threads; counting, recoloring,
the nearest-palette search, ΔE, the clustering core's nearest-center
searches and the restarts of a fit use it.  Each check compares a run with
several threads (forced, so it runs on any machine) against one thread or
a plain numpy reference.
"""

from __future__ import annotations

import functools
import itertools
import threading

import numpy as np
import pytest

from quantize import _kernels, _threads, histogram, metrics, restarts
from quantize._lloyd import lloyd, prepare
from quantize._threads import Deferred, run_stripes, stripes, thread_count
from quantize.histogram import count_pixels, nearest_rgb8, pack_rgb, recolor
from quantize.metrics import palette_metrics


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three threads wherever a stripe may go, and small stripes."""
    monkeypatch.setattr(_threads, "thread_count", lambda: 3)
    monkeypatch.setattr(histogram, "_STRIPE_PIXELS", 1 << 16)
    monkeypatch.setattr(histogram, "_NEAREST_STRIPE_ROWS", 1 << 10)
    monkeypatch.setattr(metrics, "_DELTA_E_STRIPE_ROWS", 1 << 12)
    monkeypatch.setattr(_kernels, "_STRIPE_DISTANCES", 1 << 12)


@pytest.mark.parametrize(
    ("n", "align"), [(0, 1), (5, 1), (1000, 1), (1000, 64), (1 << 24, 1 << 20)]
)
def test_stripes_cover_the_rows_in_order_on_block_boundaries(
    threads: None, n: int, align: int
) -> None:
    ranges = stripes(n, min_rows=4, align=align)
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert all(start % align == 0 for start, _ in ranges)
    assert len(ranges) == (1 if n < 8 else 3)


def test_run_stripes_returns_in_order_and_raises_what_a_stripe_raised(threads: None) -> None:
    assert run_stripes(lambda a, b: (a, b), 90, min_rows=10) == [(0, 30), (30, 60), (60, 90)]

    def fail(a: int, b: int) -> None:
        if a > 0:
            raise ValueError(f"stripe {a}")

    with pytest.raises(ValueError, match="stripe"):
        run_stripes(fail, 90, min_rows=10)


def test_no_threads_off_the_main_thread() -> None:
    seen: list[int] = []
    worker = threading.Thread(target=lambda: seen.append(thread_count()))
    worker.start()
    worker.join()
    assert seen == [1]
    assert 1 <= thread_count() <= _threads.MAX_THREADS


def test_deferred_runs_once_and_reraises(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def compute(n: int) -> int:
        calls.append(n)
        return n

    for n in (1, 2):
        monkeypatch.setattr(_threads, "thread_count", lambda n=n: n)
        value = Deferred(functools.partial(compute, n))
        assert value.result() == n and value.result() == n
        failing: Deferred[int] = Deferred(lambda: 1 // 0)
        with pytest.raises(ZeroDivisionError):
            failing.result()
    assert calls == [1, 2]
    assert Deferred.ready("x").result() == "x"


def test_deferred_without_threads_waits_to_be_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_threads, "thread_count", lambda: 1)
    calls: list[int] = []
    value = Deferred(lambda: calls.append(1))
    assert calls == []
    value.result()
    assert calls == [1]


def _frames() -> list[tuple[np.ndarray, np.ndarray | None]]:
    rng = np.random.default_rng(11)
    frames = [rng.integers(0, 256, (600, 1000, 3), dtype=np.uint8) for _ in range(2)]
    frames[0][100:400] = (1, 2, 3)  # 300000 pixels: wraps a uint16 count
    frames[1][:, :90] = (4, 5, 6)  # 54000, and 60000 more in the first frame
    frames[0][:, 900:960] = (4, 5, 6)
    mask = rng.random((600, 1000)) < 0.9
    return [(frames[0], None), (frames[1], mask)]


@pytest.mark.parametrize("many_heavy", [False, True])
def test_threaded_count_and_recolor_are_exact(
    threads: None, monkeypatch: pytest.MonkeyPatch, many_heavy: bool
) -> None:
    if many_heavy:  # every heavy key through the lookup table, not comparisons
        monkeypatch.setattr(histogram, "_HEAVY_COMPARE", 0)
    sources = _frames()
    keys = np.concatenate(
        [pack_rgb(f).ravel() if m is None else pack_rgb(f[m]) for f, m in sources]
    )
    uniq, counts = np.unique(keys, return_counts=True)
    table = count_pixels(sources)
    np.testing.assert_array_equal(table.keys, uniq)
    np.testing.assert_array_equal(table.counts, counts)
    assert table.histogram is not None and table.histogram.dtype == np.uint16
    row_index = (table.keys % 253).astype(np.uint8)
    for (frame, mask), got in zip(sources, recolor(table, row_index, sources), strict=True):
        expected = (pack_rgb(frame) % 253).astype(np.uint8)
        if mask is not None:
            expected[~mask] = 0
        np.testing.assert_array_equal(got, expected)


def test_a_heavy_color_the_sample_misses_is_counted_again_exactly(threads: None) -> None:
    rng = np.random.default_rng(12)
    frame = rng.integers(0, 256, (1100, 1000, 3), dtype=np.uint8)
    flat = frame.reshape(-1, 3)
    # 70000 pixels of one color, none of them where the sample looks.
    spots = np.arange(flat.shape[0])
    spots = spots[spots % histogram._SAMPLE_STRIDE != 0][:70000]
    flat[spots] = (9, 9, 9)
    assert histogram._frequent_colors([(frame, None)]).size == 0
    table = count_pixels([(frame, None)])
    uniq, counts = np.unique(pack_rgb(frame), return_counts=True)
    np.testing.assert_array_equal(table.keys, uniq)
    np.testing.assert_array_equal(table.counts, counts)
    assert table.histogram is not None and table.histogram.dtype == np.uint32


def test_a_count_wrapping_to_zero_is_still_a_color(threads: None) -> None:
    frame = np.zeros((512, 1024, 3), dtype=np.uint8)
    frame[:, :512] = (200, 100, 50)  # 262144 = 4 * 65536 pixels each
    table = count_pixels([(frame, None)])
    assert table.keys.tolist() == [0, 0xC86432]
    assert table.counts.tolist() == [262144, 262144]


def test_threaded_nearest_and_delta_e_equal_one_thread(
    threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(13)
    colors = rng.integers(0, 256, (20000, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    counts = rng.integers(1, 50, 20000)
    labels = nearest_rgb8(colors, palette)
    many = palette_metrics(colors, counts, palette, labels)
    monkeypatch.setattr(_threads, "thread_count", lambda: 1)
    np.testing.assert_array_equal(nearest_rgb8(colors, palette), labels)
    assert palette_metrics(colors, counts, palette, labels) == many


def test_nothing_splits_again_inside_split_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_threads.os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    assert thread_count() == 3
    inside = _threads.run_ranges(lambda a, b: thread_count(), [(0, 1), (1, 2), (2, 3)])
    assert inside == [1, 1, 1]
    assert thread_count() == 3


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("n", "k"), [(5, 3), (3000, 256), (20011, 16)])
def test_threaded_nearest_centers_equal_one_thread(
    threads: None, monkeypatch: pytest.MonkeyPatch, dtype: type, n: int, k: int
) -> None:
    rng = np.random.default_rng(14)
    x = (rng.random((n, 3)) * 100).astype(dtype)
    centers = rng.random((k, 3)) * 100
    centers[1] = x[2]  # a distance of exactly zero
    x_sq = _kernels.row_norms(x)
    split = (_kernels.assign_nearest(x, centers), _kernels.nearest_three(x, centers, x_sq))
    monkeypatch.setattr(_threads, "thread_count", lambda: 1)
    alone = (_kernels.assign_nearest(x, centers), _kernels.nearest_three(x, centers, x_sq))
    for got, expected in zip(split, alone, strict=True):
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)


def test_restarts_on_threads_equal_runs_one_by_one(threads: None) -> None:
    rng = np.random.default_rng(15)
    x = rng.random((12000, 3)) * 100  # bounded iterations (lloyd's BOUNDS_MIN_ROWS)
    w = rng.integers(1, 9, 12000).astype(np.float64)
    prep = prepare(x, w)
    starts = [x[rng.choice(12000, 40, replace=False)] for _ in range(5)]
    runs = restarts.lloyd_each(prep, starts, 50, 1e-4)
    for start, run in zip(starts, runs, strict=True):
        alone = lloyd(prep, start, 50, 1e-4)
        np.testing.assert_array_equal(run.centers, alone.centers)
        np.testing.assert_array_equal(run.labels, alone.labels)
        assert (run.inertia, run.n_iter) == (alone.inertia, alone.n_iter)
