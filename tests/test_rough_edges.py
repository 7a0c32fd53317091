"""Rough edges a new user hits in the first hour (issue 16)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from quantize.batch import ImageResult, Progress
from quantize.cli_report import Reporter
from quantize.palette import Palette
from quantize.render import render_swatch
from tests.helpers import ROOT, gradient_rgb
from tests.helpers import run_cli as run

# --------------------------------------------------------------------------- #
# 1. A folder that yields no images
# --------------------------------------------------------------------------- #


def test_folder_with_images_only_in_subfolders_says_use_r(tmp_path: Path) -> None:
    shots = tmp_path / "shots"
    (shots / "day1").mkdir(parents=True)
    gradient_rgb(20, 10).save(shots / "day1" / "a.png")
    code, text = run(f"{shots}/")
    assert code == 1
    hint = "(use -r to include subfolders)"
    assert text.strip() == f"quantize: error: {shots}/: no images found {hint}"
    code, _ = run(shots, "-r", "-k", "4")
    assert code == 0


def test_empty_folder_and_folder_of_non_images_are_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, text = run(empty)
    assert code == 1
    assert text.strip() == f"quantize: error: {empty}/: no images found (the folder is empty)"
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("x")
    (notes / "b.pdf").write_bytes(b"%PDF")
    code, text = run(notes)
    assert code == 1
    assert f"{notes}/: no images found (2 files without an image suffix" in text


def test_folder_with_images_somewhere_else_still_runs(tmp_path: Path) -> None:
    # One empty folder among inputs that hold images is not an error.
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    full.mkdir()
    gradient_rgb(20, 10).save(full / "a.png")
    assert run(empty, full, "-k", "4")[0] == 0


# --------------------------------------------------------------------------- #
# 6. Swatch labels
# --------------------------------------------------------------------------- #


def _row_gaps(text_rows: np.ndarray) -> list[int]:
    rows = np.flatnonzero(text_rows)
    gaps, run_length = [], 0
    for row in range(rows.min(), rows.max() + 1):
        if text_rows[row]:
            if run_length:
                gaps.append(run_length)
            run_length = 0
        else:
            run_length += 1
    return sorted(gaps)


def test_upright_swatch_label_separates_hex_and_share() -> None:
    colors = np.array([[192, 169, 164], [10, 20, 30], [200, 30, 40]], np.uint8)
    palette = Palette(colors, np.array([53, 847, 100]))
    pixels = np.asarray(render_swatch(palette)).astype(int)
    band = pixels[:100, : int(1200 * 0.053)]  # about 64 px wide: an upright label
    text_rows = np.any(np.abs(band - colors[0]).sum(-1) > 60, axis=1)
    gaps = _row_gaps(text_rows)
    # The gap between "#c0a9a4" and "5.3%" stands out from the gaps between letters.
    assert gaps[-1] >= 6
    assert gaps[-1] >= 3 * gaps[-2]


# --------------------------------------------------------------------------- #
# 7. -o without a suffix, --format aliases
# --------------------------------------------------------------------------- #


def test_output_without_suffix_is_a_usage_error_with_a_hint(photo: Path, tmp_path: Path) -> None:
    code, text = run(photo, "-o", tmp_path / "results")
    assert code == 2
    assert "cannot tell the output format" in text
    assert "end it with / for a folder, or give a suffix" in text
    assert not (tmp_path / "results").exists()
    code, _ = run(photo, "-k", "4", "-o", f"{tmp_path / 'results'}/")
    assert code == 0
    assert (tmp_path / "results" / "photo-k4.png").exists()


@pytest.mark.parametrize(("alias", "suffix"), [("jpg", ".jpg"), ("tif", ".tiff")])
def test_format_accepts_common_aliases(
    photo: Path, tmp_path: Path, alias: str, suffix: str
) -> None:
    code, text = run(photo, "-k", "4", "--format", alias, "-o", f"{tmp_path}/")
    assert code == 0, text
    with Image.open(tmp_path / f"photo-k4{suffix}") as im:
        assert im.format == {"jpg": "JPEG", "tif": "TIFF"}[alias]


# --------------------------------------------------------------------------- #
# 8. The progress bar after Ctrl-C
# --------------------------------------------------------------------------- #


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_counts_what_the_summary_counts_after_ctrl_c(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stderr", _Terminal())
    reporter = Reporter(quiet=False, debug=False)
    reporter.progress(Progress("images", 0, 6))
    results = [ImageResult(Path("a.png"), "written"), ImageResult(Path("b.png"), "failed")]
    results += [ImageResult(Path(f"{i}.png"), "interrupted") for i in range(4)]
    for done, result in enumerate(results, 1):
        reporter.progress(Progress("images", done, 6, result))
    assert reporter.bar.n == 2  # written + failed; the summary counts 4 not done
    reporter.close()


# --------------------------------------------------------------------------- #
# 9. Library errors carry the path
# --------------------------------------------------------------------------- #


def test_library_errors_name_the_file(tmp_path: Path) -> None:
    from quantize import quantize_image
    from quantize.errors import InputError

    missing = tmp_path / "nope.jpg"
    with pytest.raises(InputError) as info:
        quantize_image(missing)
    assert str(info.value) == f"{missing}: no such file"
    assert info.value.reason == "no such file" and info.value.path == missing
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (4, 4), (10, 20, 30, 0)).save(clear)
    with pytest.raises(InputError, match=rf"^{clear}: every pixel is fully transparent"):
        quantize_image(str(clear))


def test_command_names_the_file_once(tmp_path: Path) -> None:
    clear = tmp_path / "clear.png"
    Image.new("RGBA", (4, 4), (10, 20, 30, 0)).save(clear)
    code, text = run(clear, tmp_path / "nope.jpg", "-q")
    assert code == 1
    assert f"quantize: error: {clear}: every pixel is fully transparent" in text
    assert f"quantize: error: {tmp_path / 'nope.jpg'}: no such file\n" in text
    assert text.count(str(clear)) == 1  # -q: no summary; the path is never repeated


# --------------------------------------------------------------------------- #
# 5. --shared-palette messages
# --------------------------------------------------------------------------- #


def _two_colors(path: Path, a: tuple[int, int, int], b: tuple[int, int, int]) -> None:
    pixels = np.zeros((8, 8, 3), np.uint8)
    pixels[:, :4], pixels[:, 4:] = a, b
    Image.fromarray(pixels).save(path)


def test_shared_palette_lines_say_colors_used_of_the_palette_and_reused(tmp_path: Path) -> None:
    folder = tmp_path / "sprites"
    folder.mkdir()
    _two_colors(folder / "a.png", (250, 0, 0), (0, 250, 0))
    _two_colors(folder / "b.png", (0, 0, 250), (250, 250, 0))
    out = tmp_path / "out"
    code, text = run(folder, "-k", "4", "--shared-palette", "-o", out, "-j", "1")
    assert code == 0, text
    assert f"{folder / 'a.png'}: k=4 (2 used), PSNR inf dB" in text
    assert f"shared palette: 4 colors -> {out / 'palette.json'}" in text
    _two_colors(folder / "c.png", (250, 0, 0), (0, 0, 250))
    code, text = run(folder, "-k", "4", "--shared-palette", "-o", out, "--skip-existing")
    assert code == 0, text
    assert f"{folder / 'c.png'}: k=4 (2 used)" in text
    assert f"shared palette: 4 colors, reused {out / 'palette.json'}" in text
    assert "1 written, 2 skipped" in text


# --------------------------------------------------------------------------- #
# 2. JPEG outputs: numbers of the pixels as written
# --------------------------------------------------------------------------- #


def test_jpeg_report_measures_the_decoded_file(photo: Path, tmp_path: Path) -> None:
    import json

    from quantize.colors import rgb8_to_space
    from quantize.metrics import ciede2000

    out = tmp_path / "small.jpg"
    code, text = run(photo, "-k", "8", "-o", out)
    assert code == 0, text
    assert text.count("quantize: note: JPEG cannot hold a palette") == 1
    report = json.loads(out.with_suffix(".json").read_text())
    original = np.asarray(Image.open(photo).convert("RGB"))
    written = np.asarray(Image.open(out).convert("RGB"))
    mse = float(np.mean((written.astype(float) - original) ** 2))
    de = ciede2000(
        rgb8_to_space(original.reshape(-1, 3), "lab"), rgb8_to_space(written.reshape(-1, 3), "lab")
    )
    distinct = len(np.unique(written.reshape(-1, 3), axis=0))
    assert report["metrics"]["mse"] == pytest.approx(mse, abs=1e-3)
    assert report["metrics"]["delta_e_mean"] == pytest.approx(float(de.mean()), abs=1e-3)
    assert f"PSNR {report['metrics']['psnr']:.2f} dB" in text
    assert report["image_indexed"] is False
    assert report["image_colors"] == distinct > 8
    assert len(report["colors"]) == 8 == report["metrics"]["colors_used"]  # what was clustered


def test_indexed_report_fields_and_quiet_note(photo: Path, tmp_path: Path) -> None:
    import json

    code, text = run(photo, "-k", "8", "-o", f"{tmp_path}/")
    assert code == 0 and "note" not in text
    report = json.loads((tmp_path / "photo-k8.json").read_text())
    assert report["image_indexed"] is True
    assert report["image_colors"] == report["metrics"]["colors_used"] == 8
    code, text = run(photo, "-k", "8", "--format", "jpeg", "-o", f"{tmp_path}/j/", "-q")
    assert code == 0 and text == ""
    code, text = run(photo, "-k", "8", "--no-image", "-o", f"{tmp_path}/n.jpg")
    assert code == 0 and "note" not in text
    report = json.loads((tmp_path / "n.json").read_text())
    assert report["image_indexed"] is None and report["image_colors"] is None


# --------------------------------------------------------------------------- #
# 3-4. --plot: warnings, odd names, one figure per process
# --------------------------------------------------------------------------- #


def test_safe_title_escapes_what_the_font_cannot_show() -> None:
    from quantize.plots import safe_title

    glyphs = frozenset(map(ord, "abc.png —→$"))
    assert safe_title("a日b.png", glyphs) == "a\\u65e5b.png"
    assert safe_title("a$b$c.png", glyphs) == "a\\$b\\$c.png"  # never math mode
    assert safe_title("a\nb.png", glyphs | {10}) == "a\\nb.png"  # one line


def test_plot_of_an_odd_file_name_is_quiet_and_titled_safely(tmp_path: Path) -> None:
    import json

    odd = tmp_path / "写真 $x_$ 🜁.png"
    gradient_rgb(30, 20).save(odd)
    code, text = run(odd, "-k", "4", "--plot", "-o", f"{tmp_path}/out/")
    assert code == 0, text
    assert "Glyph" not in text and "UserWarning" not in text
    report = json.loads((tmp_path / "out" / "写真 $x_$ 🜁-k4.json").read_text())
    assert report["warnings"] == []


def test_plot_warnings_are_one_line_each_and_quiet_hides_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quantize import plots

    monkeypatch.setattr(plots, "safe_title", lambda text, glyphs: text)  # let the glyphs warn
    odd = tmp_path / "写真.png"
    gradient_rgb(30, 20).save(odd)
    code, text = run(odd, "-k", "4", "--plot", "-j", "1")
    assert code == 0, text
    lines = [line for line in text.splitlines() if "Glyph" in line]
    assert lines and all(line.startswith(f"quantize: warning: {odd}: --plot: ") for line in lines)
    assert "UserWarning" not in text and ".py:" not in text
    code, text = run(odd, "-k", "4", "--plot", "-j", "1", "-q", "--force")
    assert (code, text) == (0, "")


def test_reused_figure_draws_what_a_fresh_one_draws() -> None:
    from quantize import plots

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (500, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (300, 3), dtype=np.uint8)
    centers_a, centers_b = a[:4], b[:9]

    def png(pixels: np.ndarray, centers: np.ndarray, title: str) -> bytes:
        buffer = io.BytesIO()
        plots.render_pixel_plot(pixels, pixels, centers, title=title, path_or_buffer=buffer)
        return buffer.getvalue()

    first_a = png(a, centers_a, "a.png — a long title with more glyphs → k=4")
    reused_b = png(b, centers_b, "b.png → k=9")
    assert png(a, centers_a, "a.png — a long title with more glyphs → k=4") == first_a
    plots._PLOT = None  # as in a fresh process
    assert png(b, centers_b, "b.png → k=9") == reused_b


# --------------------------------------------------------------------------- #
# 10. The quick start leaves nothing untracked
# --------------------------------------------------------------------------- #


def test_quick_start_output_folder_is_ignored_by_git() -> None:
    import re

    readme = (ROOT / "README.md").read_text()
    quick = readme[readme.index("## Quick start") : readme.index("## Usage")]
    folders = re.findall(r"quantize \S+ .*-o (\S+)/", quick)
    assert folders == ["out"]
    ignored = (ROOT / ".gitignore").read_text().split()
    assert all(f"/{f}/" in ignored or f"{f}/" in ignored for f in folders)


# --------------------------------------------------------------------------- #
# 12. --skip-existing --force: only the incomplete images are made again
# --------------------------------------------------------------------------- #


def test_skip_existing_with_force_regenerates_only_incomplete_images(tmp_path: Path) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    gradient_rgb(30, 20, seed=1).save(folder / "a.png")
    gradient_rgb(30, 20, seed=2).save(folder / "b.png")
    assert run(folder, "-k", "4", "-o", out)[0] == 0
    complete = (out / "a-k4.png").stat().st_mtime_ns, (out / "a-k4.json").read_bytes()
    (out / "b-k4.json").unlink()  # b is incomplete: its image is there, its report is not
    (out / "b-k4.png").write_bytes(b"stale")
    code, text = run(folder, "-k", "4", "-o", out, "--skip-existing")
    assert code == 1 and "b-k4.png: already exists" in text  # without --force: refused
    code, text = run(folder, "-k", "4", "-o", out, "--skip-existing", "--force", "-j", "1")
    assert code == 0, text
    assert "1 written, 1 skipped, 0 failed" in text
    assert ((out / "a-k4.png").stat().st_mtime_ns, (out / "a-k4.json").read_bytes()) == complete
    with Image.open(out / "b-k4.png") as im:
        assert im.mode == "P"
    assert (out / "b-k4.json").exists()
