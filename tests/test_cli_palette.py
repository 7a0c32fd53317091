"""Palette files, swatch, pixel plot, --sort, --no-image and the report metrics, end to end.

GPL and ASE are read back with the small readers below, written from the
format descriptions rather than with quantize's own parsers, so a bug shared
by an exporter and its reader cannot hide.
"""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from quantize import outputs, pipeline, render
from quantize.colors import srgb_to_lab
from quantize.imageio import Frame
from quantize.metrics import ciede2000
from quantize.palette import Palette
from quantize.plots import PLOT_SIZE_PX
from tests.helpers import run_cli as run

RGB = tuple[int, int, int]
ALL_FORMATS = "json,gpl,css,ase,txt"
CSS_PROPERTY = re.compile(r"--color-(\d+):\s*(#[0-9a-f]{6});\s*/\*\s*([0-9.]+)%\s*\*/")


def report_of(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def report_colors(report: dict[str, Any]) -> list[RGB]:
    return [(c["rgb"][0], c["rgb"][1], c["rgb"][2]) for c in report["colors"]]


def read_gpl(text: str) -> list[RGB]:
    lines = text.splitlines()
    assert lines[0] == "GIMP Palette"
    colors = []
    for line in lines[1:]:
        if line.startswith(("#", "Name:", "Columns:")) or not line.strip():
            continue
        r, g, b = (int(v) for v in line.split()[:3])
        colors.append((r, g, b))
    return colors


def read_ase(data: bytes) -> list[RGB]:
    """Colors of an ASE 1.0 file: 'ASEF', u16 version x2, u32 blocks, then typed blocks."""
    assert data[:4] == b"ASEF"
    major, _minor, n_blocks = struct.unpack(">HHI", data[4:12])
    assert major == 1
    colors, pos = [], 12
    for _ in range(n_blocks):
        kind, length = struct.unpack(">HI", data[pos : pos + 6])
        body = data[pos + 6 : pos + 6 + length]
        pos += 6 + length
        if kind == 0x0001:  # color entry: u16 name length (UTF-16 units), name, model, floats
            (units,) = struct.unpack(">H", body[:2])
            model_at = 2 + 2 * units
            assert body[model_at : model_at + 4] == b"RGB "
            values = struct.unpack(">fff", body[model_at + 4 : model_at + 16])
            r, g, b = (round(v * 255) for v in values)
            colors.append((r, g, b))
    assert pos == len(data)
    return colors


def image_palette_in_use(path: Path) -> tuple[list[RGB], NDArray[np.int64]]:
    """An indexed image's palette entries in index order, and the pixel count of each."""
    with Image.open(path) as img:
        assert img.mode == "P"
        flat = img.getpalette() or []
        indices = np.asarray(img).ravel()
    n = int(indices.max()) + 1
    entries = [(flat[3 * i], flat[3 * i + 1], flat[3 * i + 2]) for i in range(n)]
    return entries, np.bincount(indices, minlength=n)


def pixel_set(path: Path) -> set[RGB]:
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB")).reshape(-1, 3)
    return {(r, g, b) for r, g, b in np.unique(rgb, axis=0).tolist()}


# --------------------------------------------------------------------------- #
# Palette files and --sort
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("sort", ["count", "hue", "lightness"])
def test_every_palette_file_has_the_report_colors_in_the_report_order(
    photo: Path, sort: str
) -> None:
    code, out = run(photo, "-k", "8", "--palette-format", ALL_FORMATS, "--sort", sort)
    assert code == 0, out
    stem = photo.with_name("photo-k8")
    report = report_of(stem.with_suffix(".json"))
    assert report["sort"] == sort
    colors = report_colors(report)
    assert len(colors) == 8
    assert read_gpl(stem.with_suffix(".gpl").read_text()) == colors
    assert read_ase(stem.with_suffix(".ase").read_bytes()) == colors
    hexes = [c["hex"] for c in report["colors"]]
    assert stem.with_suffix(".txt").read_text() == "".join(f"{h}\n" for h in hexes)
    css = CSS_PROPERTY.findall(stem.with_suffix(".css").read_text())
    assert [int(n) for n, _, _ in css] == list(range(1, 9))
    assert [h for _, h, _ in css] == hexes
    shares = [float(p) for _, _, p in css]
    fractions = [c["fraction"] for c in report["colors"]]
    assert shares == pytest.approx([100 * f for f in fractions], abs=0.005 + 1e-9)
    # The order is the one asked for (each order itself is tested in test_palette).
    counts = [c["count"] for c in report["colors"]]
    assert Palette.from_colors(colors, counts).sorted(sort).hex == hexes  # type: ignore[arg-type]


@pytest.mark.parametrize("sort", ["count", "lightness"])
def test_png_palette_is_the_report_list_in_order(photo: Path, sort: str) -> None:
    assert run(photo, "-k", "6", "--sort", sort)[0] == 0
    report = report_of(photo.with_name("photo-k6.json"))
    entries, counts = image_palette_in_use(photo.with_name("photo-k6.png"))
    assert entries == report_colors(report)
    assert counts.tolist() == [c["count"] for c in report["colors"]]


def test_sort_lightness_orders_dark_to_light(photo: Path) -> None:
    assert run(photo, "-k", "8", "--sort", "lightness", "--palette-format", "txt,json")[0] == 0
    colors = np.array(report_colors(report_of(photo.with_name("photo-k8.json"))))
    lightness = srgb_to_lab(colors / 255.0)[:, 0]
    assert np.all(np.diff(lightness) > 0)


def test_palette_names_and_no_report(photo: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "small.gif"
    code, out = run(photo, "-k", "4", "-o", target, "--palette-format", "json,gpl", "--no-report")
    assert code == 0, out
    assert sorted(p.name for p in target.parent.iterdir()) == ["small.gif", "small.gpl"]
    assert "Name: small" in (target.parent / "small.gpl").read_text()


def test_palette_format_list_replaces_the_default(photo: Path) -> None:
    assert run(photo, "-k", "4", "--palette-format", "txt, css,txt")[0] == 0
    written = sorted(p.name for p in photo.parent.iterdir())
    assert written == ["photo-k4.css", "photo-k4.png", "photo-k4.txt", "photo.png"]


@pytest.mark.parametrize("value", ["pdf", "json,", "gpl,PNG", ""])
def test_unknown_palette_format_is_a_usage_error(photo: Path, value: str) -> None:
    code, out = run(photo, "--palette-format", value)
    assert code == 2
    assert "--palette-format" in out and "not a palette format" in out
    assert list(photo.parent.iterdir()) == [photo]


def test_existing_palette_file_is_refused_before_any_work(photo: Path) -> None:
    gpl = photo.with_name("photo-k16.gpl")
    gpl.write_text("mine")
    code, out = run(photo, "--palette-format", "json,gpl", "--swatch")
    assert code == 1
    assert f"{gpl}: already exists" in out
    assert gpl.read_text() == "mine"
    assert sorted(photo.parent.iterdir()) == sorted([photo, gpl])
    assert run(photo, "--palette-format", "json,gpl", "--force")[0] == 0
    assert gpl.read_text().startswith("GIMP Palette")


def test_same_seed_gives_identical_palette_files(photo: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        args = ("-k", "5", "--seed", "4", "--palette-format", "gpl,css,ase,txt", "--swatch")
        assert run(photo, *args, "-o", f"{tmp_path / name}/")[0] == 0
    for suffix in (".gpl", ".css", ".ase", ".txt", ".swatch.png"):
        name = f"photo-k5{suffix}"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


# --------------------------------------------------------------------------- #
# Swatch, plot, --no-image
# --------------------------------------------------------------------------- #


def test_swatch_is_a_png_holding_every_palette_color(photo: Path) -> None:
    assert run(photo, "-k", "7", "--swatch", "--sort", "hue")[0] == 0
    swatch = photo.with_name("photo-k7.swatch.png")
    with Image.open(swatch) as img:
        assert (img.format, img.size) == ("PNG", (1200, 200))
        bottom = np.asarray(img.convert("RGB"))[-1]
    colors = report_colors(report_of(photo.with_name("photo-k7.json")))
    assert set(colors) <= pixel_set(swatch)
    # Bands run left to right in report order.
    starts = np.flatnonzero(np.any(bottom[1:] != bottom[:-1], axis=1)) + 1
    assert [tuple(c) for c in bottom[np.concatenate(([0], starts))].tolist()] == colors


def test_no_image_writes_palette_swatch_and_plot_only(photo: Path) -> None:
    old_image = photo.with_name("photo-k5.png")
    old_image.write_bytes(b"not touched")  # not an output of this run, so not refused
    code, out = run(photo, "-k", "5", "--no-image", "--palette-format", "json,gpl", "--swatch")
    assert code == 0, out
    written = sorted(p.name for p in photo.parent.iterdir())
    expected = ["photo-k5.gpl", "photo-k5.json", "photo-k5.png", "photo-k5.swatch.png"]
    assert written == [*expected, "photo.png"]
    assert old_image.read_bytes() == b"not touched"
    report = report_of(photo.with_name("photo-k5.json"))
    assert report["image"] is None
    assert len(report["colors"]) == 5
    assert out.rstrip().endswith(f"-> {photo.with_name('photo-k5.json')}")


def test_no_image_with_nothing_else_is_a_usage_error(photo: Path) -> None:
    code, out = run(photo, "--no-image", "--no-report")
    assert code == 2
    assert "nothing to write" in out
    assert list(photo.parent.iterdir()) == [photo]


def test_plot_is_a_png_with_every_palette_color_and_a_titled_sample(
    china: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}
    real_render = render.render_pixel_plot

    def spy(original: NDArray[np.uint8], mapped: NDArray[np.uint8], *a: Any, **kw: Any) -> Any:
        seen.update(original=original, mapped=mapped, title=kw["title"])
        return real_render(original, mapped, *a, **kw)

    monkeypatch.setattr(render, "render_pixel_plot", spy)
    code, out = run(china, "-k", "8", "--plot", "--seed", "3")
    assert code == 0, out
    plot = china.with_name("china-k8.pixels.png")
    with Image.open(plot) as img:
        assert (img.format, img.size) == ("PNG", PLOT_SIZE_PX)
    report = report_of(china.with_name("china-k8.json"))
    colors = report_colors(report)
    assert set(colors) <= pixel_set(plot)
    assert seen["title"] == f"china.jpg — {report['distinct_colors']:,} distinct colors → k=8"
    # 10,000 of the image's pixels, each shown with the color it has in the output.
    source = np.asarray(Image.open(china).convert("RGB")).reshape(-1, 3)
    output = np.asarray(Image.open(china.with_name("china-k8.png")).convert("RGB")).reshape(-1, 3)
    where = np.random.default_rng(3).choice(len(source), 10_000, replace=False)
    where.sort()
    assert np.array_equal(seen["original"], source[where])
    assert np.array_equal(seen["mapped"], output[where])


def test_plot_samples_only_visible_pixels_with_their_output_colors() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 200, (40, 50, 3), dtype=np.uint8)
    alpha = np.full((40, 50), 255, dtype=np.uint8)
    alpha[:, :20] = 0
    rgb[alpha == 0] = (255, 0, 255)  # hidden color: must never be sampled
    alpha[0, 30] = 128  # partly visible counts as visible
    result = pipeline.quantize_image(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), colors=4)
    # Partial alpha is kept with per-entry tRNS: an indexed image with pair entries.
    assert result.image.mode == "P"
    frame = Frame(rgb, alpha)
    original, mapped = render.sample_visible_pixels(frame, result.image, 10_000, seed=0)
    visible = alpha > 0
    assert len(original) == visible.sum() == 40 * 30
    assert np.array_equal(original, rgb[visible])
    assert np.array_equal(mapped, np.asarray(result.image.convert("RGBA"))[..., :3][visible])
    few, few_mapped = render.sample_visible_pixels(frame, result.image, 100, seed=1)
    assert len(few) == len(few_mapped) == 100
    assert not np.any(np.all(few == (255, 0, 255), axis=1))
    palette = {tuple(c) for c in result.palette.colors.tolist()}
    assert {tuple(c) for c in few_mapped.tolist()} <= palette


def test_matplotlib_is_imported_only_for_plot(photo: Path) -> None:
    # A fresh interpreter, since this test process may have imported matplotlib already.
    code = f"""
import sys
from quantize.cli import quantize_command
def run(*args):
    try:
        quantize_command.main([{str(photo)!r}, "-q", "--force", *args])
    except SystemExit as exc:
        assert exc.code == 0, exc.code
run("--swatch", "--palette-format", "json,gpl,css,ase,txt")
assert "matplotlib" not in sys.modules, "plain run imported matplotlib"
run("--plot")
assert "matplotlib" in sys.modules
"""
    repo_root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=repo_root)
    assert photo.with_name("photo-k16.pixels.png").exists()


