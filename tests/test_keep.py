"""Kept colors (--keep, quantize_image(keep=...), KMeans(fixed_centers=...))."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from quantize import KMeans, quantize_image
from quantize import colors as cs
from quantize.cluster import cluster_table
from quantize.histogram import pack_rgb
from quantize.imageio import load_image
from quantize.metrics import palette_metrics
from quantize.palette import Palette
from quantize.palette_formats import read_palette
from quantize.pipeline import apply_palette, fit_palette, visible_table

from .helpers import SAMPLES, gradient_rgb, run_cli

KEEP = "#ffffff,#000000,#d01c2c"
KEEP_RGB = [(255, 255, 255), (0, 0, 0), (0xD0, 0x1C, 0x2C)]


def _image_palette(path: Path) -> set[tuple[int, int, int]]:
    with Image.open(path) as img:
        assert img.mode == "P"
        flat = img.getpalette("RGB") or []
        used = sorted(set(np.asarray(img).ravel().tolist()))
    return {tuple(flat[3 * i : 3 * i + 3]) for i in used} | {
        tuple(flat[3 * i : 3 * i + 3]) for i in range(len(flat) // 3)
    }


def _hexes(rgb: list[tuple[int, int, int]]) -> set[str]:
    return {"#{:02x}{:02x}{:02x}".format(*c) for c in rgb}


@pytest.mark.parametrize(
    "extra",
    [
        ["--space", "rgb"],
        ["--space", "lab"],
        ["--space", "oklab", "--dither"],
        ["--dither", "--dither-method", "ordered"],
    ],
)
def test_kept_colors_are_exactly_in_the_image_and_every_palette_file(
    photo: Path, tmp_path: Path, extra: list[str]
) -> None:
    out = tmp_path / "out"
    code, output = run_cli(
        photo, "-k", "8", "--keep", KEEP, "-o", f"{out}/",
        "--palette-format", "json,gpl,css,ase,txt", *extra,
    )  # fmt: skip
    assert code == 0, output
    stem = out / "photo-k8"
    assert set(KEEP_RGB) <= _image_palette(stem.with_suffix(".png"))
    for suffix in (".json", ".gpl", ".ase", ".txt"):
        colors = {tuple(c) for c in read_palette(stem.with_suffix(suffix)).colors.tolist()}
        assert set(KEEP_RGB) <= colors, suffix
    css = set(re.findall(r"#[0-9a-f]{6}", stem.with_suffix(".css").read_text()))
    assert _hexes(KEEP_RGB) <= css
    report = json.loads(stem.with_suffix(".json").read_text())
    assert report["keep"] == ["#ffffff", "#000000", "#d01c2c"]
    kept = {c["hex"] for c in report["colors"] if c["kept"]}
    assert kept == _hexes(KEEP_RGB)
    assert len(report["colors"]) <= 8
    assert sum(c["count"] for c in report["colors"]) == report["pixels"]


def test_a_kept_color_no_pixel_uses_stays_with_count_zero_and_a_warning() -> None:
    # Bluish pixels only: pure green is nearest to none of them, dark blue to many.
    rng = np.random.default_rng(0)
    pixels = np.clip(rng.normal((40, 60, 200), 20, size=(40, 40, 3)), 0, 255).astype(np.uint8)
    result = quantize_image(Image.fromarray(pixels), 6, keep=[(0, 255, 0), (30, 50, 180)])
    report = result.report(None, None)
    entry = {c["hex"]: c for c in report["colors"]}
    assert entry["#00ff00"]["kept"] and entry["#1e32b4"]["kept"]
    assert entry["#00ff00"]["count"] == 0 and entry["#1e32b4"]["count"] > 0
    assert result.warnings == ["kept color #00ff00 is used by no pixel"]
    assert sum(not c["kept"] for c in report["colors"]) == 4
    assert result.palette.size == 6
    assert result.image.getpalette("RGB")[: 3 * 6] == result.palette.colors.ravel().tolist()


def test_nothing_kept_is_the_same_result_as_no_keep(photo: Path) -> None:
    plain = quantize_image(photo, 8, seed=3)
    for keep in (None, [], np.empty((0, 3), np.uint8)):
        same = quantize_image(photo, 8, seed=3, keep=keep)
        assert same.palette == plain.palette
        assert same.image.tobytes() == plain.image.tobytes()
        assert same.report("a", "b") == plain.report("a", "b")
        assert "keep" not in same.report("a", "b")


def _baseline_mse(path: Path, k: int, keep: np.ndarray, seed: int) -> float:
    """Kept colors plus an unconstrained palette of k - n colors, every pixel to its nearest."""
    table, _ = visible_table(load_image(path))
    free = fit_palette(table, k - len(keep), seed=seed).palette.colors
    colors = np.concatenate([keep, free])
    _, first = np.unique(pack_rgb(colors), return_index=True)
    union = Palette.from_colors(colors[np.sort(first)])
    fit = apply_palette(table, union)
    return palette_metrics(table.colors, table.counts, fit.palette.colors, fit.labels).mse


@pytest.mark.parametrize(
    ("name", "seed"), [("china.jpg", 0), ("flower.jpg", 1), ("gradient", 2), ("gradient", 3)]
)
def test_kept_fit_is_never_worse_than_kept_plus_an_unconstrained_palette(
    name: str, seed: int, tmp_path: Path
) -> None:
    if name == "gradient":
        path = tmp_path / "g.png"
        gradient_rgb(160, 120, seed=seed + 7).save(path)
    else:
        path = SAMPLES / name
    rng = np.random.default_rng(seed)
    for k, n in ((6, 2), (16, 3)):
        keep = rng.integers(0, 256, size=(n, 3)).astype(np.uint8)
        mse = quantize_image(path, k, seed=seed, keep=keep).metrics.mse
        assert mse <= _baseline_mse(path, k, keep, seed), (k, n)


def test_auto_k_counts_the_kept_colors(photo: Path) -> None:
    keep = np.array(KEEP_RGB, np.uint8)
    result = quantize_image(photo, "auto", keep=keep)
    assert result.k_auto is not None
    assert all(k >= 3 for k, *_ in result.k_auto.tried)
    assert set(KEEP_RGB) <= {tuple(c) for c in result.palette.colors.tolist()}


def test_as_many_kept_colors_as_k_gives_exactly_them(photo: Path) -> None:
    result = quantize_image(photo, 3, keep=KEEP_RGB)
    assert {tuple(c) for c in result.palette.colors.tolist()} == set(KEEP_RGB)


def test_transparent_pixels_and_kept_colors(tmp_path: Path) -> None:
    rgba = np.asarray(gradient_rgb().convert("RGBA")).copy()
    rgba[:10, :, 3] = 0
    path = tmp_path / "t.png"
    Image.fromarray(rgba, "RGBA").save(path)
    result = quantize_image(path, 5, keep=[(0, 0, 0), (250, 250, 250)])
    assert {(0, 0, 0), (250, 250, 250)} <= {tuple(c) for c in result.palette.colors.tolist()}
    assert result.transparent_pixels == 960


def test_shared_palette_keeps_the_colors_in_palette_json_and_every_image(
    photo: Path, tmp_path: Path
) -> None:
    second = photo.with_name("other.png")
    gradient_rgb(seed=5).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(second)
    out = tmp_path / "out"
    code, output = run_cli(photo, second, "-k", "6", "--keep", KEEP, "--shared-palette",
                           "-o", f"{out}/")  # fmt: skip
    assert code == 0, output
    shared = json.loads((out / "palette.json").read_text())
    assert {c["hex"] for c in shared["colors"] if c["kept"]} == _hexes(KEEP_RGB)
    for stem in ("photo-k6", "other-k6"):
        report = json.loads((out / f"{stem}.json").read_text())
        assert {c["hex"] for c in report["colors"] if c["kept"]} == _hexes(KEEP_RGB)
        assert set(KEEP_RGB) <= _image_palette(out / f"{stem}.png")


def test_keep_from_a_palette_file(photo: Path, tmp_path: Path) -> None:
    gpl = tmp_path / "brand.gpl"
    gpl.write_text("GIMP Palette\nName: brand\n#\n208 28 44 red\n255 255 255 white\n")
    code, output = run_cli(photo, "-k", "5", "--keep", f"@{gpl}", "-o", f"{tmp_path}/o/")
    assert code == 0, output
    report = json.loads((tmp_path / "o" / "photo-k5.json").read_text())
    assert report["keep"] == ["#d01c2c", "#ffffff"]


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        ("#ffffff,#000000,#ff0000", "3 kept colors do not fit in -k 2"),
        ("#ffffff,#FFFFFF", "given twice"),
        ("#ffffff,red", "'red' is not a color"),
        ("#12345g", "is not a color"),
        ("@/nonexistent/keep.txt", "cannot read palette file"),
    ],
)
def test_bad_keep_is_a_usage_error(photo: Path, tmp_path: Path, keep: str, message: str) -> None:
    code, output = run_cli(photo, "-k", "2", "--keep", keep, "-o", f"{tmp_path}/o/")
    assert code == 2
    assert message in output
    assert not (tmp_path / "o").exists()


def test_library_rejects_bad_keep(photo: Path) -> None:
    with pytest.raises(ValueError, match="given twice"):
        quantize_image(photo, 4, keep=[(1, 2, 3), (1, 2, 3)])
    with pytest.raises(ValueError, match="only 2 palette colors"):
        quantize_image(photo, 2, keep=[(1, 2, 3), (4, 5, 6), (7, 8, 9)])
    with pytest.raises(ValueError, match=r"0\.\.255"):
        quantize_image(photo, 4, keep=[(1, 2, 300)])
    with pytest.raises(ValueError, match="shape"):
        quantize_image(photo, 4, keep=[(1, 2)])


# --------------------------------------------------------------------------
# The core: fixed centers.


def test_kmeans_fixed_centers_stay_and_beat_the_baseline() -> None:
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 0.3, size=(200, 2)) for c in ((0, 0), (3, 0), (0, 3))])
    fixed = np.array([[10.0, 10.0], [1.5, 1.5]])
    km = KMeans(5, random_state=0, fixed_centers=fixed).fit(X)
    np.testing.assert_array_equal(km.cluster_centers_[:2], fixed)
    free = KMeans(3, random_state=0).fit(X).cluster_centers_
    union = np.concatenate([fixed, free])
    baseline = ((X[:, None] - union[None]) ** 2).sum(axis=2).min(axis=1).sum()
    assert km.inertia_ <= baseline * (1 + 1e-12)  # the same up to rounding, or lower
    assert km.labels_.max() < 5
    np.testing.assert_array_equal(km.predict(fixed), [0, 1])


def test_kmeans_fixed_centers_validation() -> None:
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match="only 2 clusters"):
        KMeans(2, fixed_centers=np.zeros((3, 2)) + np.arange(3)[:, None]).fit(X)
    with pytest.raises(ValueError, match="distinct"):
        KMeans(3, fixed_centers=[[0.0, 0.0], [0.0, 0.0]]).fit(X)
    with pytest.raises(ValueError, match="shape"):
        KMeans(3, fixed_centers=[[0.0, 0.0, 0.0]]).fit(X)
    with pytest.raises(ValueError, match="k-means"):
        KMeans(3, init="random", fixed_centers=[[0.0, 0.0]]).fit(X)


def test_kmeans_fixed_centers_with_few_rows() -> None:
    X = np.array([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]])
    km = KMeans(4, random_state=0, fixed_centers=[[5.0, 5.0], [9.0, 9.0]]).fit(X)
    assert km.cluster_centers_.tolist()[:2] == [[5.0, 5.0], [9.0, 9.0]]
    assert km.inertia_ <= 1.0  # two rows, two learned centers at most one apart


@pytest.mark.parametrize("space", ["rgb", "lab", "oklab"])
def test_cluster_table_fixed_centers_on_the_binned_path(space: str) -> None:
    table, _ = visible_table(load_image(SAMPLES / "china.jpg"))
    assert table.n_colors > 8192  # large enough to be binned
    points = cs.rgb8_to_space(table.colors, space)
    fixed = cs.rgb8_to_space(np.array(KEEP_RGB, np.uint8), space)
    fit = cluster_table(
        points, table.counts.astype(float), table.keys, 12, random_state=1, fixed_centers=fixed
    )
    np.testing.assert_array_equal(fit.centers[:3], fixed)
    assert fit.centers.shape == (12, 3)
    sq = ((points - fit.centers[fit.labels]) ** 2).sum(axis=1)
    assert fit.inertia == pytest.approx(float(table.counts @ sq))
