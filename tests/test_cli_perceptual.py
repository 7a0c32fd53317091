"""The quantize command's quality options: --space, --dither*, -k auto and its targets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers import run_cli as run


def rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def test_dither_keeps_the_palette_exact_and_changes_pixels(photo: Path, tmp_path: Path) -> None:
    assert run(photo, "-k", "6", "-o", tmp_path / "plain.png")[0] == 0
    code, out = run(photo, "-k", "6", "--dither", "-o", tmp_path / "fs.png")
    assert code == 0, out
    report = json.loads((tmp_path / "fs.json").read_text())
    assert report["dither"] == "floyd-steinberg" and report["dither_strength"] == 1.0
    with Image.open(tmp_path / "fs.png") as img:
        assert img.mode == "P"
        flat = np.asarray(img.getpalette(), dtype=np.uint8).reshape(-1, 3)
        used = {tuple(int(v) for v in flat[i]) for i in np.unique(np.asarray(img))}
    assert used == {tuple(c["rgb"]) for c in report["colors"]}
    plain, dithered = rgb(tmp_path / "plain.png"), rgb(tmp_path / "fs.png")
    assert np.any(plain != dithered, axis=-1).mean() > 0.1
    mse = float(np.mean((rgb(photo).astype(np.float64) - dithered) ** 2))
    assert report["metrics"]["mse"] == pytest.approx(mse, abs=1e-4)


def test_ordered_dither_strength_is_recorded(photo: Path, tmp_path: Path) -> None:
    args = ["--dither", "--dither-method", "ordered", "--dither-strength", "0.5"]
    code, out = run(photo, "-k", "6", *args, "-o", tmp_path / "o.png")
    assert code == 0, out
    report = json.loads((tmp_path / "o.json").read_text())
    assert (report["dither"], report["dither_strength"]) == ("ordered", 0.5)


@pytest.mark.parametrize("space", ["rgb", "lab", "oklab"])
def test_space_is_recorded_in_the_report(photo: Path, space: str) -> None:
    assert run(photo, "-k", "4", "--space", space)[0] == 0
    report = json.loads(photo.with_name("photo-k4.json").read_text())
    assert report["space"] == space
    assert report["k_auto"] is None


def test_k_auto_writes_kauto_outputs_and_reports_the_chosen_k(photo: Path) -> None:
    code, out = run(photo, "-k", "auto", "--target-psnr", "27", "--space", "lab")
    assert code == 0, out
    report = json.loads(photo.with_name("photo-kauto.json").read_text())
    auto = report["k_auto"]
    assert report["colors_requested"] == "auto"
    assert report["space"] == "lab"
    assert auto["target"] == {"psnr": 27.0} and auto["met"] is True
    k = auto["chosen"]
    tried = {t["k"]: t for t in auto["tried"]}
    assert tried[k]["met"] and tried[k]["psnr"] >= 27.0
    assert not tried[k - 1]["met"] and tried[k - 1]["psnr"] < 27.0
    assert report["metrics"]["psnr"] == tried[k]["psnr"]
    assert len(report["colors"]) <= k
    assert photo.with_name("photo-kauto.png").exists()
    assert f"k={k} (auto: smallest k with PSNR >= 27 dB)" in out


def test_k_auto_defaults_to_32_db(photo: Path) -> None:
    assert run(photo, "-k", "auto")[0] == 0
    report = json.loads(photo.with_name("photo-kauto.json").read_text())
    assert report["k_auto"]["target"] == {"psnr": 32.0}


def test_k_auto_delta_e_target_and_a_missed_target_is_said(photo: Path) -> None:
    code, out = run(photo, "-k", "auto", "--target-delta-e", "0.5")
    assert code == 0, out
    auto = json.loads(photo.with_name("photo-kauto.json").read_text())["k_auto"]
    assert auto["target"] == {"delta_e_mean": 0.5}
    assert (auto["chosen"], auto["met"]) == (256, False)
    assert "k=256 (auto: mean ΔE00 <= 0.5 not reached even with k=256)" in out
    assert "mean ΔE00" in out


def test_k_auto_existing_output_is_refused_before_any_work(photo: Path) -> None:
    existing = photo.with_name("photo-kauto.png")
    existing.write_bytes(b"mine")
    code, out = run(photo, "-k", "auto")
    assert code == 1
    assert "already exists" in out
    assert existing.read_bytes() == b"mine"
    assert not photo.with_name("photo-kauto.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dither-strength", "0.5"], "need --dither"),
        (["--dither-method", "ordered"], "need --dither"),
        (["--dither", "--dither-strength", "0.5"], "--dither-method ordered"),
        (["--dither", "--dither-method", "ordered", "--dither-strength", "1.5"], "0<=x<=1"),
        (["--target-psnr", "30"], "need -k auto"),
        (["-k", "auto", "--target-psnr", "30", "--target-delta-e", "2"], "mutually exclusive"),
        (["-k", "auto", "--target-psnr", "0"], "--target-psnr"),
        (["--space", "hsv"], "--space"),
    ],
)
def test_bad_quality_options_are_usage_errors(photo: Path, args: list[str], message: str) -> None:
    code, out = run(photo, *args)
    assert code == 2, out
    assert message in out
    assert list(photo.parent.iterdir()) == [photo]
