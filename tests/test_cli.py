"""The quantize command, through Click's CliRunner and one real subprocess."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import run_cli as run


def palette_colors(img: Image.Image) -> set[tuple[int, int, int]]:
    """The RGB colors the pixels of an indexed image actually use."""
    used = np.unique(np.asarray(img))
    flat = img.getpalette() or []
    return {tuple(flat[3 * i : 3 * i + 3]) for i in used}  # type: ignore[misc]


def test_writes_indexed_png_and_report_next_to_input(photo: Path) -> None:
    code, out = run(photo, "-k", "8")
    assert code == 0, out
    image_path = photo.with_name("photo-k8.png")
    report = json.loads(photo.with_name("photo-k8.json").read_text())
    with Image.open(image_path) as img:
        assert img.mode == "P"
        assert len(img.getpalette() or []) // 3 <= 8
        assert img.size == (96, 64)
        used = palette_colors(img)
    listed = {tuple(c["rgb"]) for c in report["colors"]}
    assert used == listed
    assert sum(c["count"] for c in report["colors"]) == 96 * 64
    assert math.isclose(sum(c["fraction"] for c in report["colors"]), 1.0, abs_tol=1e-5)
    assert report["width"] == 96 and report["height"] == 64
    assert report["colors_requested"] == 8
    assert report["source"] == str(photo)
    assert report["image"] == str(image_path)
    assert report["n_iter"] >= 1
    assert "photo.png: k=8, PSNR" in out


def test_report_colors_sorted_by_count_with_hex(photo: Path) -> None:
    assert run(photo, "-k", "6")[0] == 0
    colors = json.loads(photo.with_name("photo-k6.json").read_text())["colors"]
    counts = [c["count"] for c in colors]
    assert counts == sorted(counts, reverse=True)
    for c in colors:
        r, g, b = c["rgb"]
        assert c["hex"] == f"#{r:02x}{g:02x}{b:02x}"


def test_reported_psnr_matches_files(china: Path) -> None:
    assert run(china, "-k", "16")[0] == 0
    report = json.loads(china.with_name("china-k16.json").read_text())
    original = np.asarray(Image.open(china).convert("RGB"), dtype=np.float64)
    recolored = np.asarray(Image.open(china.with_name("china-k16.png")).convert("RGB"), np.float64)
    mse = float(np.mean((original - recolored) ** 2))
    assert report["metrics"]["mse"] == pytest.approx(mse, rel=1e-6)
    assert report["metrics"]["psnr"] == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-3)


def test_same_seed_gives_identical_bytes(photo: Path, tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert run(photo, "-k", "12", "--seed", "3", "-o", tmp_path / name / "out.png")[0] == 0
    for suffix in (".png", ".json"):
        a = (tmp_path / "a" / f"out{suffix}").read_bytes()
        b = (tmp_path / "b" / f"out{suffix}").read_bytes()
        if suffix == ".json":  # the report names its own output path
            a = a.replace(b"/a/", b"/b/")
        assert a == b


def test_existing_output_is_left_untouched_without_force(photo: Path) -> None:
    target = photo.with_name("photo-k16.png")
    target.write_bytes(b"precious")
    code, out = run(photo)
    assert code == 1
    assert "already exists" in out and "--force" in out
    assert target.read_bytes() == b"precious"
    assert not photo.with_name("photo-k16.json").exists()
    assert run(photo, "--force")[0] == 0
    assert target.read_bytes().startswith(b"\x89PNG")


def test_input_is_never_overwritten_even_with_force(photo: Path) -> None:
    before = photo.read_bytes()
    code, out = run(photo, "-o", photo, "--force")
    assert code == 1
    assert "input" in out
    assert photo.read_bytes() == before
    link = photo.with_name("link.png")
    link.symlink_to(photo)
    assert run(photo, "-o", link, "--force")[0] == 1
    assert photo.read_bytes() == before


@pytest.mark.parametrize("k", ["1", "300", "abc"])
def test_out_of_range_colors_is_usage_error(photo: Path, k: str) -> None:
    code, out = run(photo, "-k", k)
    assert code == 2
    assert "--colors" in out
    assert not photo.with_name(f"photo-k{k}.png").exists()


def test_output_file_suffix_picks_format_and_report_name(photo: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "small.gif"
    assert run(photo, "-k", "4", "-o", target)[0] == 0
    with Image.open(target) as img:
        assert img.format == "GIF"
        assert len(palette_colors(img)) <= 4
    assert (tmp_path / "out" / "small.json").exists()


def test_output_folder_uses_default_names(photo: Path, tmp_path: Path) -> None:
    assert run(photo, "-k", "5", "-o", f"{tmp_path}/new/")[0] == 0
    assert (tmp_path / "new" / "photo-k5.png").exists()
    assert (tmp_path / "new" / "photo-k5.json").exists()


@pytest.mark.parametrize(("fmt", "mode", "suffix"), [("jpeg", "RGB", ".jpg"), ("bmp", "P", ".bmp")])
def test_format_option(photo: Path, fmt: str, mode: str, suffix: str) -> None:
    assert run(photo, "--format", fmt, "-k", "8", "--no-report")[0] == 0
    with Image.open(photo.with_name(f"photo-k8{suffix}")) as img:
        assert img.mode == mode
    assert not photo.with_name("photo-k8.json").exists()


def test_unknown_output_suffix_is_an_error(photo: Path, tmp_path: Path) -> None:
    code, out = run(photo, "-o", tmp_path / "out.xyz")
    assert code == 2  # a usage problem (issue 16)
    assert "output format" in out


def test_missing_input_gives_one_line_error(tmp_path: Path) -> None:
    code, out = run(tmp_path / "nope.jpg")
    assert code == 1
    assert out.strip() == f"quantize: error: {tmp_path / 'nope.jpg'}: no such file"


def test_not_an_image_gives_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    code, out = run(bad)
    assert code == 1
    assert out.strip() == f"quantize: error: {bad}: not a recognized image file"
    assert list(tmp_path.iterdir()) == [bad]


def test_quiet_prints_nothing(photo: Path) -> None:
    code, out = run(photo, "-q")
    assert code == 0
    assert out == ""


def test_help_documents_exit_codes() -> None:
    code, out = run("--help")
    assert code == 0
    assert "Exit codes" in out and "130" in out
    assert "default: 16" in out


def test_installed_command_runs_in_a_real_process(photo: Path) -> None:
    exe = shutil.which("quantize")
    cmd = [exe] if exe else [sys.executable, "-m", "quantize"]
    proc = subprocess.run(
        [*cmd, str(photo), "-k", "4"], capture_output=True, text=True, env=os.environ.copy()
    )
    assert proc.returncode == 0, proc.stderr
    assert "k=4" in proc.stderr
    with Image.open(photo.with_name("photo-k4.png")) as img:
        assert img.mode == "P"


def test_python_dash_m_reports_usage_errors_with_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "quantize", str(tmp_path / "x.png"), "-k", "1"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
