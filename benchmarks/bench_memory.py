"""Peak memory of the whole ``quantize`` command on pure noise, next to pngquant.

Pure noise is the worst case for a tool that clusters the table of distinct
colors: a 12 MP noise image holds about 8.6 million distinct colors, a 50 MP
one about 15.9 million (of 16.7 million).  Issue 11 asks for memory bounded
by the pixel count in every mode: under 500 MB peak RSS for 12 MP and under
1500 MB for 50 MP (MB = 1000 KiB, as GNU time reports it).

The script writes noise PNGs (numpy ``integers(0, 256)``, seed 0) into a
temporary folder and runs each mode in a fresh process, one after the other:

* ``quantize NOISE.png -o OUT/ --force -q`` plus the mode's options: rgb,
  ``--space lab``, ``--space oklab``, ``--dither`` (Floyd–Steinberg),
  ``--dither --dither-method ordered``, ``-k auto``, ``--algorithm
  minibatch``, ``-k 256``, ``--shared-palette`` over two noise images
  (``-j 2``: the peak is that of the largest process), and ``--keep
  '#ffffff,#000000'`` (two fixed centers);
* ``pngquant 16`` (Floyd–Steinberg) and ``pngquant --nofs 16`` on the same
  PNG, when pngquant is installed (``apt-get install -y pngquant``).

Each child's peak RSS comes from ``resource.getrusage(RUSAGE_CHILDREN)``
read by a small wrapper process that runs only that child, so no other
process's high-water mark is mixed in.  Times are wall seconds of one run
(noisy on a shared machine; memory is not).

Run from the repository root::

    python benchmarks/bench_memory.py                # 12 and 50 MP, every mode
    python benchmarks/bench_memory.py --sizes 12     # 12 MP only
    python benchmarks/bench_memory.py --quick        # 2 MP, a few modes: a smoke test
    python benchmarks/bench_memory.py --sizes 12 --modes jpeg,jpeg-photo
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _common import PNGQUANT, PNGQUANT_MISSING, ROOT, big_china
from PIL import Image

#: Width x height of each size in megapixels.
SIZES = {2: (1732, 1155), 12: (4000, 3000), 50: (8660, 5773)}
#: Peak RSS bound in MB (1000 KiB) of each size, from issue 11.
BOUNDS_MB = {2: 500.0, 12: 500.0, 50: 1500.0}
#: Mode name -> extra options of the quantize command.
MODES: dict[str, list[str]] = {
    "rgb": [],
    "lab": ["--space", "lab"],
    "oklab": ["--space", "oklab"],
    "dither": ["--dither"],
    "ordered": ["--dither", "--dither-method", "ordered"],
    "auto": ["-k", "auto"],
    "minibatch": ["--algorithm", "minibatch"],
    "k256": ["-k", "256"],
    "shared": ["--shared-palette", "-j", "2"],
    "keep": ["--keep", "#ffffff,#000000"],
    "jpeg": ["--format", "jpeg"],
    "photo": [],
    "jpeg-photo": ["--format", "jpeg"],
}
#: Modes run on the photo-like image instead of noise.
PHOTO_MODES = frozenset({"photo", "jpeg-photo"})
QUICK_MODES = ("rgb", "dither", "ordered", "jpeg", "jpeg-photo")
# Runs one command and prints its children's peak RSS (KiB on Linux) and
# exit code: a fresh, small process, so the figure is that child's alone.
_WRAPPER = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)"
)


@dataclass(frozen=True)
class Run:
    """One measured command: peak RSS in MB (1000 KiB) and wall seconds."""

    peak_mb: float
    seconds: float


def measure(cmd: list[str]) -> Run:
    """Run ``cmd`` in a fresh wrapper process; its peak RSS and wall time."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", _WRAPPER, *cmd], cwd=ROOT, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    fields = out.stdout.split()
    if out.returncode != 0 or len(fields) != 2 or fields[1] != "0":
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stdout} {out.stderr[-500:]}")
    return Run(int(fields[0]) / 1000.0, seconds)


