"""Perceptual quality of quantize against pngquant and Pillow's quantizers.

For each sample photo (``sample_images/china.jpg``, ``flower.jpg``) at k = 16
and k = 64 it prints MSE, PSNR, mean CIEDE2000, the colors actually used and
the time of

* ours: :func:`quantize.quantize_image` in rgb, lab and oklab, without and
  with Floyd–Steinberg dithering (seed 0, the whole call: table, clustering,
  mapping, metrics);
* pngquant (``/usr/bin/pngquant``, its default speed 4), with ``--nofs`` and
  with its default dithering, asked for exactly k colors with its ``ncolors``
  argument, on a PNG copy of the photo; the time includes starting the
  process and PNG encoding/decoding;
* Pillow's ``Image.quantize`` with ``MEDIANCUT`` and ``FASTOCTREE`` (Pillow
  does not dither when it builds the palette itself).

Every method is scored the same way: its output image is decoded back to RGB
and compared pixel by pixel with the original.  Times are the median of
``--repeats`` runs (the machine is shared: expect noise).  At the end, the
issue's targets with PASS or FAIL:

* our rgb mode (undithered, the default) has a lower MSE than pngquant,
  both with ``--nofs`` and with its dithering, on every image and k;
* lab or oklab has a lower mean CIEDE2000 than pngquant, likewise;
* lab or oklab has a lower mean CIEDE2000 than rgb.

Then, as information rather than targets, the dithered modes against
pngquant's dithering.  Pillow's Floyd–Steinberg diffuses the full error
everywhere; pngquant dithers selectively, so it scores better on these
pixelwise measures (which dithering always worsens: it trades pixel error
for better local averages).

Run from the repository root::

    python benchmarks/bench_quality.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import PNGQUANT, PNGQUANT_MISSING, SAMPLES, median_run, mse
from numpy.typing import NDArray
from PIL import Image

from quantize import quantize_image
from quantize.colors import rgb8_to_space
from quantize.metrics import ciede2000, psnr

IMAGES = ("china.jpg", "flower.jpg")
KS = (16, 64)
SPACES = ("rgb", "lab", "oklab")
SEED = 0


@dataclass(frozen=True)
class Score:
    """Quality of one output against the original, and the median time to make it."""

    mse: float
    psnr: float
    delta_e: float
    colors: int
    seconds: float


def score(original: NDArray[np.uint8], output: Image.Image, seconds: float) -> Score:
    """Pixelwise MSE, PSNR and mean CIEDE2000 of ``output`` against ``original``."""
    out = np.asarray(output.convert("RGB"))
    error = mse(original, out)
    de = ciede2000(rgb8_to_space(original, "lab"), rgb8_to_space(out, "lab"))
    n_colors = len(np.unique(out.reshape(-1, 3), axis=0))
    return Score(error, psnr(error), float(de.mean()), n_colors, seconds)


def ours(photo: Image.Image, k: int, space: str, dither: bool) -> Image.Image:
    method = "floyd-steinberg" if dither else "none"
    return quantize_image(photo, k, space=space, dither=method, seed=SEED).image


def pngquant(png: Path, k: int, dither: bool, out: Path) -> Image.Image:
    args = ["pngquant", "--force", "--output", str(out)]
    if not dither:
        args.append("--nofs")
    subprocess.run([*args, str(k), "--", str(png)], check=True)
    with Image.open(out) as img:
        img.load()
        return img


def methods(
    photo: Image.Image, png: Path, k: int, tmp: Path
) -> dict[str, Callable[[], Image.Image]]:
    makers: dict[str, Callable[[], Image.Image]] = {}
    for space in SPACES:
        for dither in (False, True):
            name = f"ours {space}" + (" +fs" if dither else "")
            makers[name] = lambda s=space, d=dither: ours(photo, k, s, d)  # type: ignore[misc]
    makers["pngquant --nofs"] = lambda: pngquant(png, k, False, tmp / "nofs.png")
    makers["pngquant +fs"] = lambda: pngquant(png, k, True, tmp / "fs.png")
    for method in ("MEDIANCUT", "FASTOCTREE"):
        quant = Image.Quantize[method]
        makers[f"Pillow {method.lower()}"] = lambda q=quant: photo.quantize(k, method=q)  # type: ignore[misc]
    return makers


def run(repeats: int) -> dict[tuple[str, int, str], Score]:
    results: dict[tuple[str, int, str], Score] = {}
    print("| image | k | method | MSE | PSNR dB | mean ΔE00 | colors | time s |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name in IMAGES:
            with Image.open(SAMPLES / name) as img:
                photo = img.convert("RGB")
            original = np.asarray(photo)
            png = tmp / (Path(name).stem + ".png")
            photo.save(png)
            for k in KS:
                for method, make in methods(photo, png, k, tmp).items():
                    out, seconds = median_run(make, repeats)
                    s = score(original, out, seconds)
                    results[(name, k, method)] = s
                    print(
                        f"| {name} | {k} | {method} | {s.mse:.2f} | {s.psnr:.2f} | "
                        f"{s.delta_e:.3f} | {s.colors} | {s.seconds:.3f} |",
                        flush=True,
                    )
    return results


def targets(results: dict[tuple[str, int, str], Score]) -> list[tuple[str, str]]:
    """The issue's targets (PASS/FAIL) and like-for-like dithered comparisons (info)."""
    checks: list[tuple[str, str]] = []

    def check(target: bool, ok: bool, text: str) -> None:
        verdict = ("PASS" if ok else "FAIL") if target else ("info" if ok else "info!")
        checks.append((verdict, text))

    for name in IMAGES:
        for k in KS:
            r = {m: s for (n, kk, m), s in results.items() if n == name and kk == k}
            where = f"{name} k={k}"
            for suffix in ("", " +fs"):
                is_target = suffix == ""
                best = min(("lab", "oklab"), key=lambda sp: r[f"ours {sp}{suffix}"].delta_e)
                mine, perceptual = r[f"ours rgb{suffix}"], r[f"ours {best}{suffix}"]
                peers = ("pngquant --nofs", "pngquant +fs") if is_target else ("pngquant +fs",)
                for peer in peers:
                    check(
                        is_target,
                        mine.mse < r[peer].mse,
                        f"{where}: MSE ours rgb{suffix} {mine.mse:.2f} < {peer} {r[peer].mse:.2f}",
                    )
                    check(
                        is_target,
                        perceptual.delta_e < r[peer].delta_e,
                        f"{where}: ΔE00 ours {best}{suffix} {perceptual.delta_e:.3f} "
                        f"< {peer} {r[peer].delta_e:.3f}",
                    )
            best = min(("lab", "oklab"), key=lambda sp: r[f"ours {sp}"].delta_e)
            check(
                True,
                r[f"ours {best}"].delta_e < r["ours rgb"].delta_e,
                f"{where}: ΔE00 ours {best} {r[f'ours {best}'].delta_e:.3f} "
                f"< ours rgb {r['ours rgb'].delta_e:.3f}",
            )
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per method (median)")
    args = parser.parse_args()
    if PNGQUANT is None:
        sys.exit(PNGQUANT_MISSING)
    version = subprocess.run(["pngquant", "--version"], capture_output=True, text=True)
    print(f"pngquant {version.stdout.strip()}, default speed; median of {args.repeats} runs\n")
    results = run(args.repeats)
    print("\nTargets:")
    checks = targets(results)
    for verdict, text in checks:
        print(f"  {verdict:5}  {text}")
    scored = [v for v, _ in checks if v in ("PASS", "FAIL")]
    print(f"\n{scored.count('PASS')}/{len(scored)} targets met ('info!': a peer does better)")


if __name__ == "__main__":
    main()
