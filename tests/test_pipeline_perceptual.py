"""Dithering, perceptual color spaces and automatic k in the library."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from quantize import QuantizeResult, quantize_image
from quantize.autok import Target, smallest_k
from quantize.colors import rgb8_to_space
from quantize.dither import bayer_matrix, dither_indices, palette_spread
from quantize.histogram import color_table, pack_rgb
from quantize.metrics import ciede2000
from quantize.pipeline import fit_palette
from tests.helpers import SAMPLES, gradient_rgb


def pixels(result: QuantizeResult) -> NDArray[np.uint8]:
    return np.asarray(result.image.convert("RGB"))


def used_palette_colors(img: Image.Image) -> set[tuple[int, ...]]:
    flat = np.asarray(img.getpalette(), dtype=np.uint8).reshape(-1, 3)
    return {tuple(int(v) for v in c) for c in flat[np.unique(np.asarray(img))]}


def pixelwise_mse_and_delta_e(src: Image.Image, result: QuantizeResult) -> tuple[float, float]:
    a = np.asarray(src.convert("RGB"))
    b = pixels(result)
    mse = float(np.mean((a.astype(np.float64) - b) ** 2))
    de = ciede2000(rgb8_to_space(a, "lab"), rgb8_to_space(b, "lab"))
    return mse, float(de.mean())


def local_error(src: Image.Image, result: QuantizeResult) -> float:
    """MSE between 7x7 box-blurred input and output: what the eye sees from afar."""
    a = np.asarray(src.convert("RGB").filter(ImageFilter.BoxBlur(3)), dtype=np.float64)
    b = np.asarray(result.image.convert("RGB").filter(ImageFilter.BoxBlur(3)), dtype=np.float64)
    return float(np.mean((a - b) ** 2))


# --------------------------------------------------------------------------
# Dithering


@pytest.mark.parametrize("space", ["rgb", "oklab"])
def test_floyd_steinberg_keeps_palette_exact_and_changes_pixels(space: str) -> None:
    src = gradient_rgb()
    plain = quantize_image(src, 6, space=space)
    dithered = quantize_image(src, 6, space=space, dither="floyd-steinberg")
    # Same clustering, so the same colors; dithering only moves pixels between them.
    assert {tuple(c) for c in dithered.palette.colors} <= {tuple(c) for c in plain.palette.colors}
    assert used_palette_colors(dithered.image) == {tuple(c) for c in dithered.palette.colors}
    changed = np.any(pixels(plain) != pixels(dithered), axis=-1)
    assert changed.mean() > 0.1
    # What dithering is for: local averages of the output follow the input better.
    assert local_error(src, dithered) < 0.95 * local_error(src, plain)
    assert dithered.settings["dither"] == "floyd-steinberg"


def test_dithered_counts_and_metrics_describe_the_output_pixels() -> None:
    src = gradient_rgb()
    result = quantize_image(src, 5, dither="floyd-steinberg")
    out = pixels(result)
    keys, counts = np.unique(pack_rgb(out).ravel(), return_counts=True)
    palette_keys = pack_rgb(result.palette.colors).tolist()
    listed = dict(zip(palette_keys, result.palette.counts.tolist(), strict=True))
    assert listed == dict(zip(keys.tolist(), counts.tolist(), strict=True))
    assert list(result.palette.counts) == sorted(result.palette.counts, reverse=True)
    mse, de = pixelwise_mse_and_delta_e(src, result)
    assert result.metrics.mse == pytest.approx(mse, rel=1e-9)
    # ΔE of tables runs in float32 (metrics._ciede2000): 4 decimals hold.
    assert result.metrics.delta_e_mean == pytest.approx(de, abs=1e-5)
    assert result.metrics.colors_used == result.palette.size


def test_ordered_strength_zero_is_the_plain_mapping_and_more_strength_dithers_more() -> None:
    src = Image.open(SAMPLES / "china.jpg").convert("RGB")
    plain = quantize_image(src, 16, space="lab")
    runs = {
        s: quantize_image(src, 16, space="lab", dither="ordered", dither_strength=s)
        for s in (0.0, 0.5, 1.0)
    }
    assert np.array_equal(pixels(runs[0.0]), pixels(plain))
    assert runs[0.0].metrics.to_dict() == plain.metrics.to_dict()
    changed = {s: np.any(pixels(r) != pixels(plain), axis=-1).mean() for s, r in runs.items()}
    assert 0.05 < changed[0.5] < changed[1.0]
    full = runs[1.0]
    assert local_error(src, full) < 0.8 * local_error(src, plain)
    assert used_palette_colors(full.image) == {tuple(c) for c in full.palette.colors}
    mse, _ = pixelwise_mse_and_delta_e(src, full)
    assert full.metrics.mse == pytest.approx(mse, rel=1e-9)
    assert full.settings["dither_strength"] == 1.0


@pytest.mark.parametrize("method", ["floyd-steinberg", "ordered"])
def test_dithering_keeps_transparent_pixels_transparent(method: str) -> None:
    sprite = Image.open(SAMPLES / "sprite.png")
    alpha = np.asarray(sprite)[..., 3]
    result = quantize_image(sprite, 8, dither=method)  # type: ignore[arg-type]
    img = result.image
    assert img.mode == "P"
    clear = img.info["transparency"]
    assert clear == result.palette.size
    indices = np.asarray(img)
    assert np.array_equal(indices == clear, alpha == 0)
    assert result.transparent_pixels == int((alpha == 0).sum())
    assert int(result.palette.counts.sum()) == int((alpha > 0).sum())


def test_dither_indices_floyd_steinberg_uses_only_the_given_palette() -> None:
    rgb = np.asarray(gradient_rgb())
    palette = np.array([[250, 250, 250], [10, 200, 30], [120, 5, 90]], dtype=np.uint8)
    idx = dither_indices(rgb, palette, "floyd-steinberg")
    assert idx.shape == rgb.shape[:2]
    assert set(np.unique(idx).tolist()) == {0, 1, 2}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dither": "floyd-steinberg", "dither_strength": 0.5}, "no strength"),
        ({"dither": "ordered", "dither_strength": 1.5}, "between 0 and 1"),
        ({"dither": "atkinson"}, "dither must be one of"),
        ({"target": Target("psnr", 30.0)}, "needs colors='auto'"),
    ],
)
def test_invalid_perceptual_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        quantize_image(gradient_rgb(), 4, **kwargs)  # type: ignore[arg-type]


def test_bayer_matrix_holds_every_threshold_once() -> None:
    m = bayer_matrix(3)
    assert m.shape == (8, 8)
    assert np.array_equal(np.sort(m.ravel()), (np.arange(64) + 0.5) / 64)
    assert np.array_equal(bayer_matrix(1), (np.array([[0, 2], [3, 1]]) + 0.5) / 4)


def test_palette_spread_is_median_nearest_neighbor_distance() -> None:
    palette = np.array([[0, 0, 0], [3, 4, 0], [100, 100, 100]], dtype=np.uint8)
    nearest = [5.0, 5.0, float(np.linalg.norm([97, 96, 100]))]
    assert palette_spread(palette) == pytest.approx(float(np.median(nearest)))
    assert palette_spread(palette[:1]) == 0.0


# --------------------------------------------------------------------------
# Color spaces


@pytest.mark.parametrize("space", ["lab", "oklab"])
def test_perceptual_fit_labels_are_nearest_rounded_color_in_that_space(space: str) -> None:
    table = color_table(pack_rgb(np.asarray(gradient_rgb()).reshape(-1, 3)))
    fit = fit_palette(table, 8, seed=0, space=space)
    points = rgb8_to_space(table.colors, space)
    targets = rgb8_to_space(fit.palette.colors, space)
    d = ((points[:, None, :] - targets[None, :, :]) ** 2).sum(-1)
    chosen = d[np.arange(len(points)), fit.labels]
    assert np.all(chosen <= d.min(axis=1) + 1e-12)
    assert fit.palette.colors.dtype == np.uint8


def test_lab_clustering_lowers_mean_delta_e_on_a_photo() -> None:
    photo = Image.open(SAMPLES / "flower.jpg")
    rgb = quantize_image(photo, 16, space="rgb")
    lab = quantize_image(photo, 16, space="lab")
    assert lab.settings["space"] == "lab"
    assert lab.metrics.delta_e_mean < rgb.metrics.delta_e_mean
    # ...and rgb, which minimizes squared sRGB error, keeps the lower MSE.
    assert rgb.metrics.mse < lab.metrics.mse


# --------------------------------------------------------------------------
# Automatic k


def test_smallest_k_bisects_and_verifies_its_neighbor() -> None:
    calls: list[int] = []

    def evaluate(k: int) -> int:
        calls.append(k)
        return k

    search = smallest_k(evaluate, lambda v: v >= 37, 2, 256)
    assert search.chosen == 37 and search.met and search.result == 37
    assert (36, False) in search.tried and (37, True) in search.tried
    assert calls[0] == 256
    assert calls == [k for k, _ in search.tried]
    assert len(calls) == len(set(calls)) <= 10


def test_smallest_k_uses_upper_bound_when_nothing_meets_the_target() -> None:
    search = smallest_k(lambda k: k, lambda v: False, 2, 256)
    assert (search.chosen, search.met, search.tried) == (256, False, [(256, False)])


def test_smallest_k_lower_bound_can_be_chosen() -> None:
    search = smallest_k(lambda k: k, lambda v: True, 2, 256)
    assert (search.chosen, search.met) == (2, True)


@pytest.mark.parametrize("target", [Target("psnr", 30.0), Target("delta_e", 4.0)])
def test_auto_k_meets_the_target_and_k_minus_one_does_not(target: Target) -> None:
    src = gradient_rgb()
    result = quantize_image(src, "auto", target=target, seed=3)
    search = result.k_auto
    assert search is not None and search.met
    k = search.chosen
    assert 2 < k < 256
    assert target.met_by(result.metrics)
    again = quantize_image(src, k, seed=3)
    assert again.metrics == result.metrics
    below = quantize_image(src, k - 1, seed=3)
    assert not target.met_by(below.metrics)
    report = result.report(None, None)
    assert report["colors_requested"] == "auto"
    assert report["k_auto"]["chosen"] == k
    assert report["k_auto"]["met"] is True
    assert report["k_auto"]["target"] == target.to_dict()
    assert {t["k"] for t in report["k_auto"]["tried"]} >= {k - 1, k}


def test_auto_k_with_dithering_judges_the_dithered_output() -> None:
    src = gradient_rgb()
    target = Target("psnr", 28.0)
    result = quantize_image(src, "auto", target=target, dither="floyd-steinberg")
    assert result.k_auto is not None and result.k_auto.met
    k = result.k_auto.chosen
    assert quantize_image(src, k, dither="floyd-steinberg").metrics == result.metrics
    below = quantize_image(src, k - 1, dither="floyd-steinberg")
    assert not target.met_by(below.metrics)
    mse, _ = pixelwise_mse_and_delta_e(src, result)
    assert result.metrics.mse == pytest.approx(mse, rel=1e-9)


def test_auto_k_unreachable_target_uses_256_and_says_so() -> None:
    result = quantize_image(gradient_rgb(), "auto", target=Target("psnr", 80.0))
    assert result.k_auto is not None
    assert (result.k_auto.chosen, result.k_auto.met) == (256, False)
    report = result.report(None, None)["k_auto"]
    assert report["met"] is False and [t["k"] for t in report["tried"]] == [256]


def test_auto_k_never_tries_more_colors_than_the_image_has() -> None:
    arr = np.zeros((8, 8, 3), np.uint8)
    arr[:, :3] = (250, 0, 0)
    arr[:, 3:5] = (0, 0, 250)
    result = quantize_image(Image.fromarray(arr), "auto")
    assert result.k_auto is not None
    assert max(k for k, _, _ in result.k_auto.tried) == 3
    assert result.k_auto.chosen == 3 and result.metrics.mse == 0.0


def test_report_records_space_dither_and_no_auto_for_a_fixed_k() -> None:
    report = quantize_image(gradient_rgb(), 4, space="oklab").report(None, None)
    assert report["space"] == "oklab"
    assert report["dither"] == "none" and report["dither_strength"] is None
    assert report["k_auto"] is None
    assert report["colors_requested"] == 4


def test_fit_palette_with_preconverted_points_gives_the_same_fit() -> None:
    table = color_table(pack_rgb(np.asarray(gradient_rgb()).reshape(-1, 3)))
    points = rgb8_to_space(table.colors, "oklab")
    given = fit_palette(table, 8, seed=2, space="oklab", points=points)
    derived = fit_palette(table, 8, seed=2, space="oklab")
    assert np.array_equal(given.palette.colors, derived.palette.colors)
    assert np.array_equal(given.labels, derived.labels)
