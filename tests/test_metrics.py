"""Tests for quantize.metrics."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from quantize._ciede2000 import ciede2000_in_dtype
from quantize.colors import srgb_to_lab
from quantize.metrics import (
    QualityMetrics,
    ciede2000,
    mse,
    palette_metrics,
    psnr,
    quality_metrics,
    weighted_quantile,
)

# --- mse -------------------------------------------------------------------------


def test_mse_by_hand() -> None:
    a = [[0, 0, 0], [10, 20, 30]]
    b = [[1, 2, 3], [10, 20, 30]]
    # Row 0: (1 + 4 + 9) / 3 = 14/3, row 1: 0; mean over rows = 7/3.
    assert mse(a, b) == pytest.approx(7 / 3)


def test_mse_uint8_does_not_wrap() -> None:
    a = np.zeros((1, 3), dtype=np.uint8)
    b = np.full((1, 3), 255, dtype=np.uint8)
    assert mse(a, b) == pytest.approx(255.0**2)
    assert mse(b, a) == pytest.approx(255.0**2)


def test_mse_weighted_by_hand() -> None:
    a = [[0, 0, 0], [10, 20, 30]]
    b = [[1, 2, 3], [10, 20, 30]]
    # (3 * 14/3 + 1 * 0) / 4 = 3.5
    assert mse(a, b, weights=[3, 1]) == pytest.approx(3.5)


def test_mse_weighted_equals_repeated_rows() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(1, 50))
        a = rng.integers(0, 256, (n, 3), dtype=np.uint8)
        b = rng.integers(0, 256, (n, 3), dtype=np.uint8)
        w = rng.integers(0, 6, n)
        w[0] += 1  # keep the total positive
        expected = mse(np.repeat(a, w, axis=0), np.repeat(b, w, axis=0))
        assert mse(a, b, weights=w) == pytest.approx(expected, rel=1e-12)


def test_mse_zero_for_identical() -> None:
    x = np.random.default_rng(0).random((5, 3))
    assert mse(x, x) == 0.0


@pytest.mark.parametrize(
    ("a", "b", "weights"),
    [
        (np.zeros((2, 3)), np.zeros((3, 3)), None),
        (np.zeros((2, 4)), np.zeros((2, 4)), None),
        (np.zeros((0, 3)), np.zeros((0, 3)), None),
        (np.zeros((2, 3)), np.zeros((2, 3)), [1.0]),
        (np.zeros((2, 3)), np.zeros((2, 3)), [1.0, -1.0]),
        (np.zeros((2, 3)), np.zeros((2, 3)), [0.0, 0.0]),
        (np.zeros((2, 3)), np.zeros((2, 3)), [1.0, np.nan]),
    ],
)
def test_mse_rejects_bad_input(a: np.ndarray, b: np.ndarray, weights: list[float] | None) -> None:
    with pytest.raises(ValueError):
        mse(a, b, weights)


# --- psnr ------------------------------------------------------------------------


def test_psnr_by_hand() -> None:
    assert psnr(255.0**2) == pytest.approx(0.0)
    assert psnr(65.025) == pytest.approx(30.0)  # 65025 / 65.025 = 1000
    assert psnr(1.0, peak=10.0) == pytest.approx(20.0)


def test_psnr_infinite_for_zero_mse() -> None:
    assert psnr(0.0) == math.inf


@pytest.mark.parametrize("value", [-1.0, math.nan])
def test_psnr_rejects_bad_mse(value: float) -> None:
    with pytest.raises(ValueError):
        psnr(value)


# --- CIEDE2000 ----------------------------------------------------------------------

# Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference formula:
# implementation notes, supplementary test data, and mathematical observations",
# Table 1: L1 a1 b1 L2 a2 b2 ΔE00 (ΔE00 published to 4 decimals).
SHARMA_PAIRS = np.array(
    [
        [50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425],
        [50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615],
        [50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412],
        [50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669],
        [50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461],
        [50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065],
        [50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492],
        [50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977],
        [50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030],
        [50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000],
        [60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644],
        [63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630],
        [61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731],
        [35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645],
        [22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373],
        [36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146],
        [90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441],
        [90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381],
        [6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377],
        [2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082],
    ]
)


def _ciede2000_scalar(lab1: np.ndarray, lab2: np.ndarray) -> float:
    """Literal, unvectorized transcription of Sharma et al. (degrees, if/else).

    Serves as an independent oracle for the vectorized implementation, which
    works in radians and expands the multiple-angle terms of T.
    """
    L1, a1, b1 = (float(v) for v in lab1)
    L2, a2, b2 = (float(v) for v in lab2)
    c_bar = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(c_bar**7 / (c_bar**7 + 25**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p = math.degrees(math.atan2(b1, a1p)) % 360 if (a1p, b1) != (0, 0) else 0.0
    h2p = math.degrees(math.atan2(b2, a2p)) % 360 if (a2p, b2) != (0, 0) else 0.0
    if c1p * c2p == 0:
        dhp = 0.0
    elif abs(h2p - h1p) <= 180:
        dhp = h2p - h1p
    elif h2p - h1p > 180:
        dhp = h2p - h1p - 360
    else:
        dhp = h2p - h1p + 360
    dHp = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dhp / 2))
    lbar, cbar_p = (L1 + L2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        hbar = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        hbar = (h1p + h2p) / 2
    elif h1p + h2p < 360:
        hbar = (h1p + h2p + 360) / 2
    else:
        hbar = (h1p + h2p - 360) / 2
    t = (
        1
        - 0.17 * math.cos(math.radians(hbar - 30))
        + 0.24 * math.cos(math.radians(2 * hbar))
        + 0.32 * math.cos(math.radians(3 * hbar + 6))
        - 0.20 * math.cos(math.radians(4 * hbar - 63))
    )
    d_theta = 30 * math.exp(-(((hbar - 275) / 25) ** 2))
    rc = 2 * math.sqrt(cbar_p**7 / (cbar_p**7 + 25**7))
    sl = 1 + 0.015 * (lbar - 50) ** 2 / math.sqrt(20 + (lbar - 50) ** 2)
    sc = 1 + 0.045 * cbar_p
    sh = 1 + 0.015 * cbar_p * t
    rt = -math.sin(math.radians(2 * d_theta)) * rc
    dl, dc, dh = (L2 - L1) / sl, (c2p - c1p) / sc, dHp / sh
    return math.sqrt(dl**2 + dc**2 + dh**2 + rt * dc * dh)


def test_ciede2000_sharma_pairs() -> None:
    got = ciede2000(SHARMA_PAIRS[:, 0:3], SHARMA_PAIRS[:, 3:6])
    assert got.shape == (34,)
    np.testing.assert_allclose(got, SHARMA_PAIRS[:, 6], rtol=0, atol=1e-4)


def test_ciede2000_sharma_pairs_scalar_oracle() -> None:
    # The oracle itself must reproduce the published table...
    for row in SHARMA_PAIRS:
        assert _ciede2000_scalar(row[0:3], row[3:6]) == pytest.approx(row[6], abs=1e-4)


def test_ciede2000_matches_scalar_oracle_on_random_pairs() -> None:
    # ...and the vectorized version must agree with it far more tightly,
    # including neutral colors and hues on opposite sides of the circle.
    rng = np.random.default_rng(99)
    n = 3000
    lab1 = np.column_stack([rng.uniform(0, 100, n), rng.uniform(-128, 128, (n, 2))])
    lab2 = np.column_stack([rng.uniform(0, 100, n), rng.uniform(-128, 128, (n, 2))])
    lab2[:1000] = lab1[:1000] + rng.normal(0, 1.5, (1000, 3))
    lab1[1000:1100, 1:] = 0.0
    lab2[1050:1150, 1:] = 0.0
    # Hues 180° ± 0.06° apart exercise both wrap-around branches. Exactly
    # opposite hues are left out: the formula is discontinuous there, so the
    # branch taken depends on rounding (Sharma et al. note this).
    angle = rng.choice([-1e-3, 1e-3], 100) + np.pi
    rot = np.stack([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    lab2[1200:1300, 1:] = np.einsum("ijn,nj->ni", rot, lab1[1200:1300, 1:])
    got = ciede2000(lab1, lab2)
    expected = np.array([_ciede2000_scalar(p, q) for p, q in zip(lab1, lab2, strict=True)])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_ciede2000_symmetric_and_zero_on_identity() -> None:
    a, b = SHARMA_PAIRS[:, 0:3], SHARMA_PAIRS[:, 3:6]
    np.testing.assert_allclose(ciede2000(a, b), ciede2000(b, a), atol=1e-12)
    np.testing.assert_array_equal(ciede2000(a, a), np.zeros(34))


def test_ciede2000_broadcasts_leading_shapes() -> None:
    a = SHARMA_PAIRS[:6, 0:3].reshape(2, 3, 3)
    b = SHARMA_PAIRS[:6, 3:6].reshape(2, 3, 3)
    np.testing.assert_allclose(ciede2000(a, b), SHARMA_PAIRS[:6, 6].reshape(2, 3), atol=1e-4)
    single = ciede2000(SHARMA_PAIRS[0, 0:3], SHARMA_PAIRS[0, 3:6])
    assert single.shape == ()
    against_one = ciede2000(SHARMA_PAIRS[:, 0:3], [50.0, 0.0, 0.0])
    assert against_one.shape == (34,)


def test_ciede2000_parametric_factors() -> None:
    # For neutral colors only the lightness term is non-zero, so kL divides it.
    a, b = [[40.0, 0.0, 0.0]], [[60.0, 0.0, 0.0]]
    np.testing.assert_allclose(ciede2000(a, b, kL=2.0), ciede2000(a, b) / 2.0)
    np.testing.assert_allclose(ciede2000(a, b, kC=3.0, kH=5.0), ciede2000(a, b))


def test_ciede2000_rejects_wrong_last_axis() -> None:
    with pytest.raises(ValueError):
        ciede2000(np.zeros((2, 2)), np.zeros((2, 2)))


# --- weighted_quantile ---------------------------------------------------------------


def _oracle_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    return float(np.quantile(np.repeat(values, weights), q, method="inverted_cdf"))


def test_weighted_quantile_by_hand() -> None:
    values = [3.0, 1.0, 2.0]
    weights = [1, 2, 1]  # sample: 1, 1, 2, 3
    assert weighted_quantile(values, weights, 0.0) == 1.0
    assert weighted_quantile(values, weights, 0.5) == 1.0  # cumulative 2 >= 2
    assert weighted_quantile(values, weights, 0.51) == 2.0
    assert weighted_quantile(values, weights, 0.75) == 2.0
    assert weighted_quantile(values, weights, 0.76) == 3.0
    assert weighted_quantile(values, weights, 1.0) == 3.0


def test_weighted_quantile_ignores_zero_weights() -> None:
    assert weighted_quantile([0.0, 5.0, 9.0], [0, 1, 0], 0.0) == 5.0
    assert weighted_quantile([0.0, 5.0, 9.0], [0, 1, 0], 1.0) == 5.0


def _random_values(rng: np.random.Generator, n: int, kind: int) -> np.ndarray:
    """Value distributions that stress ties, skew and outliers."""
    if kind == 0:
        return rng.normal(0, 10, n)
    if kind == 1:
        return rng.integers(0, 5, n).astype(float)  # heavy ties
    if kind == 2:
        v = rng.lognormal(0, 3, n)
        v[0] = 1e12  # one extreme outlier squeezes everything into one bin
        return v
    return np.full(n, 4.2)  # all equal


def test_weighted_quantile_matches_repeat_oracle() -> None:
    rng = np.random.default_rng(2005)
    qs = [0.0, 0.05, 0.1, 0.25, 0.3, 0.5, 0.7, 0.9, 0.95, 0.99, 1.0]
    for trial in range(200):
        # Sizes above and below the internal sort/bin threshold.
        n = int(rng.integers(1, 60)) if trial % 2 else int(rng.integers(5000, 20000))
        values = _random_values(rng, n, trial % 4)
        weights = rng.integers(0, 6, n)
        weights[rng.integers(0, n)] += 1  # keep the total positive
        for q in [*qs, float(rng.random())]:
            got = weighted_quantile(values, weights, q)
            assert got == _oracle_quantile(values, weights, q), (trial, n, q)


def test_weighted_quantile_unit_weights_match_numpy() -> None:
    values = np.random.default_rng(3).random(10_001)
    for q in (0.0, 0.123, 0.5, 0.95, 1.0):
        expected = np.quantile(values, q, method="inverted_cdf")
        assert weighted_quantile(values, np.ones_like(values), q) == expected


def test_weighted_quantile_float_weights() -> None:
    # Cumulative weights 0.5, 2.0, 2.25 of 2.25; q=0.5 needs 1.125 -> value 2.
    assert weighted_quantile([1.0, 2.0, 3.0], [0.5, 1.5, 0.25], 0.5) == 2.0


@pytest.mark.parametrize(
    ("values", "weights", "q"),
    [
        ([1.0, 2.0], [1, 1], 1.5),
        ([1.0, 2.0], [1, 1], -0.1),
        ([1.0, 2.0], [1], 0.5),
        ([1.0, 2.0], [0, 0], 0.5),
        ([1.0, 2.0], [1, -1], 0.5),
        ([1.0, np.nan], [1, 1], 0.5),
        ([[1.0, 2.0]], [[1, 1]], 0.5),
    ],
)
def test_weighted_quantile_rejects_bad_input(
    values: list[float], weights: list[int], q: float
) -> None:
    with pytest.raises(ValueError):
        weighted_quantile(values, weights, q)


# --- quality_metrics --------------------------------------------------------------------


def _tiny_example() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    original = np.array([[0, 0, 0], [255, 255, 255], [10, 10, 10], [200, 0, 0]], dtype=np.uint8)
    mapped = np.array([[0, 0, 0], [255, 255, 255], [0, 0, 0], [0, 0, 255]], dtype=np.uint8)
    # The last row has no pixels: it must not count anywhere.
    counts = np.array([2, 1, 1, 0])
    return original, mapped, counts


def test_quality_metrics_tiny_example() -> None:
    original, mapped, counts = _tiny_example()
    result = quality_metrics(original, mapped, counts, palette_size=3)

    # Only the gray row differs, by 10 in each channel: (2*0 + 1*0 + 1*100) / 4.
    assert result.mse == pytest.approx(25.0)
    assert result.psnr == pytest.approx(10 * math.log10(255**2 / 25))  # 34.1514 dB

    # Gray 10/255 vs black: both neutral, so ΔE00 = ΔL / S_L. 10/255 lies on
    # the linear sRGB segment and Y = (10/255)/12.92 is below epsilon, so
    # L = kappa * Y = 2.7418.
    lightness = 24389 / 27 * (10 / 255) / 12.92
    lbar_dev2 = (lightness / 2 - 50) ** 2
    s_l = 1 + 0.015 * lbar_dev2 / math.sqrt(20 + lbar_dev2)
    gray_de = lightness / s_l  # 1.58816
    assert gray_de == pytest.approx(1.58816, abs=1e-5)
    assert result.delta_e_mean == pytest.approx(gray_de / 4)
    # Sorted ΔE with weights: 0 (x3 pixels), gray_de (x1); 95% of 4 = 3.8.
    assert result.delta_e_p95 == pytest.approx(gray_de)
    assert result.colors_used == 2


def test_quality_metrics_to_dict() -> None:
    original, mapped, counts = _tiny_example()
    as_dict = quality_metrics(original, mapped, counts, palette_size=3).to_dict()
    assert as_dict == {
        "mse": 25.0,
        "psnr": 34.151,
        "delta_e_mean": 0.397,
        "delta_e_p95": 1.5882,
        "colors_used": 2,
    }
    assert all(type(v) in (float, int) for v in as_dict.values())


def test_quality_metrics_lossless() -> None:
    original = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8)
    result = quality_metrics(original, original, [5, 7], palette_size=2)
    assert result.mse == 0.0
    assert result.psnr == math.inf
    assert result.delta_e_mean == 0.0
    assert result.delta_e_p95 == 0.0
    assert result.to_dict()["psnr"] is None


def test_quality_metrics_accepts_integer_lists() -> None:
    original, mapped, counts = _tiny_example()
    from_lists = quality_metrics(original.tolist(), mapped.astype(np.int64), counts.tolist(), 3)
    assert from_lists == quality_metrics(original, mapped, counts, 3)


def test_quality_metrics_is_frozen() -> None:
    original, mapped, counts = _tiny_example()
    result = quality_metrics(original, mapped, counts, palette_size=3)
    assert isinstance(result, QualityMetrics)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.mse = 0.0  # type: ignore[misc]


def test_quality_metrics_large_table_matches_direct_computation() -> None:
    # Spans several internal ΔE blocks, with a ragged last block.
    rng = np.random.default_rng(11)
    m = 50_001
    original = rng.integers(0, 256, (m, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, (16, 3), dtype=np.uint8)
    mapped = palette[rng.integers(0, 16, m)]
    counts = rng.integers(0, 20, m)
    result = quality_metrics(original, mapped, counts, palette_size=16)

    de = ciede2000(srgb_to_lab(original / 255.0), srgb_to_lab(mapped / 255.0))
    assert result.mse == pytest.approx(mse(original, mapped, counts), rel=1e-12)
    # Tables are compared in float32 (see quantize._ciede2000): well within
    # the 4 decimals of the report, not bit for bit with the float64 oracle.
    assert result.delta_e_mean == pytest.approx(np.average(de, weights=counts), abs=1e-5)
    assert result.delta_e_p95 == pytest.approx(_oracle_quantile(de, counts, 0.95), abs=1e-4)
    lab32 = [srgb_to_lab(c / 255.0).astype(np.float32) for c in (original, mapped)]
    de32 = ciede2000_in_dtype(*lab32)
    assert de32.dtype == np.float32
    np.testing.assert_allclose(de32, de, rtol=0, atol=1e-4)
    used = {tuple(row) for row, c in zip(mapped, counts, strict=True) if c > 0}
    assert result.colors_used == len(used)


@pytest.mark.parametrize(
    ("original", "mapped", "counts", "palette_size"),
    [
        (np.zeros((2, 3), np.uint8), np.zeros((3, 3), np.uint8), [1, 1], 1),
        (np.zeros((2, 3), np.uint8), np.zeros((2, 3), np.uint8), [1], 1),
        (np.zeros((2, 3), np.uint8), np.zeros((2, 3), np.uint8), [0, 0], 1),
        (np.zeros((2, 3), np.uint8), np.array([[0, 0, 0], [1, 1, 1]], np.uint8), [1, 1], 1),
        (np.full((1, 3), 300), np.zeros((1, 3), np.uint8), [1], 1),
        (np.full((1, 3), -1), np.zeros((1, 3), np.uint8), [1], 1),
        (np.full((1, 3), 10.5), np.zeros((1, 3), np.uint8), [1], 1),
    ],
)
def test_quality_metrics_rejects_bad_input(
    original: np.ndarray, mapped: np.ndarray, counts: list[int], palette_size: int
) -> None:
    with pytest.raises(ValueError):
        quality_metrics(original, mapped, counts, palette_size)


# --- palette_metrics -------------------------------------------------------------


@pytest.mark.parametrize(
    ("m", "k", "seed"), [(1, 1, 0), (50, 1, 1), (40_000, 16, 2), (3000, 256, 3)]
)
def test_palette_metrics_equal_quality_metrics_exactly(m: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    original = rng.integers(0, 256, (m, 3), dtype=np.uint8)
    palette = rng.integers(0, 256, (k, 3), dtype=np.uint8)
    labels = rng.integers(0, k, m)
    counts = rng.integers(0, 20, m)
    counts[0] += 1
    expected = quality_metrics(original, palette[labels], counts, palette_size=k)
    # Bit for bit, not approximately: the report's rounded values must not change.
    assert palette_metrics(original, counts, palette, labels) == expected
    lab = srgb_to_lab(original / 255.0)
    assert palette_metrics(original, counts, palette, labels, original_lab=lab) == expected


def test_palette_metrics_counts_only_used_colors() -> None:
    original = np.array([[0, 0, 0], [250, 0, 0], [0, 250, 0]], np.uint8)
    palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [9, 9, 9]], np.uint8)
    result = palette_metrics(original, [3, 1, 0], palette, [0, 1, 2])
    assert result.colors_used == 2
    assert result.mse == pytest.approx((25 / 3) * 1 / 4)


@pytest.mark.parametrize(
    ("labels", "original_lab"),
    [
        ([0, 2], None),
        ([0, -1], None),
        ([0], None),
        ([0.0, 1.0], None),
        ([0, 1], np.zeros((3, 3))),
    ],
)
def test_palette_metrics_rejects_bad_input(labels: list[float], original_lab: object) -> None:
    original = np.zeros((2, 3), np.uint8)
    palette = np.zeros((2, 3), np.uint8)
    with pytest.raises(ValueError):
        palette_metrics(original, [1, 1], palette, labels, original_lab=original_lab)  # type: ignore[arg-type]
