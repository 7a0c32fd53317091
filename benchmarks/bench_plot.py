"""What ``--plot`` costs: the whole command on a batch, with and without it.

Writes ``--images`` crops of ``sample_images/china.jpg`` (640x400 and
smaller) to a temporary folder and runs ``quantize FOLDER -k 16 -j J``
(``--workers``) ``--repeats`` times each way, printing the median wall time
and the CPU time of the command and its workers (user + sys), and the cost
``--plot`` adds per image.  CPU time is the steadier number on a busy machine.

Run from the repository root::

    python benchmarks/bench_plot.py --images 21 --workers 2 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, SAMPLES
from PIL import Image


def run(folder: Path, out: Path, workers: int, plot: bool) -> tuple[float, float]:
    """Wall seconds and CPU seconds (this command and its workers) of one run."""
    args = [sys.executable, "-m", "quantize", str(folder), "-k", "16", "-j", str(workers)]
    args += ["-o", f"{out}{os.sep}", "--force", "-q"] + (["--plot"] if plot else [])
    before = os.times()
    start = time.perf_counter()
    subprocess.run(args, check=True, cwd=ROOT)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=21)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with Image.open(SAMPLES / "china.jpg") as im:
        photo = im.convert("RGB")
    with tempfile.TemporaryDirectory() as tmp_name:
        folder, out = Path(tmp_name) / "in", Path(tmp_name) / "out"
        folder.mkdir()
        for i in range(args.images):
            photo.crop((i * 5, i * 3, 640 - i * 5, 400)).save(folder / f"p{i:02d}.png")
        times: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        for _ in range(args.repeats):
            for plot in (False, True):
                times[plot].append(run(folder, out, args.workers, plot))
    print(f"{args.images} images, -j {args.workers}, median of {args.repeats} runs\n")
    print("| run | wall s | CPU s |")
    print("|---|---:|---:|")
    medians = {}
    for plot in (False, True):
        wall = statistics.median(w for w, _ in times[plot])
        cpu = statistics.median(c for _, c in times[plot])
        medians[plot] = (wall, cpu)
        print(f"| {'with' if plot else 'without'} --plot | {wall:.2f} | {cpu:.2f} |")
    extra_wall = (medians[True][0] - medians[False][0]) / args.images
    extra_cpu = (medians[True][1] - medians[False][1]) / args.images
    print(f"\n--plot adds {extra_wall:.3f} s wall and {extra_cpu:.3f} s CPU per image")


if __name__ == "__main__":
    main()
