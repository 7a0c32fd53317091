"""Benchmark how soon a batch over a huge folder tree starts, and what the client holds.

Two measurements, each of the command as a user runs it (``python -m quantize
TREE -r -k 16 -o OUT -j W``, stderr not a terminal, so one line per image):

* **first image**: a tree of ``--files`` tiny PNGs (default 200,000; 8×8,
  copies of one file) in nested folders (``--fanout`` folders per level, two
  levels, files spread evenly).  The time from starting the command to its
  first per-image line is how long discovery and planning keep the workers
  waiting; the command is then stopped with SIGINT.
* **client memory**: ``--tiny`` 8×8 PNGs of random colors (default 20,000),
  run to the end with ``-j 2`` and, with ``--dask``, ``--dask local -j 2``;
  the peak RSS of the command's process (``RUSAGE_SELF``: the client, and with
  ``--dask local`` also the scheduler that runs in it) per image, against a
  run over a tenth of the images (in a tenth as many folders, ``--folders``),
  so that the per-image growth shows, and what it comes to for a million.

``--modes`` picks the command's options for both measurements: ``plain``,
``force`` (``--force``, nothing to replace), ``force-replacing`` (``--force``
with the first image's output already there, so every input is protected
before it is replaced: the worst case of a re-run) and ``html``
(``--html``).

``--other PATH`` compares the code at PATH (another checkout, e.g. ``main``)
with this one: the same commands with ``PYTHONPATH`` set to each.

Run from the repository root::

    python benchmarks/bench_discovery.py --quick
    python benchmarks/bench_discovery.py --files 200000 --other /work/main
    python benchmarks/bench_discovery.py --modes force,force-replacing --other /work/main
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import PEAK_RSS
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def make_tree(folder: Path, files: int, fanout: int) -> None:
    """``files`` copies of one 8×8 PNG spread over ``fanout``² nested folders."""
    seed = folder / "seed.png"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(seed)
    data = seed.read_bytes()
    seed.unlink()
    leaves = [folder / f"d{i:03d}" / f"e{j:03d}" for i in range(fanout) for j in range(fanout)]
    for n in range(files):
        leaf = leaves[n % len(leaves)]
        if n < len(leaves):
            leaf.mkdir(parents=True)
        (leaf / f"img{n:07d}.png").write_bytes(data)


def make_tiny(folder: Path, count: int, folders: int = 10) -> None:
    """``count`` 8×8 PNGs of random colors in ``folders`` subfolders."""
    rng = np.random.default_rng(0)
    for i in range(count):
        sub = folder / f"s{i % folders}"
        sub.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(sub / f"t{i:05d}.png")


#: The command's options of each --modes choice.
MODES = {"plain": [], "force": ["--force"], "force-replacing": ["--force"], "html": ["--html"]}


def prepare_out(out: Path, mode: str, first_output: Path | None) -> None:
    """An empty output folder, or with ``force-replacing`` one holding the first image's output."""
    shutil.rmtree(out, ignore_errors=True)
    if mode == "force-replacing" and first_output is not None:
        target = out / first_output
        target.parent.mkdir(parents=True)
        target.write_bytes(b"an old output")


