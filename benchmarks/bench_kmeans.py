"""Benchmark quantize's clustering core against scikit-learn on photos.

For every ``sample_images/*.jpg`` and k in 8, 16, 32, 64 it prints the time
and the MSE (per channel, 0-255 scale, over every pixel) of

* ours: what :func:`quantize.quantize_image` does between decoding and
  writing: count the distinct colors (:func:`quantize.histogram.count_pixels`),
  fit the palette in rgb (:func:`quantize.pipeline.fit_palette`: the
  clustering core, centers rounded to exact 8-bit colors, every color
  assigned to its nearest one) and recolor every pixel
  (:func:`quantize.histogram.recolor`); median of a few repeats, seed 0;
* scikit-learn ``KMeans(n_init=1)``, ``KMeans(n_init=10)`` and
  ``MiniBatchKMeans``: fit + predict on all pixels (one run, seed 0);

then a 12 MP case (china.jpg upscaled to 4000x3000 with LANCZOS) at k = 16:
ours in three fresh child processes in turn (the median first run of each is
what one ``quantize`` run pays; each also reports its peak memory), and
scikit-learn's ``KMeans(n_init=1)``.  Finally every target of the issue with PASS or FAIL.

Run from the repository root::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_kmeans.py

``--quick`` skips ``KMeans(n_init=10)`` and scikit-learn on the 12 MP photo.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import BIG_SIZE, ROOT, SAMPLES, big_china, decoded, median_run, verdict
from numpy.typing import NDArray

from quantize.histogram import PixelSource, count_pixels, recolor
from quantize.pipeline import fit_palette

KS = (8, 16, 32, 64)
BIG_K = 16
SEED = 0


@dataclass(frozen=True)
class Run:
    """Seconds and per-channel MSE of one method on one image."""

    seconds: float
    mse: float


def fit_and_map(pixels: NDArray[np.uint8], k: int) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Our whole path as quantize_image runs it: count the distinct colors,
    fit the 8-bit palette (rgb space, seed 0), recolor every pixel.

    Returns the palette (k', 3) and the palette index of every pixel (h, w).
    """
    sources: list[PixelSource] = [(pixels, None)]
    table = count_pixels(sources)
    fit = fit_palette(table, k, seed=SEED)
    return fit.palette.colors, recolor(table, fit.labels.astype(np.uint8), sources)[0]


def mse(
    pixels: NDArray[np.uint8], palette: NDArray[np.uint8], indices: NDArray[np.integer]
) -> float:
    """Mean squared error per channel, in row blocks to stay small on 12 MP."""
    flat_px, flat_idx = pixels.reshape(-1, 3), indices.ravel()
    total = 0
    for start in range(0, flat_idx.size, 1 << 20):
        block = slice(start, start + (1 << 20))
        diff = palette[flat_idx[block]].astype(np.int32) - flat_px[block]
        total += int(np.einsum("ij,ij->", diff, diff, dtype=np.int64))
    return total / flat_px.size


def time_ours(pixels: NDArray[np.uint8], k: int, repeats: int) -> Run:
    fit_and_map(pixels, k)  # warm-up: first-touch page faults, imports
    result, seconds = median_run(lambda: fit_and_map(pixels, k), repeats)
    return Run(seconds, mse(pixels, *result))


def time_sklearn(pixels: NDArray[np.uint8], model: Any) -> Run:
    """Fit + predict of a scikit-learn estimator on every pixel (rgb / 255)."""
    data = pixels.reshape(-1, 3) / 255.0
    start = time.perf_counter()
    model.fit(data)
    labels = model.predict(data)
    seconds = time.perf_counter() - start
    palette = np.clip(np.rint(model.cluster_centers_ * 255.0), 0, 255).astype(np.uint8)
    return Run(seconds, mse(pixels, palette, labels))


def peers(quick: bool) -> dict[str, Callable[[int], object]]:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    makers: dict[str, Callable[[int], object]] = {
        "sk n_init=1": lambda k: KMeans(k, n_init=1, random_state=SEED),
        "sk n_init=10": lambda k: KMeans(k, n_init=10, random_state=SEED),
        "sk minibatch": lambda k: MiniBatchKMeans(k, random_state=SEED),
    }
    if quick:
        del makers["sk n_init=10"]
    return makers


def bench_images(quick: bool, repeats: int) -> list[dict[str, object]]:
    rows = []
    makers = peers(quick)
    for path in sorted(SAMPLES.glob("*.jpg")):
        pixels = decoded(path)
        for k in KS:
            row: dict[str, object] = {"image": path.name, "k": k}
            row["ours"] = time_ours(pixels, k, repeats)
            for name, make in makers.items():
                row[name] = time_sklearn(pixels, make(k))
            rows.append(row)
            print_row(row, list(makers), flush=True)
    return rows


def header(names: list[str]) -> None:
    cols = ["ours", *names]
    print(f"{'image':<11}{'k':>4}" + "".join(f"{c:>24}" for c in cols) + f"{'speedup':>9}")
    print(f"{'':<15}" + "".join(f"{'s':>12}{'MSE':>12}" for _ in cols) + f"{'vs n1':>9}")