# --------------------------------------------------------------------------- #
# Report metrics against references
# --------------------------------------------------------------------------- #


def _gray_lightness(v: int) -> float:
    """CIELAB L* of the sRGB gray (v, v, v), from the sRGB and CIE formulas."""
    c = v / 255
    y = c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    return 116 * y ** (1 / 3) - 16 if y > (6 / 29) ** 3 else (29 / 3) ** 3 * y


def _gray_delta_e(v1: int, v2: int) -> float:
    """CIEDE2000 of two grays: a* = b* = 0 leaves only the lightness term ΔL / S_L."""
    l1, l2 = _gray_lightness(v1), _gray_lightness(v2)
    m = ((l1 + l2) / 2 - 50) ** 2
    return abs(l1 - l2) / (1 + 0.015 * m / math.sqrt(20 + m))


def test_report_metrics_by_hand(tmp_path: Path) -> None:
    # Grays 0, 0, 10, 255 with k=2: {0, 0, 10} -> mean 3.33 -> gray 3, and 255 stays.
    path = tmp_path / "grays.png"
    Image.fromarray(np.array([[0, 0], [10, 255]], dtype=np.uint8)).convert("RGB").save(path)
    code, out = run(path, "-k", "2")
    assert code == 0, out
    report = report_of(tmp_path / "grays-k2.json")
    assert report_colors(report) == [(3, 3, 3), (255, 255, 255)]
    assert [c["count"] for c in report["colors"]] == [3, 1]
    mse = (2 * 3**2 + 7**2) / 4
    de_0, de_10 = _gray_delta_e(0, 3), _gray_delta_e(10, 3)
    assert de_10 > de_0 > 0
    assert report["metrics"] == {
        "mse": 16.75,
        "psnr": round(10 * math.log10(255**2 / mse), 3),
        "delta_e_mean": round((2 * de_0 + de_10) / 4, 4),
        # Inverted CDF over 4 pixels: the 95th percentile is the largest value.
        "delta_e_p95": round(de_10, 4),
        "colors_used": 2,
    }
    assert f"mean ΔE {(2 * de_0 + de_10) / 4:.2f}" in out


