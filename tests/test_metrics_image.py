"""Metrics of an image against another (a lossy file as written), in bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from quantize import metrics
from quantize.colors import rgb8_to_lab
from quantize.histogram import pack_rgb, unpack_keys
from quantize.metrics import PairMetricsAccumulator, image_metrics, quality_metrics
from quantize.outputs import written_metrics


def _lossy_pair(shape: tuple[int, int], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """An image with repeated colors and a noisy copy of it, as a JPEG would hold."""
    rng = np.random.default_rng(seed)
    original = (rng.integers(0, 8, (*shape, 3)) * 32 + 7).astype(np.uint8)
    noise = rng.integers(-3, 4, (*shape, 3))
    written = np.clip(original + noise, 0, 255).astype(np.uint8)
    return original, written


def _whole_table_metrics(original: np.ndarray, written: np.ndarray) -> metrics.QualityMetrics:
    """`quality_metrics` on the table of every distinct pair of the image, at once."""
    codes = pack_rgb(original).ravel().astype(np.uint64) << np.uint64(24)
    codes |= pack_rgb(written).ravel()
    pairs, counts = np.unique(codes, return_counts=True)
    source = unpack_keys((pairs >> np.uint64(24)).astype(np.uint32))
    out = unpack_keys((pairs & np.uint64(0xFFFFFF)).astype(np.uint32))
    distinct = len({tuple(c) for c in out})
    return quality_metrics(source, out, counts, distinct)


@pytest.mark.parametrize("band_pixels", [1 << 20, 1 << 12, 37])
def test_image_metrics_are_those_of_the_whole_pair_table(
    band_pixels: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bands of many rows, of a few rows, and of one row each (37 < width).
    monkeypatch.setattr(metrics, "_BAND_PIXELS", band_pixels)
    original, written = _lossy_pair((90, 140), seed=1)
    want = _whole_table_metrics(original, written)
    got = image_metrics(original, written)
    # The same float32 ΔE of every pair, so the same percentile, bit for bit.
    assert got.delta_e_p95 == want.delta_e_p95
    assert got.colors_used == want.colors_used == len(np.unique(pack_rgb(written)))
    assert got.mse == pytest.approx(want.mse, rel=1e-12)
    assert got.delta_e_mean == pytest.approx(want.delta_e_mean, rel=1e-12)
    assert written_metrics(original, written) == (got, got.colors_used)


def test_image_metrics_of_an_unchanged_image() -> None:
    original, _ = _lossy_pair((20, 30), seed=2)
    got = image_metrics(original, original)
    assert got.mse == 0.0 and got.psnr == np.inf
    assert got.delta_e_mean == got.delta_e_p95 == 0.0
    assert got.colors_used == len(np.unique(pack_rgb(original)))


@pytest.mark.parametrize(("a", "b"), [((4, 5, 3), (5, 4, 3)), ((0, 5, 3), (0, 5, 3))])
def test_image_metrics_rejects_mismatched_or_empty_images(
    a: tuple[int, ...], b: tuple[int, ...]
) -> None:
    with pytest.raises(ValueError):
        image_metrics(np.zeros(a, np.uint8), np.zeros(b, np.uint8))


def test_pair_accumulator_counts_an_output_color_once_and_skips_empty_rows() -> None:
    colors = np.array([[0, 0, 0], [10, 10, 10], [20, 20, 20]], np.uint8)
    mapped = np.array([[1, 1, 1], [1, 1, 1], [99, 0, 0]], np.uint8)
    acc = PairMetricsAccumulator()
    acc.add(colors[:2], mapped[:2], np.array([2, 1]))
    acc.add(colors[1:], mapped[1:], np.array([3, 0]))  # [99, 0, 0] covers no pixel
    got = acc.result()
    want = quality_metrics(colors[[0, 1, 1]], mapped[[0, 1, 1]], [2, 1, 3], palette_size=1)
    assert got.colors_used == want.colors_used == 1
    assert got.delta_e_p95 == want.delta_e_p95
    assert got.mse == pytest.approx(want.mse, rel=1e-12)


def test_a_row_alone_converts_to_the_bits_it_has_in_a_block() -> None:
    # A one-row matrix product may round differently; a band's last ΔE
    # block can be one row long, and its pair must keep the same ΔE.
    colors = np.random.default_rng(3).integers(0, 256, (300, 3), dtype=np.uint8)
    block = metrics._lab32(colors)
    alone = np.concatenate([metrics._lab32(colors[i : i + 1]) for i in range(300)])
    np.testing.assert_array_equal(alone, block)
    np.testing.assert_array_equal(block, rgb8_to_lab(colors).astype(np.float32))


def test_image_metrics_memory_is_bounded_by_the_band(monkeypatch: pytest.MonkeyPatch) -> None:
    # Noise: about one distinct pair per pixel.  Comparing every pixel at
    # once holds some 60 bytes a pixel; the bands keep 5 (a float32 ΔE and a
    # one-byte count per pair) besides the 16 MB table of output colors.
    monkeypatch.setattr(metrics, "_BAND_PIXELS", 1 << 15)
    rng = np.random.default_rng(4)
    original = rng.integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    written = original ^ rng.integers(0, 4, original.shape, dtype=np.uint8)
    tracemalloc.start()
    try:
        image_metrics(original, written)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 * original.shape[0] * original.shape[1] + (1 << 24) + (4 << 20)
