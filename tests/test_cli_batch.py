"""The quantize command on folders: options, summary, exit codes, palettes, Ctrl-C."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from quantize.batch import ImageResult, Progress
from quantize.cli_report import Reporter
from quantize.palette import Palette
from quantize.palette_formats import to_ase, to_gpl, to_txt
from tests.helpers import ROOT, SAMPLES, gradient_rgb
from tests.helpers import run_cli as run
from tests.test_batch import json_colors, names, used_colors


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """photos/ with two nested good images, a corrupt one, a text file and an earlier output."""
    root = tmp_path / "photos"
    (root / "trip").mkdir(parents=True)
    gradient_rgb(40, 30, seed=1).save(root / "a.png")
    gradient_rgb(36, 24, seed=2).save(root / "trip" / "b.jpg", quality=95)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a whole jpeg")
    (root / "readme.txt").write_text("holiday photos\n")
    gradient_rgb(40, 30, seed=9).save(root / "a-k6.png")
    return root


def test_folder_batch_summary_and_exit_code(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, text = run(tree, "-r", "-k", "6", "-o", out, "-j", "1")
    assert code == 1
    assert names(out) == {"a-k6.png", "a-k6.json", "trip/b-k6.png", "trip/b-k6.json"}
    lines = text.splitlines()
    assert f"quantize: error: {tree / 'broken.jpg'}: cannot decode image" in text
    summary = next(line for line in lines if " written, " in line)
    assert summary.startswith("2 written, 0 skipped, 1 failed in ")
    assert lines[-2:] == ["failed:", f"  {tree / 'broken.jpg'}: {lines[-1].split(': ', 1)[1]}"]
    assert "cannot decode image" in lines[-1]


def test_all_good_exits_0_and_quiet_prints_nothing(tree: Path, tmp_path: Path) -> None:
    (tree / "broken.jpg").unlink()
    code, text = run(tree, "-r", "-k", "6", "-o", tmp_path / "out", "-q")
    assert (code, text) == (0, "")


def test_without_recursive_subfolders_are_left_alone(tree: Path, tmp_path: Path) -> None:
    code, _ = run(tree, "-k", "6", "-o", tmp_path / "out")
    assert code == 1
    assert names(tmp_path / "out") == {"a-k6.png", "a-k6.json"}


def test_workers_give_identical_bytes(tree: Path, tmp_path: Path) -> None:
    for n in ("1", "2"):
        run(tree, "-r", "-k", "6", "-o", tmp_path / f"j{n}", "-j", n)
    for name in names(tmp_path / "j1"):
        one = (tmp_path / "j1" / name).read_bytes().replace(b"/j1/", b"/j2/")
        assert one == (tmp_path / "j2" / name).read_bytes(), name


def test_skip_existing_second_run_does_no_work(tree: Path, tmp_path: Path) -> None:
    (tree / "broken.jpg").unlink()
    out = tmp_path / "out"
    assert run(tree, "-r", "-o", out)[0] == 0
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    code, text = run(tree, "-r", "-o", out, "--skip-existing")
    assert code == 0
    assert "0 written, 2 skipped, 0 failed" in text
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    code, text = run(tree, "-r", "-o", out)
    assert code == 1
    assert "already exists" in text


def test_output_file_name_with_a_folder_is_a_usage_error(tree: Path, tmp_path: Path) -> None:
    code, text = run(tree, "-o", tmp_path / "one.png")
    assert code == 2
    assert "-o is a folder" in text
    assert not (tmp_path / "one.png").exists()


def test_shared_palette(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, text = run(tree, "-r", "-k", "5", "-o", out, "--shared-palette", "-j", "2")
    assert code == 1  # broken.jpg
    shared = json_colors(out / "palette.json")
    assert len(shared) == 5
    assert f"shared palette: 5 colors -> {out / 'palette.json'}" in text
    outputs = [out / "a-k5.png", out / "trip" / "b-k5.png"]
    union = set()
    for image in outputs:
        assert used_colors(image) <= shared
        union |= used_colors(image)
    assert union == shared


def test_shared_palette_without_output_goes_in_the_first_folder(tree: Path) -> None:
    (tree / "broken.jpg").unlink()
    assert run(tree, "-k", "4", "--shared-palette")[0] == 0
    assert used_colors(tree / "a-k4.png") <= json_colors(tree / "palette.json")


def test_existing_shared_palette_stops_before_any_work(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "palette.json").write_text("{}")
    code, text = run(tree, "-o", out, "--shared-palette")
    assert code == 1
    assert (
        text.strip()
        == f"quantize: error: {out / 'palette.json'}: already exists (use --force to overwrite)"
    )
    assert names(out) == {"palette.json"}


PALETTE = Palette.from_colors(
    np.array([[200, 30, 40], [30, 160, 60], [40, 50, 210], [235, 235, 225], [15, 15, 20]])
)


def _write_palette(fmt: str, folder: Path) -> Path:
    if fmt == "json":
        path = folder / "colors.json"
        path.write_text(json.dumps({"colors": [{"rgb": c} for c in PALETTE.colors.tolist()]}))
    elif fmt == "gpl":
        path = folder / "colors.gpl"
        path.write_text(to_gpl(PALETTE, "test"))
    elif fmt == "ase":
        path = folder / "colors.ase"
        path.write_bytes(to_ase(PALETTE, "test"))
    else:
        path = folder / "colors.txt"
        path.write_text(to_txt(PALETTE))
    return path


@pytest.mark.parametrize("fmt", ["json", "gpl", "ase", "txt"])
def test_given_palette_recolors_with_exactly_those_colors(fmt: str, tmp_path: Path) -> None:
    src = tmp_path / "img.png"
    gradient_rgb(30, 20, seed=3).save(src)
    palette_path = _write_palette(fmt, tmp_path)
    code, text = run(src, "--palette", palette_path, "-o", tmp_path / "out.png")
    assert code == 0, text
    colors = PALETTE.colors.astype(np.int64)
    pixels = np.asarray(Image.open(src)).reshape(-1, 1, 3).astype(np.int64)
    nearest = colors[np.argmin(((pixels - colors[None]) ** 2).sum(-1), axis=1)]
    got = np.asarray(Image.open(tmp_path / "out.png").convert("RGB")).reshape(-1, 3)
    np.testing.assert_array_equal(got, nearest)
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["palette_file"] == str(palette_path)
    assert report["colors_requested"] == 5


def test_given_palette_names_outputs_by_its_size_and_notes_k(tmp_path: Path) -> None:
    src = tmp_path / "img.png"
    gradient_rgb(20, 20).save(src)
    palette_path = _write_palette("txt", tmp_path)
    code, text = run(src, "--palette", palette_path, "-k", "8")
    assert code == 0
    assert f"quantize: note: -k 8 ignored: {palette_path} has 5 colors" in text
    assert used_colors(tmp_path / "img-k5.png") <= {tuple(c) for c in PALETTE.colors.tolist()}


def test_bad_palette_file_is_a_usage_error_before_any_work(tmp_path: Path) -> None:
    src = tmp_path / "img.png"
    gradient_rgb(20, 20).save(src)
    bad = tmp_path / "colors.txt"
    bad.write_text("#112233\nnot-a-color\n")
    code, text = run(src, "--palette", bad)
    assert code == 2
    assert "line 2: expected a hex color" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["colors.txt", "img.png"]


def test_palette_and_shared_palette_together_is_a_usage_error(tmp_path: Path) -> None:
    palette_path = _write_palette("txt", tmp_path)
    code, text = run(tmp_path, "--palette", palette_path, "--shared-palette")
    assert code == 2
    assert "cannot be used together" in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_on_a_terminal_with_messages_above_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stderr = _Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    reporter = Reporter(quiet=False, debug=False)
    reporter.progress(Progress("images", 0, 2))
    ok = ImageResult(Path("a.png"), "written", (Path("a-k4.png"),), colors=4, psnr=30.0)
    reporter.progress(Progress("images", 1, 2, ok))
    reporter.progress(Progress("images", 2, 2, ImageResult(Path("b.png"), "failed", reason="bad")))
    reporter.close()
    text = stderr.getvalue()
    assert "quantize: error: b.png: bad\n" in text
    assert "2/2" in text and "img" in text
    assert "PSNR" not in text  # with a bar, only problems are printed line by line
    quiet = Reporter(quiet=True, debug=False)
    assert not quiet.show_bar


def test_ctrl_c_stops_cleanly_with_exit_130(tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    photo = Image.open(SAMPLES / "china.jpg")
    for i in range(24):
        photo.crop((i, i, 400 + i, 300 + i)).save(folder / f"p{i:02d}.png")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "quantize", str(folder), "-o", str(tmp_path / "out"), "-j", "2"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # one image done: the workers are busy with the next ones
    assert "PSNR" in first, first
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, rest
    assert "quantize: interrupted" in rest
    assert " not done in " in rest
    assert "Traceback" not in rest
    out = tmp_path / "out"
    files = sorted(p.name for p in out.iterdir())
    assert not [f for f in files if f.startswith(".") or f.endswith(".tmp")]
    pngs = {f[:-4] for f in files if f.endswith(".png")}
    assert pngs == {f[:-5] for f in files if f.endswith(".json")}  # whole images only
    assert 1 <= len(pngs) < 24
    for stem in pngs:
        with Image.open(out / f"{stem}.png") as img:
            img.load()


def test_one_color_palette(tmp_path: Path) -> None:
    src = tmp_path / "img.png"
    gradient_rgb(20, 20).save(src)
    (tmp_path / "one.txt").write_text("#336699\n")
    assert run(src, "--palette", tmp_path / "one.txt", "-q") == (0, "")
    assert used_colors(tmp_path / "img-k1.png") == {(0x33, 0x66, 0x99)}


def test_the_progress_bar_total_grows_while_images_are_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stderr = _Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    reporter = Reporter(quiet=False, debug=False)
    reporter.progress(Progress("images", 0, 2, final=False))
    ok = ImageResult(Path("a.png"), "written", (Path("a-k4.png"),), colors=4, psnr=30.0)
    reporter.progress(Progress("images", 1, 5, ok, final=False))
    assert reporter.bar.total == 5
    reporter.progress(Progress("images", 1, 7))  # the scan is over
    assert reporter.bar.total == 7 and reporter.bar.n == 1
    reporter.close()
    assert "1/7" in stderr.getvalue()
