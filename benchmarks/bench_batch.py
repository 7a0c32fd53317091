"""Benchmark folder processing: quantize with -j 1 and -j 2 against pngquant.

Generates 40 PNG images of mixed sizes (resized and cropped from
``sample_images/*.jpg``, seed 0) in a temporary folder, then quantizes them
all at k = 16 with

* ``python -m quantize FOLDER -k 16 -o OUT -j N -q`` for N = 1 and 2 (one
  process for the whole folder, as a user runs it; reports included);
* ``pngquant 16 --nofs`` (no dithering) on the same files: all of them one
  after the other in one process, and split in two halves run at the same
  time.  pngquant is built with OpenMP; ``OMP_NUM_THREADS=1`` keeps each
  pngquant process on one core so that "one after the other" and "two at a
  time" mean what they say (the default, multithreaded run is shown too).

Each run is repeated (``--repeats``, default 3; the methods take turns so
that they share the machine's load alike) and the median wall time is
reported as images per second, with the median CPU time (user + system) of
the processes, which a busy machine distorts less.  MSE is per channel on the 0-255 scale,
averaged over the images (each image's MSE over all its pixels).

Run from the repository root::

    python benchmarks/bench_batch.py
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import PNGQUANT, PNGQUANT_MISSING, ROOT, SAMPLES, compile_package, decoded, mse
from PIL import Image

N_IMAGES = 40
K = 16
SEED = 0


def make_images(folder: Path) -> list[Path]:
    """40 PNGs of mixed sizes: each a sample photo scaled by 0.4-2.5 and cropped to 60-100 %."""
    rng = np.random.default_rng(SEED)
    photos = [Image.open(p).convert("RGB") for p in sorted(SAMPLES.glob("*.jpg"))]
    paths = []
    for i in range(N_IMAGES):
        photo = photos[i % len(photos)]
        scale = rng.uniform(0.4, 2.5)
        size = (round(photo.width * scale), round(photo.height * scale))
        big = photo.resize(size, Image.Resampling.LANCZOS)
        w, h = (round(d * rng.uniform(0.6, 1.0)) for d in size)
        x, y = rng.integers(0, big.width - w + 1), rng.integers(0, big.height - h + 1)
        path = folder / f"img{i:02d}.png"
        big.crop((int(x), int(y), int(x) + w, int(y) + h)).save(path)
        paths.append(path)
    return paths


def timed(run: Callable[[], None]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system of the child processes) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def ours(src: Path, out: Path, workers: int) -> Callable[[], None]:
    cmd = [sys.executable, "-m", "quantize", str(src), "-k", str(K), "-o", str(out)]
    cmd += ["-j", str(workers), "-q"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def run() -> None:
        subprocess.run(cmd, check=True, env=env)

    return run


def pngquant(
    images: list[Path], out: Path, parallel: int, threads: str | None
) -> Callable[[], None]:
    env = dict(os.environ)
    if threads is not None:
        env["OMP_NUM_THREADS"] = threads
    groups = [images[i::parallel] for i in range(parallel)]

    def run() -> None:
        procs = []
        for group in groups:
            # pngquant's --output takes a single file, so it writes next to each input
            # (--ext) and the results are moved to the output folder afterwards.
            cmd = ["pngquant", str(K), "--nofs", "--force", "--ext", "-pq.png", "--"]
            procs.append(subprocess.Popen([*cmd, *map(str, group)], env=env))
        for proc in procs:
            if proc.wait() not in (0, 99):  # 99: quality too low, never with no --quality
                raise RuntimeError(f"pngquant failed with {proc.returncode}")
        for image in images:
            done = image.with_name(image.stem + "-pq.png")
            done.replace(out / done.name)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    compile_package()
    if PNGQUANT is None:
        sys.exit(PNGQUANT_MISSING)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "images", Path(tmp) / "out"
        src.mkdir()
        images = make_images(src)
        pixels = sum(Image.open(p).width * Image.open(p).height for p in images)
        sizes = sorted(Image.open(p).size for p in images)
        print(
            f"{len(images)} images, {pixels / 1e6:.1f} MP in total, "
            f"from {sizes[0][0]}x{sizes[0][1]} to {sizes[-1][0]}x{sizes[-1][1]}, k={K}, "
            f"median of {args.repeats} runs, {os.cpu_count()} CPU cores\n"
        )

        def reset() -> None:
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()

        methods: list[tuple[str, Callable[[], None], str]] = [
            ("quantize -j 1", ours(src, out, 1), f"-k{K}.png"),
            ("quantize -j 2", ours(src, out, 2), f"-k{K}.png"),
            ("pngquant --nofs, one after the other", pngquant(images, out, 1, "1"), "-pq.png"),
            ("pngquant --nofs, two at a time", pngquant(images, out, 2, "1"), "-pq.png"),
            (
                "pngquant --nofs, one process, OpenMP default",
                pngquant(images, out, 1, None),
                "-pq.png",
            ),
        ]
        walls: dict[str, list[float]] = {name: [] for name, _, _ in methods}
        cpus: dict[str, list[float]] = {name: [] for name, _, _ in methods}
        errors: dict[str, float] = {}
        for _ in range(args.repeats):
            for name, run, suffix in methods:
                reset()
                wall, cpu = timed(run)
                walls[name].append(wall)
                cpus[name].append(cpu)
                errors[name] = statistics.mean(
                    mse(decoded(p), out / (p.stem + suffix)) for p in images
                )
    rows = [
        (
            name,
            len(images) / statistics.median(walls[name]),
            statistics.median(walls[name]),
            statistics.median(cpus[name]),
            errors[name],
        )
        for name in walls
    ]
    print(f"| {'method':<45} | images/s | wall s | CPU s | mean MSE |")
    print(f"|{'-' * 47}|---------:|-------:|------:|---------:|")
    for name, rate, seconds, cpu, error in rows:
        print(f"| {name:<45} | {rate:8.2f} | {seconds:6.2f} | {cpu:5.1f} | {error:8.2f} |")


if __name__ == "__main__":
    main()