def env_for(code: Path) -> dict[str, str]:
    """The environment that imports ``code``: run with a ``cwd`` outside every checkout
    (``python -m`` and ``-c`` put the working folder before ``PYTHONPATH``)."""
    env = dict(os.environ, PYTHONPATH=str(code), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env.pop("COLUMNS", None)
    return env


def first_image(code: Path, tree: Path, out: Path, workers: int, mode: str) -> float:
    """Seconds from starting the command to its first per-image line."""
    prepare_out(out, mode, Path("d000", "e000", "img0000000-k4.png"))
    cmd = [sys.executable, "-m", "quantize", str(tree), "-r", "-k", "4", "-o", f"{out}/"]
    cmd += ["-j", str(workers), *MODES[mode]]
    start = time.perf_counter()
    # A shell's background job ignores SIGINT, and so would the command: restore it.
    proc = subprocess.Popen(
        cmd,
        env=env_for(code),
        cwd=out.parent,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    seconds = time.perf_counter() - start
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()  # not the measurement; a stuck stop must not stop the benchmark
        proc.communicate()
        print(f"  (the command did not stop within 120 s of SIGINT: {' '.join(cmd)})")
    if not line:
        raise RuntimeError("the command printed nothing")
    return seconds


def peak_kib(code: Path, folder: Path, out: Path, extra: list[str], mode: str) -> int:
    """Peak RSS (KiB) of the command run to the end over ``folder``."""
    prepare_out(out, mode, Path("s0", "t00000-k4.png"))
    extra = [*extra, *MODES[mode]]
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        cmd = [sys.executable, "-c", PEAK_RSS, rss.name, str(folder), "-r", "-k", "4"]
        cmd += ["-o", f"{out}/", "-q", *extra]
        subprocess.run(cmd, env=env_for(code), cwd=out.parent, check=False, capture_output=True)
        return int(rss.read() or 0)


def first_images(args: argparse.Namespace, codes: dict[str, Path], tree: Path, out: Path) -> None:
    """Time to the first image on a generated tree, for each checkout, interleaved."""
    made = time.perf_counter()
    make_tree(tree, args.files, args.fanout)
    print(
        f"tree: {args.files} files in {args.fanout**2} folders (2 levels), "
        f"made in {time.perf_counter() - made:.0f} s"
    )
    for mode in args.modes:
        for workers in (1, 2):
            times: dict[str, list[float]] = {name: [] for name in codes}
            for _ in range(args.repeat):  # interleaved
                for name, code in codes.items():
                    times[name].append(first_image(code, tree, out, workers, mode))
            for name, values in times.items():
                print(
                    f"first image, {mode}, -j {workers}, {name}: median {np.median(values):.2f} s "
                    f"({', '.join(f'{v:.2f}' for v in values)})"
                )
    shutil.rmtree(tree)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200_000)
    parser.add_argument("--fanout", type=int, default=30)
    parser.add_argument("--tiny", type=int, default=20_000)
    parser.add_argument(
        "--folders",
        type=int,
        default=10,
        help="subfolders the --tiny images are spread over (a tenth as many for the small run)",
    )
    parser.add_argument("--other", type=Path, help="another checkout to compare with")
    parser.add_argument("--dask", action="store_true", help="also measure --dask local")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--modes",
        type=lambda text: text.split(","),
        default=["plain"],
        help=f"comma-separated, of: {', '.join(MODES)}",
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-first", action="store_true", help="measure memory only")
    args = parser.parse_args()
    if args.quick:
        args.files, args.fanout, args.tiny, args.repeat = 2000, 5, 400, 1
    codes = {"this": ROOT, **({"other": args.other.resolve()} if args.other else {})}
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        tree, out = Path(tmp, "tree"), Path(tmp, "out")
        if not args.skip_first:
            first_images(args, codes, tree, out)
        if args.skip_memory:
            return
        tiny, small = Path(tmp, "tiny"), Path(tmp, "small")
        make_tiny(tiny, args.tiny, args.folders)
        make_tiny(small, args.tiny // 10, max(1, args.folders // 10))
        runs = [["-j", "2"], *([["--dask", "local", "-j", "2"]] if args.dask else [])]
        for extra in runs:
            for mode in args.modes:
                for name, code in codes.items():
                    big = peak_kib(code, tiny, out, extra, mode)
                    little = peak_kib(code, small, out, extra, mode)
                    per = (big - little) * 1024 / (args.tiny - args.tiny // 10)
                    print(
                        f"peak RSS {' '.join(extra)} {mode}, {name}: {args.tiny} images "
                        f"{big / 1024:.0f} MiB, {args.tiny // 10} images "
                        f"{little / 1024:.0f} MiB, {per:.0f} bytes/image "
                        f"({per * 1e6 / 2**20:.0f} MiB per million images)"
                    )


if __name__ == "__main__":
    main()