def print_row(row: dict[str, object], names: list[str], flush: bool = False) -> None:
    cells = []
    for name in ["ours", *names]:
        run = row[name]
        assert isinstance(run, Run)
        cells.append(f"{run.seconds:>12.3f}{run.mse:>12.2f}")
    ours, base = row["ours"], row["sk n_init=1"]
    assert isinstance(ours, Run) and isinstance(base, Run)
    speed = base.seconds / ours.seconds
    print(f"{row['image']:<11}{row['k']:>4}" + "".join(cells) + f"{speed:>8.1f}x", flush=flush)


CHILD = """
import json, resource, statistics, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1] + "/benchmarks")
from bench_kmeans import fit_and_map, mse
pixels = np.load(sys.argv[2])
times = []
for _ in range(int(sys.argv[3])):
    indices = None  # free the previous result before the next run
    start = time.perf_counter()
    palette, indices = fit_and_map(pixels, int(sys.argv[4]))
    times.append(time.perf_counter() - start)
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"times": times, "peak_kib": peak_kib, "mse": mse(pixels, palette, indices)}))
"""


def bench_big(quick: bool, processes: int) -> dict[str, object]:
    """Ours on 12 MP in ``processes`` fresh child processes, one after the
    other: a first run in each (what one ``quantize`` run pays, first touches
    of memory included) and warm runs after it."""
    pixels = big_china()
    firsts, warm, peaks, mses = [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.npy"
        np.save(path, pixels)
        for _ in range(processes):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(ROOT), str(path), "4", str(BIG_K)],
                capture_output=True,
                text=True,
                check=True,
            )
            child = json.loads(out.stdout)
            firsts.append(child["times"][0])
            warm.extend(child["times"][1:])
            peaks.append(child["peak_kib"])
            mses.append(child["mse"])
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result: dict[str, object] = {
        "cold": statistics.median(firsts),
        "colds": firsts,
        "warm": statistics.median(warm),
        "peak_mib": max(*peaks, children_kib) / 1024,
        "mse": mses[0],
    }
    if not quick:
        from sklearn.cluster import KMeans

        result["sk"] = time_sklearn(pixels, KMeans(BIG_K, n_init=1, random_state=SEED))
    return result


def print_big(big: dict[str, object]) -> None:
    print(f"\n12 MP ({BIG_SIZE[0]}x{BIG_SIZE[1]} china.jpg, LANCZOS), k={BIG_K}:")
    print(
        f"  ours fit+map: first run in a fresh process, median {big['cold']:.3f} s "
        f"({', '.join(f'{t:.3f}' for t in big['colds'])}), later runs median "
        f"{big['warm']:.3f} s; "
        f"peak RSS of the process {big['peak_mib']:.0f} MiB; MSE {big['mse']:.2f}"
    )
    sk = big.get("sk")
    if isinstance(sk, Run):
        print(f"  sk KMeans(n_init=1) fit+predict: {sk.seconds:.2f} s, MSE {sk.mse:.2f}")


def check_targets(rows: list[dict[str, object]], big: dict[str, object]) -> list[str]:
    lines = []
    for row in rows:
        ours, n1 = row["ours"], row["sk n_init=1"]
        n10 = row.get("sk n_init=10")
        assert isinstance(ours, Run) and isinstance(n1, Run)
        name = f"{row['image']} k={row['k']}"
        lines.append(verdict(ours.mse <= n1.mse, f"{name}: MSE <= sk n_init=1"))
        if isinstance(n10, Run):
            lines.append(
                verdict(ours.mse <= 1.005 * n10.mse, f"{name}: MSE within 0.5% of sk n_init=10")
            )
        need = {16: 5.0, 64: 10.0}.get(int(row["k"]))  # type: ignore[call-overload]
        if need:
            speed = n1.seconds / ours.seconds
            lines.append(verdict(speed >= need, f"{name}: {speed:.1f}x faster (need {need:.0f}x)"))
    lines.append(verdict(float(big["warm"]) < 0.5, "12 MP k=16 fit+map < 0.5 s (warm)"))  # type: ignore[arg-type]
    lines.append(verdict(float(big["cold"]) < 0.5, "12 MP k=16 fit+map < 0.5 s (first run)"))  # type: ignore[arg-type]
    lines.append(verdict(float(big["peak_mib"]) < 400, "12 MP peak memory < 400 MB"))  # type: ignore[arg-type]
    return lines


def blas_note() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    kernels = {
        f"{i.get('internal_api')} {i.get('architecture', '')} x{i.get('num_threads')}"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    }
    env = {v: os.environ[v] for v in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if v in os.environ}
    return f"BLAS: {', '.join(sorted(kernels))}; env {env or 'none set'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the slow scikit-learn peers")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of ours (median)")
    parser.add_argument(
        "--processes", type=int, default=3, help="fresh processes for the 12 MP case (median)"
    )
    args = parser.parse_args()
    print(blas_note())
    header(list(peers(args.quick)))
    rows = bench_images(args.quick, args.repeats)
    big = bench_big(args.quick, args.processes)
    print_big(big)
    print("\nTargets:")
    print("\n".join(check_targets(rows, big)))


if __name__ == "__main__":
    main()