def noise_png(folder: Path, megapixels: int, seed: int = 0) -> Path:
    """Write (once) a pure-noise RGB PNG of the given size."""
    width, height = SIZES[megapixels]
    path = folder / f"noise-{megapixels}mp-{seed}.png"
    if not path.exists():
        rng = np.random.default_rng(seed)
        pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path, compress_level=1)
    return path


def photo_png(folder: Path, megapixels: int) -> Path:
    """Write (once) the photo-like PNG of the given size (`_common.big_china`)."""
    path = folder / f"photo-{megapixels}mp.png"
    if not path.exists():
        Image.fromarray(big_china(SIZES[megapixels])).save(path, compress_level=1)
    return path


def quantize_cmd(inputs: list[Path], out: Path) -> list[str]:
    """The command for ``inputs`` into folder ``out``, without the mode's options."""
    return [sys.executable, "-m", "quantize", *map(str, inputs), "-o", f"{out}/", "--force", "-q"]


def distinct_colors(report: Path) -> int | None:
    """The ``distinct_colors`` of a report, or None when it cannot be read."""
    try:
        return int(json.loads(report.read_text())["distinct_colors"])
    except (OSError, KeyError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="12,50", help="comma-separated MP: 2, 12, 50")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated modes")
    parser.add_argument("--quick", action="store_true", help="2 MP, a few modes only")
    args = parser.parse_args(argv)
    sizes = [2] if args.quick else [int(s) for s in args.sizes.split(",")]
    modes = list(QUICK_MODES) if args.quick else args.modes.split(",")
    unknown = [m for m in modes if m not in MODES] + [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown modes or sizes: {unknown}")
    if PNGQUANT is None:
        print(f"{PNGQUANT_MISSING}: its rows are skipped")
    failed = 0
    header = f"{'size':>5} {'tool':<10} {'mode':<10} {'colors':>10} {'peak MB':>8} {'s':>7}  bound"
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        folder = Path(tmp)
        print(header)
        print("-" * len(header))
        for mp in sizes:
            image = noise_png(folder, mp)
            bound = BOUNDS_MB[mp]
            for mode in modes:
                out = folder / f"out-{mp}-{mode}"
                inputs = [image, noise_png(folder, mp, seed=1)] if mode == "shared" else [image]
                if mode in PHOTO_MODES:
                    inputs = [photo_png(folder, mp)]
                cmd = quantize_cmd(inputs, out) + MODES[mode]
                run = measure(cmd)
                reports = sorted(out.glob("*.json"))
                colors = distinct_colors(reports[0]) if reports else None
                verdict = "PASS" if run.peak_mb < bound else "FAIL"
                failed += verdict == "FAIL"
                shown = f"{colors:,}" if colors is not None else "-"
                print(
                    f"{mp:>3}MP {'quantize':<10} {mode:<10} {shown:>10} {run.peak_mb:>8.0f} "
                    f"{run.seconds:>7.2f}  {verdict} (< {bound:.0f})",
                    flush=True,
                )
                shutil.rmtree(out, ignore_errors=True)
            if PNGQUANT is not None:
                for name, extra in (("fs", []), ("nofs", ["--nofs"])):
                    target = folder / f"pngquant-{mp}-{name}.png"
                    cmd = [PNGQUANT, *extra, "--force", "--output", str(target), "16", str(image)]
                    run = measure(cmd)
                    print(
                        f"{mp:>3}MP {'pngquant':<10} {name:<10} {'-':>10} {run.peak_mb:>8.0f} "
                        f"{run.seconds:>7.2f}",
                        flush=True,
                    )
                    target.unlink(missing_ok=True)
    print(f"\n{failed} over the bound" if failed else "\nevery quantize run within its bound")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