def _pixelwise_metrics(original: NDArray[np.uint8], mapped: NDArray[np.uint8]) -> dict[str, Any]:
    """The report metrics recomputed pixel by pixel, (n, 3) uint8 each."""
    diff = original.astype(np.float64) - mapped
    mse = float(np.mean(diff**2))
    de = ciede2000(srgb_to_lab(original / 255.0), srgb_to_lab(mapped / 255.0))
    return {
        "mse": mse,
        "psnr": 10 * math.log10(255**2 / mse),
        "delta_e_mean": float(de.mean()),
        "delta_e_p95": float(np.percentile(de, 95, method="inverted_cdf")),
        "colors_used": len(np.unique(mapped, axis=0)),
    }


def _assert_report_metrics(report: dict[str, Any], expected: dict[str, Any]) -> None:
    got = report["metrics"]
    assert got["colors_used"] == expected["colors_used"] == len(report["colors"])
    assert got["psnr"] == pytest.approx(expected["psnr"], abs=5e-4 + 1e-9)
    for key in ("mse", "delta_e_mean", "delta_e_p95"):
        assert got[key] == pytest.approx(expected[key], abs=5e-5 + 1e-9), key


def test_report_metrics_equal_a_pixelwise_recomputation(china: Path) -> None:
    code, out = run(china, "-k", "12", "--sort", "hue")
    assert code == 0, out
    original = np.asarray(Image.open(china).convert("RGB")).reshape(-1, 3)
    with Image.open(china.with_name("china-k12.png")) as img:
        mapped = np.asarray(img.convert("RGB")).reshape(-1, 3)
    report = report_of(china.with_name("china-k12.json"))
    _assert_report_metrics(report, _pixelwise_metrics(original, mapped))
    assert f"mean ΔE {report['metrics']['delta_e_mean']:.2f}" in out


