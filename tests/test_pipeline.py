"""The library entry point: quantize_image, fit_palette, apply_palette, output planning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from quantize import QuantizeResult, quantize_image
from quantize.histogram import color_table, pack_rgb
from quantize.imageio import Frame, LoadedImage
from quantize.outputs import plan_outputs
from quantize.palette import Palette
from quantize.pipeline import RunOptions, apply_palette, fit_palette
from tests.helpers import gradient_rgb


def used_colors(result: QuantizeResult) -> NDArray[np.uint8]:
    img = result.image
    flat = np.asarray(img.getpalette(), dtype=np.uint8).reshape(-1, 3)
    return flat[np.unique(np.asarray(img))]


def test_palette_is_exactly_the_colors_in_the_image() -> None:
    result = quantize_image(gradient_rgb(), colors=10, seed=1)
    assert result.image.mode == "P"
    assert result.palette.size <= 10
    used = used_colors(result)
    assert {tuple(c) for c in used} == {tuple(c) for c in result.palette.colors}
    assert result.palette.counts.sum() == 96 * 64
    assert list(result.palette.counts) == sorted(result.palette.counts, reverse=True)


def test_metrics_match_a_pixelwise_recomputation() -> None:
    src = gradient_rgb()
    result = quantize_image(src, colors=6)
    a = np.asarray(src, dtype=np.float64)
    b = np.asarray(result.image.convert("RGB"), dtype=np.float64)
    assert result.metrics.mse == pytest.approx(np.mean((a - b) ** 2), rel=1e-9)
    assert result.metrics.colors_used == result.palette.size


def test_labels_are_nearest_rounded_palette_color() -> None:
    table = color_table(pack_rgb(np.asarray(gradient_rgb()).reshape(-1, 3)))
    fit = fit_palette(table, 8, seed=0)
    colors = table.colors.astype(np.float64)
    pal = fit.palette.colors.astype(np.float64)
    d = ((colors[:, None, :] - pal[None, :, :]) ** 2).sum(-1)
    chosen = d[np.arange(len(colors)), fit.labels]
    assert np.all(chosen <= d.min(axis=1) + 1e-9)


def test_fewer_distinct_colors_than_k_warns_and_keeps_them_exactly() -> None:
    arr = np.zeros((10, 10, 3), np.uint8)
    arr[:5] = (200, 10, 10)
    arr[5:, :3] = (0, 0, 255)
    result = quantize_image(Image.fromarray(arr), colors=16)
    assert result.palette.size == 3
    assert {tuple(c) for c in result.palette.colors} == {(200, 10, 10), (0, 0, 255), (0, 0, 0)}
    assert result.metrics.mse == 0
    assert "requested 16 colors, image has 3" in result.warnings


def test_single_color_image() -> None:
    result = quantize_image(Image.new("RGB", (7, 5), (12, 34, 56)), colors=4)
    assert result.palette.hex == ["#0c2238"]
    assert result.palette.counts.tolist() == [35]


def test_same_seed_same_result_and_seed_is_used() -> None:
    a = quantize_image(gradient_rgb(), colors=12, seed=5)
    b = quantize_image(gradient_rgb(), colors=12, seed=5)
    assert a.palette == b.palette
    assert a.image.tobytes() == b.image.tobytes()


def test_transparent_pixels_take_no_palette_color_and_stay_transparent() -> None:
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., :3] = np.random.default_rng(0).integers(0, 256, (20, 20, 3))
    rgba[5:15, 5:15] = (10, 200, 30, 255)
    result = quantize_image(Image.fromarray(rgba), colors=4)
    assert result.palette.hex == ["#0ac81e"]
    assert result.transparent_pixels == 400 - 100
    out = np.asarray(result.image)
    clear = result.image.info["transparency"]
    assert np.all((out == clear) == (rgba[..., 3] == 0))
    report = result.report("x.png", "y.png")
    assert report["pixels"] == 100 and report["transparent_pixels"] == 300


def test_apply_palette_uses_only_given_colors_and_drops_unused() -> None:
    table = color_table(pack_rgb(np.asarray(gradient_rgb()).reshape(-1, 3)))
    given = Palette.from_colors([[0, 0, 0], [255, 255, 255], [255, 0, 0], [1, 2, 3]])
    fit = apply_palette(table, given)
    assert {tuple(c) for c in fit.palette.colors} <= {tuple(c) for c in given.colors}
    assert fit.palette.counts.sum() == table.n_pixels
    assert np.all(fit.palette.counts > 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"colors": 1}, "colors"),
        ({"colors": 257}, "colors"),
        ({"algorithm": "nope"}, "algorithm"),
        ({"n_init": 0}, "n_init"),
        ({"max_iter": 0}, "max_iter"),
        ({"space": "hsv"}, "space"),
    ],
)
def test_invalid_arguments_raise_value_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        quantize_image(gradient_rgb(), **kwargs)  # type: ignore[arg-type]


def test_plan_outputs(tmp_path: Path) -> None:
    src = tmp_path / "a" / "photo.jpg"
    opts = RunOptions(colors=8)
    assert plan_outputs(src, None, opts).image == tmp_path / "a" / "photo-k8.png"
    plan = plan_outputs(src, str(tmp_path / "out") + "/", RunOptions(colors=8, fmt="gif"))
    assert plan.image == tmp_path / "out" / "photo-k8.gif"
    assert plan.report == tmp_path / "out" / "photo-k8.json"
    plan = plan_outputs(src, str(tmp_path / "x.TIF"), RunOptions(report=False))
    assert (plan.image.name, plan.fmt, plan.report) == ("x.TIF", "tiff", None)


def test_frames_with_alpha_map_every_visible_pixel_to_its_own_color() -> None:
    # Few colors and k large enough: every visible pixel must come back
    # exactly, in every frame, whatever the frames' visible masks are.
    rng = np.random.default_rng(3)
    colors = rng.integers(0, 256, (12, 3), dtype=np.uint8)
    frames = []
    for seed in (1, 2, 3):
        picks = np.random.default_rng(seed).integers(0, 12, (16, 24))
        alpha = np.where(np.random.default_rng(seed + 9).random((16, 24)) < 0.3, 0, 255)
        frames.append(Frame(colors[picks], alpha.astype(np.uint8) if seed != 2 else None, 40))
    result = quantize_image(LoadedImage(frames, 24, 16, loop=0), colors=16)
    for frame, out in zip(frames, result.frames, strict=True):
        rgba = np.asarray(out.convert("RGBA"))
        shown = np.ones((16, 24), bool) if frame.alpha is None else frame.alpha > 0
        np.testing.assert_array_equal(rgba[shown][:, :3], frame.rgb[shown])
        assert np.all(rgba[..., 3][~shown] == 0)
