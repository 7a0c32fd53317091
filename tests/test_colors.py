"""Tests for quantize.colors: published reference values and round trips."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from quantize.colors import (
    SPACES,
    from_space,
    lab_to_srgb,
    linear_to_srgb,
    oklab_to_srgb,
    rgb8_to_lab,
    rgb8_to_space,
    space_to_rgb8,
    srgb_to_lab,
    srgb_to_linear,
    srgb_to_oklab,
    srgb_to_xyz,
    to_space,
    xyz_to_srgb,
)

PRIMARIES = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])

# CIELAB (D65) of the sRGB primaries as tabulated by Bruce Lindbloom's
# calculator; the tolerance absorbs the choice of white point rounding.
LAB_PRIMARIES = np.array(
    [
        [53.2408, 80.0925, 67.2032],
        [87.7347, -86.1827, 83.1793],
        [32.2970, 79.1875, -107.8602],
    ]
)

# OKLab of the sRGB primaries from the CSS Color 4 specification examples
# (which agree with Ottosson's reference implementation to ~1e-5).
OKLAB_PRIMARIES = np.array(
    [
        [0.62796, 0.22486, 0.12585],
        [0.86644, -0.23389, 0.17950],
        [0.45201, -0.03246, -0.31153],
    ]
)


@pytest.fixture
def random_rgb() -> np.ndarray:
    return np.random.default_rng(12345).random((10_000, 3))


# --- transfer curve ----------------------------------------------------------


def test_srgb_to_linear_known_values() -> None:
    got = srgb_to_linear([[0.0, 0.5, 1.0]])
    # ((0.5 + 0.055) / 1.055) ** 2.4 = 0.21404114...
    np.testing.assert_allclose(got, [[0.0, 0.21404114, 1.0]], atol=1e-8)


def test_transfer_curve_is_continuous_at_the_joint() -> None:
    below, above = srgb_to_linear([[0.04045, 0.04045 + 1e-12, 0.0]])[0, :2]
    assert abs(above - below) < 1e-7


def test_transfer_curve_round_trip(random_rgb: np.ndarray) -> None:
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(random_rgb)), random_rgb, atol=1e-12)


def test_transfer_curve_is_odd_for_negative_inputs() -> None:
    # Unclipped inverse conversions can produce slightly negative values; they
    # must stay finite rather than becoming NaN.
    x = np.array([[-0.5, -0.01, 0.3]])
    np.testing.assert_allclose(srgb_to_linear(x), -srgb_to_linear(-x))
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-12)


# --- XYZ ------------------------------------------------------------------------


def test_white_xyz_is_d65() -> None:
    np.testing.assert_allclose(srgb_to_xyz([1.0, 1.0, 1.0]), [0.95047, 1.0, 1.08883], atol=1e-6)


def test_xyz_round_trip(random_rgb: np.ndarray) -> None:
    np.testing.assert_allclose(xyz_to_srgb(srgb_to_xyz(random_rgb)), random_rgb, atol=1e-12)


# --- CIELAB -----------------------------------------------------------------------


def test_lab_of_primaries() -> None:
    np.testing.assert_allclose(srgb_to_lab(PRIMARIES), LAB_PRIMARIES, atol=1e-3)


def test_lab_white_and_black() -> None:
    np.testing.assert_allclose(srgb_to_lab([1.0, 1.0, 1.0]), [100.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(srgb_to_lab([0.0, 0.0, 0.0]), [0.0, 0.0, 0.0], atol=1e-12)


def test_lab_mid_gray() -> None:
    # 0x77 -> linear 0.184475 -> L = 116 * cbrt(0.184475) - 16 = 50.034
    lab = srgb_to_lab(np.full(3, 0x77 / 255))
    assert lab[0] == pytest.approx(50.0344, abs=1e-3)
    np.testing.assert_allclose(lab[1:], 0.0, atol=1e-9)


def test_lab_dark_gray_uses_linear_segment() -> None:
    # Y = (10/255) / 12.92 is below epsilon, so L = kappa * Y.
    y = (10 / 255) / 12.92
    lab = srgb_to_lab(np.full(3, 10 / 255))
    assert lab[0] == pytest.approx(24389 / 27 * y, rel=1e-12)


def test_lab_round_trip(random_rgb: np.ndarray) -> None:
    np.testing.assert_allclose(lab_to_srgb(srgb_to_lab(random_rgb)), random_rgb, atol=1e-9)


# --- OKLab ------------------------------------------------------------------------


def test_oklab_of_primaries() -> None:
    np.testing.assert_allclose(srgb_to_oklab(PRIMARIES), OKLAB_PRIMARIES, atol=1e-4)


def test_oklab_white_and_black() -> None:
    np.testing.assert_allclose(srgb_to_oklab([1.0, 1.0, 1.0]), [1.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(srgb_to_oklab([0.0, 0.0, 0.0]), [0.0, 0.0, 0.0], atol=1e-12)


def test_oklab_round_trip(random_rgb: np.ndarray) -> None:
    np.testing.assert_allclose(oklab_to_srgb(srgb_to_oklab(random_rgb)), random_rgb, atol=1e-9)


# --- shapes and dtypes -------------------------------------------------------------

CONVERSIONS = [
    srgb_to_linear,
    linear_to_srgb,
    srgb_to_xyz,
    xyz_to_srgb,
    srgb_to_lab,
    lab_to_srgb,
    srgb_to_oklab,
    oklab_to_srgb,
]


@pytest.mark.parametrize("func", CONVERSIONS)
@pytest.mark.parametrize("shape", [(3,), (7, 3), (2, 5, 3)])
def test_any_leading_shape(func: Callable[..., np.ndarray], shape: tuple[int, ...]) -> None:
    x = np.random.default_rng(0).random(shape)
    out = func(x)
    assert out.shape == shape
    assert out.dtype == np.float64
    # Vectorized results must equal row-by-row results.
    flat = x.reshape(-1, 3)
    rows = np.stack([func(row) for row in flat])
    np.testing.assert_allclose(out.reshape(-1, 3), rows, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("func", CONVERSIONS)
def test_rejects_wrong_last_axis(func: Callable[..., np.ndarray]) -> None:
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        func(np.zeros((4, 2)))


def test_integer_input_is_converted_to_float() -> None:
    assert srgb_to_lab(np.array([1, 1, 1], dtype=np.int64)).dtype == np.float64


# --- registry ------------------------------------------------------------------------


def test_spaces() -> None:
    assert SPACES == ("rgb", "lab", "oklab", "linear-rgb")


@pytest.mark.parametrize("space", SPACES)
def test_space_round_trip(space: str, random_rgb: np.ndarray) -> None:
    back = from_space(to_space(random_rgb, space), space)
    np.testing.assert_allclose(back, random_rgb, atol=1e-6)


@pytest.mark.parametrize("space", SPACES)
def test_space_round_trip_image_shape(space: str) -> None:
    img = np.random.default_rng(1).random((4, 6, 3))
    points = to_space(img, space)
    assert points.shape == img.shape
    np.testing.assert_allclose(from_space(points, space), img, atol=1e-6)


def test_rgb_space_is_identity_copy() -> None:
    x = np.array([[0.1, 0.2, 0.3]])
    out = to_space(x, "rgb")
    np.testing.assert_array_equal(out, x)
    out[0, 0] = 0.9
    assert x[0, 0] == 0.1


def test_from_space_does_not_clip() -> None:
    x = np.array([[-0.2, 1.3, 0.5]])
    np.testing.assert_array_equal(from_space(x, "rgb"), x)
    # A strongly saturated Lab color lies outside the sRGB gamut.
    out = from_space(np.array([[50.0, 120.0, 0.0]]), "lab")
    assert np.all(np.isfinite(out))
    assert out.min() < 0.0 or out.max() > 1.0


@pytest.mark.parametrize("func", [to_space, from_space, rgb8_to_space, space_to_rgb8])
def test_unknown_space(func: Callable[..., np.ndarray]) -> None:
    with pytest.raises(ValueError, match="unknown color space"):
        func(np.zeros((1, 3)), "hsv")


# --- 8-bit helpers --------------------------------------------------------------------


def test_rgb8_to_space_scales_by_255() -> None:
    x = np.array([[0, 128, 255]], dtype=np.uint8)
    np.testing.assert_allclose(rgb8_to_space(x, "rgb"), [[0.0, 128 / 255, 1.0]])
    np.testing.assert_allclose(rgb8_to_space(x, "lab"), srgb_to_lab(x / 255.0))


@pytest.mark.parametrize("space", SPACES)
def test_rgb8_round_trip_is_exact(space: str) -> None:
    rng = np.random.default_rng(2024)
    sample = rng.integers(0, 256, size=(100_000, 3), dtype=np.uint8)
    grays = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    corners = np.array(
        [[r, g, b] for r in (0, 255) for g in (0, 255) for b in (0, 255)], dtype=np.uint8
    )
    x = np.concatenate([sample, grays, corners])
    back = space_to_rgb8(rgb8_to_space(x, space), space)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, x)


def test_space_to_rgb8_clips_and_rounds() -> None:
    pts = np.array([[-0.1, 1.2, 0.5], [0.4 / 255, 1.49 / 255, 254.6 / 255]])
    np.testing.assert_array_equal(space_to_rgb8(pts, "rgb"), [[0, 255, 128], [0, 1, 255]])


def test_space_to_rgb8_out_of_gamut_lab() -> None:
    out = space_to_rgb8(np.array([[50.0, 200.0, -200.0], [150.0, 0.0, 0.0]]), "lab")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[1], [255, 255, 255])


@pytest.mark.parametrize("space", ["rgb", "lab", "oklab"])
def test_rgb8_to_space_is_bit_for_bit_the_float_conversion(space: str) -> None:
    # Every level of every channel, plus random colors: the lookup table of
    # the transfer curve must give exactly the numbers of the direct formula.
    rng = np.random.default_rng(5)
    levels = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    rgb8 = np.concatenate([levels, rng.integers(0, 256, (5000, 3), dtype=np.uint8)])
    expected = to_space(rgb8 / 255.0, space)
    assert np.array_equal(rgb8_to_space(rgb8, space), expected)
    column = rgb8.reshape(-1, 1, 3)
    assert np.array_equal(rgb8_to_space(column, space), to_space(column / 255.0, space))
    assert np.array_equal(rgb8_to_space(rgb8.astype(np.int64), space), expected)


def test_rgb8_to_lab_matches_srgb_to_lab() -> None:
    rgb8 = np.array([[0, 0, 0], [255, 255, 255], [10, 200, 30]], np.uint8)
    assert np.array_equal(rgb8_to_lab(rgb8), srgb_to_lab(rgb8 / 255.0))


def test_rgb8_to_space_rejects_bad_shapes_and_spaces() -> None:
    with pytest.raises(ValueError):
        rgb8_to_space(np.zeros((2, 4), np.uint8), "lab")
    with pytest.raises(ValueError):
        rgb8_to_space(np.zeros((2, 3), np.uint8), "hsv")


def test_linear_rgb_is_one_registry_entry_that_round_trips(random_rgb: np.ndarray) -> None:
    from quantize.colors import COLOR_SPACES, from_space, rgb8_to_space

    space = COLOR_SPACES["linear-rgb"]
    np.testing.assert_allclose(space.to_srgb(space.from_srgb(random_rgb)), random_rgb, atol=1e-12)
    # Mid gray is about a fifth of the light of white, not half.
    np.testing.assert_allclose(
        rgb8_to_space(np.array([[128, 128, 128]], np.uint8), "linear-rgb"),
        [[0.2158605] * 3],
        atol=1e-6,
    )
    points = rgb8_to_space(np.array([[0, 64, 255]], np.uint8), "linear-rgb")
    np.testing.assert_allclose(from_space(points, "linear-rgb") * 255, [[0, 64, 255]], atol=1e-9)


def test_the_command_clusters_in_linear_rgb(tmp_path: Path) -> None:
    from tests.helpers import SAMPLES, run_cli

    code, out = run_cli(
        SAMPLES / "flower.jpg", "-k", "8", "--space", "linear-rgb", "-o", f"{tmp_path}/"
    )
    assert code == 0, out
    report = json.loads((tmp_path / "flower-k8.json").read_text())
    assert report["space"] == "linear-rgb" and len(report["colors"]) == 8
