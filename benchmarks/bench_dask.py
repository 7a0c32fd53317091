"""Benchmark batches on Dask (``--dask local``) against local worker processes (``-j``).

Two workloads, each run as a user runs it (``python -m quantize FOLDER -k 16
-o OUT ...``, one process for the whole folder):

* **throughput**: ``--images`` PNGs of mixed sizes (default 200, scaled and
  cropped from ``sample_images/*.jpg``, seed 0) with ``-j W`` and with
  ``--dask local -j W`` (a LocalCluster of W one-thread worker processes
  started by the command).  The target is at least 85% of the local
  throughput.
* **overhead**: ``--tiny`` 8×8 PNGs of two colors (default 20,000): the work
  per image is next to nothing (the palette is the image's colors), so the
  difference per image between the two runs is what a Dask task costs
  (submission, scheduling, result), and the command's peak RSS
  (``RUSAGE_SELF`` of the quantize process: the client, and with ``--dask
  local`` the scheduler, which runs in it) shows what the client holds.  A
  tenth of the tiny images runs too, so that the growth of the peak with the
  image count is visible.

* **client memory** (``--services``): a ``dask scheduler`` and ``--workers``
  ``dask worker`` processes started on 127.0.0.1 as separate services (as a
  user starts them), and the command run against them on ``--services``
  tiny images and on a quarter of them (default 20,000 and 5,000, in 10
  folders), next to ``-j W``: the command's peak RSS is then the client's
  alone, and its growth per image between the two sizes is what the client
  holds per image.

"batch s" is the time the command's summary reports (finding, planning and
processing the images); "wall s" is the whole command, with Python's and
(for Dask) the cluster's start-up.  Throughput is images per batch second.

Run from the repository root (the numbers in the README come from the
default, on a quiet machine)::

    python benchmarks/bench_dask.py            # 200 images, 20,000 tiny ones
    python benchmarks/bench_dask.py --quick    # 20 images, 400 tiny ones: does it run?
    python benchmarks/bench_dask.py --services 20000   # client memory on separate services
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
from _common import PEAK_RSS
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
K = 16
SEED = 0
#: The summary line of a batch: "N written, S skipped, F failed in T s (R images/s)".
SUMMARY = re.compile(r"(?P<written>[0-9]+) written, .* in (?P<seconds>[0-9.]+) s")


def make_images(folder: Path, count: int) -> None:
    """``count`` PNGs: each a sample photo scaled by 0.3-1.2 and cropped to 60-100 %."""
    rng = np.random.default_rng(SEED)
    photos = [Image.open(p).convert("RGB") for p in sorted((ROOT / "sample_images").glob("*.jpg"))]
    for i in range(count):
        photo = photos[i % len(photos)]
        scale = rng.uniform(0.3, 1.2)
        size = (round(photo.width * scale), round(photo.height * scale))
        big = photo.resize(size, Image.Resampling.BILINEAR)
        w, h = (round(d * rng.uniform(0.6, 1.0)) for d in size)
        x, y = rng.integers(0, big.width - w + 1), rng.integers(0, big.height - h + 1)
        big.crop((int(x), int(y), int(x) + w, int(y) + h)).save(folder / f"img{i:05d}.png")


def make_tiny(folder: Path, count: int) -> None:
    """``count`` 8×8 PNGs of two random colors, a tenth of them in each of 10 subfolders.

    Two colors, no more than ``-k``: the palette is the image's own colors, so
    the run measures what a task costs, not k-means (64 random colors would
    cost a tiny image as much clustering as a photo's table).
    """
    rng = np.random.default_rng(SEED)
    per_folder = max(1, count // 10)
    for i in range(count):
        sub = folder / f"{i // per_folder:03d}"
        sub.mkdir(exist_ok=True)
        colors = rng.integers(0, 256, (2, 3), dtype=np.uint8)
        pixels = colors[rng.integers(0, 2, (8, 8))]
        Image.fromarray(pixels).save(sub / f"t{i:05d}.png", compress_level=1)


def run(src: Path, out: Path, extra: list[str]) -> tuple[float, float, int, float]:
    """One command: wall seconds, batch seconds, images written, peak RSS in MiB."""
    with tempfile.NamedTemporaryFile(suffix=".rss") as rss:
        cmd = [sys.executable, "-c", PEAK_RSS, rss.name, str(src), "-r", "-k", str(K)]
        cmd += ["-o", str(out), *extra]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=24 * 3600)
        wall = time.perf_counter() - start
        peak = int(Path(rss.name).read_text() or 0) / 1024
    match = SUMMARY.search(done.stderr)
    if done.returncode != 0 or match is None:
        sys.exit(f"{' '.join(cmd[3:])} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, float(match["seconds"]), int(match["written"]), peak


def measure(
    src: Path, out: Path, count: int, workers: int, repeats: int
) -> dict[str, tuple[float, float, float]]:
    """Median wall s, batch s and peak MiB of -j W and --dask local -j W (taking turns)."""
    modes = {
        f"-j {workers}": ["-j", str(workers)],
        f"--dask local -j {workers}": ["--dask", "local", "-j", str(workers)],
    }
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in modes}
    for _ in range(repeats):
        for name, extra in modes.items():
            subprocess.run(["rm", "-rf", str(out)], check=True)
            wall, batch, written, peak = run(src, out, extra)
            if written != count:
                sys.exit(f"{name}: {written} of {count} images written")
            runs[name].append((wall, batch, peak))
    return {
        name: tuple(statistics.median(r[i] for r in results) for i in range(3))  # type: ignore[misc]
        for name, results in runs.items()
    }


@contextmanager
def services(workers: int, log: Path) -> Iterator[str]:
    """A ``dask scheduler`` and ``workers`` ``dask worker`` processes on 127.0.0.1: its address."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    address = f"tcp://127.0.0.1:{port}"
    dask = [sys.executable, "-m", "dask"]
    commands = [[*dask, "scheduler", "--host", "127.0.0.1", "--port", str(port)]]
    commands += [[*dask, "worker", address, "--nthreads", "1", "--host", "127.0.0.1"]] * workers
    # The settings the README gives for a cluster of quantize workers.
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
        "DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON": '{"MALLOC_TRIM_THRESHOLD_": None}',
        "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
    }
    procs: list[subprocess.Popen[bytes]] = []
    with open(log, "wb") as out:
        try:
            for command in commands:
                procs.append(
                    subprocess.Popen(
                        [*command, "--no-dashboard"],
                        env=env,
                        stdout=out,
                        stderr=out,
                        start_new_session=True,
                    )
                )
            import distributed

            with distributed.Client(address, timeout=60) as client:
                client.wait_for_workers(workers, timeout=120)
            yield address
        finally:
            for proc in procs:
                with suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def client_memory(count: int, workers: int) -> None:
    """The client's peak RSS on separately started services, and with -j W, at two sizes."""
    small = max(1, count // 4)
    print(
        f"client memory: the command against a separately started `dask scheduler` and "
        f"{workers} `dask worker` processes (127.0.0.1), vs `-j {workers}`; k={K}\n"
    )
    print("| run | images | client peak MiB | batch s | ms per image | growth per image |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        trees = {}
        for n in (small, count):
            trees[n] = Path(tmp) / f"tiny{n}"
            trees[n].mkdir()
            make_tiny(trees[n], n)
        out = Path(tmp) / "out"
        with services(workers, Path(tmp) / "services.log") as address:
            modes = {
                f"--dask {address}": ["--dask", address],
                f"-j {workers}": ["-j", str(workers)],
            }
            for name, extra in modes.items():
                peaks = {}
                for n, tree in trees.items():
                    subprocess.run(["rm", "-rf", str(out)], check=True)
                    _, batch, written, peaks[n] = run(tree, out, extra)
                    if written != n:
                        sys.exit(f"{name}: {written} of {n} images written")
                    growth = ""
                    if n == count:
                        per = (peaks[count] - peaks[small]) * 2**20 / (count - small)
                        growth = f"{per:.0f} B (~{per * 1e6 / 2**20:.0f} MiB a million)"
                    label = "`--dask` (services)" if name.startswith("--dask") else f"`{name}`"
                    ms = 1000 * batch / n
                    print(f"| {label} | {n} | {peaks[n]:.1f} | {batch:.1f} | {ms:.1f} | {growth} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200, help="images of the throughput run")
    parser.add_argument("--tiny", type=int, default=20_000, help="tiny images of the overhead run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="20 images, 400 tiny ones")
    parser.add_argument(
        "--services",
        type=int,
        metavar="N",
        help="only the client memory: N and N/4 tiny images on separately started services",
    )
    args = parser.parse_args()
    if args.quick:
        args.images, args.tiny = 20, 400
    try:
        import distributed
    except ImportError:
        sys.exit('Dask is not installed: pip install "quantize[dask]"')
    if args.services:
        client_memory(args.services, args.workers)
        return
    print(
        f"quantize on Dask {distributed.__version__} vs local processes, k={K}, "
        f"{args.workers} workers, {os.cpu_count()} CPU cores, median of {args.repeats}\n"
    )
    print("| workload | run | wall s | batch s | images/s | client peak MiB |")
    print("|---|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        workloads = []
        photos = Path(tmp) / "photos"
        photos.mkdir()
        make_images(photos, args.images)
        workloads.append((f"{args.images} images", photos, args.images))
        if args.tiny > 0:  # --tiny 0: the photos' throughput alone
            tiny = Path(tmp) / "tiny"
            tiny.mkdir()
            make_tiny(tiny, args.tiny)
            tenth = max(1, args.tiny // 10)
            workloads.append((f"{tenth} tiny images", tiny / "000", tenth))
            workloads.append((f"{args.tiny} tiny images", tiny, args.tiny))
        results = {}
        for label, src, count in workloads:
            results[label] = measure(src, out, count, args.workers, args.repeats)
            for name, (wall, batch, peak) in results[label].items():
                print(
                    f"| {label} | `{name}` | {wall:.1f} | {batch:.1f} | "
                    f"{count / batch if batch else float('inf'):.1f} | {peak:.0f} |"
                )
    print()
    local, dask = (f"-j {args.workers}", f"--dask local -j {args.workers}")
    for label, _, count in workloads:
        got = results[label]
        ratio = got[local][1] / got[dask][1] if got[dask][1] else float("inf")
        extra_ms = 1000 * (got[dask][1] - got[local][1]) / count
        print(
            f"{label}: Dask throughput {100 * ratio:.0f}% of local "
            f"(target >= 85% for the {args.images} images); "
            f"{extra_ms:+.2f} ms per image on Dask"
        )


if __name__ == "__main__":
    main()