def test_report_metrics_cover_visible_pixels_only(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    rgba = rng.integers(0, 256, (48, 64, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[10:30, 5:40, 3] = 0
    rgba[40:, :, 3] = 90
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, "RGBA").save(path)
    assert run(path, "-k", "6")[0] == 0
    visible = rgba[..., 3] > 0
    with Image.open(tmp_path / "alpha-k6.png") as img:
        out = np.asarray(img.convert("RGBA"))
    report = report_of(tmp_path / "alpha-k6.json")
    assert report["pixels"] == visible.sum() and report["transparent_pixels"] == 20 * 35
    _assert_report_metrics(report, _pixelwise_metrics(rgba[visible][:, :3], out[visible][:, :3]))


# --------------------------------------------------------------------------- #
# Library level: output plan and quantize_image(sort=...)
# --------------------------------------------------------------------------- #


def test_plan_names_every_output_beside_the_image(tmp_path: Path) -> None:
    opts = pipeline.RunOptions(
        colors=8, palette_formats=("ase", "gpl"), swatch=True, plot=True, image=False
    )
    plan = outputs.plan_outputs(tmp_path / "a.b.jpg", None, opts)
    # A dotted input stem must survive in every name.
    assert plan.image == tmp_path / "a.b-k8.png" and not plan.write_image
    suffixes = [".json", ".ase", ".gpl", ".swatch.png", ".pixels.png"]
    assert plan.paths == [tmp_path / f"a.b-k8{s}" for s in suffixes]
    with pytest.raises(ValueError, match="unknown palette formats"):
        outputs.plan_outputs(tmp_path / "a.jpg", None, pipeline.RunOptions(palette_formats=("x",)))


def test_quantize_image_sort_reorders_palette_and_image_together() -> None:
    from tests.helpers import gradient_rgb

    by_count = pipeline.quantize_image(gradient_rgb(), colors=6)
    by_hue = pipeline.quantize_image(gradient_rgb(), colors=6, sort="hue")
    assert by_hue.palette == by_count.palette.sorted("hue")
    assert np.array_equal(
        np.asarray(by_hue.image.convert("RGB")), np.asarray(by_count.image.convert("RGB"))
    )
    assert by_hue.metrics == by_count.metrics
    with pytest.raises(ValueError, match="sort must be one of"):
        pipeline.quantize_image(gradient_rgb(), colors=6, sort="size")  # type: ignore[arg-type]


def test_fully_transparent_input_is_a_one_line_error(tmp_path: Path) -> None:
    path = tmp_path / "clear.png"
    Image.new("RGBA", (8, 8), (10, 20, 30, 0)).save(path)
    code, out = run(path, "--swatch")
    assert code == 1
    assert (
        out.strip()
        == f"quantize: error: {path}: every pixel is fully transparent: nothing to quantize"
    )
    assert list(tmp_path.iterdir()) == [path]
