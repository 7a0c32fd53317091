"""Benchmark whole runs of the ``quantize`` command against ``pngquant --nofs``.

For each input (``sample_images/china.jpg`` and a 4000x3000 JPEG made by
upscaling it with LANCZOS) it runs, one after the other, several times:

* ours: ``python -m quantize INPUT -k K -o OUT.png --force -q`` (process
  start to exit, the JSON report included, as a user runs it);
* ``pngquant --nofs K`` on a PNG copy of the same input (pngquant reads PNG
  only);

and prints the median wall time, the peak resident memory of the child
(GNU ``/usr/bin/time -f %M`` when present, else ``ru_maxrss`` from
:func:`os.wait4`), and the MSE per channel (0-255) of the
output against the decoded input.  It also times ``python -m quantize --help``.
Finally every target of the command's issue with PASS or FAIL.

Run from the repository root::

    python benchmarks/bench_cli.py [--runs 5] [--colors 16]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from _common import (
    PNGQUANT,
    SAMPLES,
    Timing,
    big_china,
    compile_package,
    decoded,
    mse,
    time_command,
    verdict,
)
from PIL import Image


def ours_cmd(src: Path, out: Path, k: int) -> list[str]:
    return [sys.executable, "-m", "quantize", str(src), "-k", str(k), "-o", str(out)]


# What any Python tool built on numpy, Pillow and Click pays before it does
# any clustering: start, imports, JPEG decode, an indexed PNG write.
FLOOR_SCRIPT = """
import sys
import click, numpy as np
from PIL import Image
rgb = np.asarray(Image.open(sys.argv[1]).convert("RGB"))
index = (rgb[..., 0] >> 4).astype(np.uint8)
out = Image.fromarray(index, "L").convert("P")
out.putpalette(list(range(48)))
out.save(sys.argv[2])
"""


def floor_cmd(src: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", FLOOR_SCRIPT, str(src), str(out)]


def pngquant_cmd(src_png: Path, out: Path, k: int) -> list[str]:
    assert PNGQUANT is not None
    return [PNGQUANT, "--nofs", "--force", "--output", str(out), str(k), str(src_png)]


@dataclass(frozen=True)
class Row:
    name: str
    ours: Timing
    ours_mse: float
    peer: Timing | None
    peer_mse: float | None


def bench_input(name: str, src: Path, tmp: Path, k: int, runs: int) -> Row:
    reference = decoded(src)
    out = tmp / f"{src.stem}-ours.png"
    # --force so that every run does the same work (the first one creates OUT).
    ours = time_command([*ours_cmd(src, out, k), "--force", "-q"], runs)
    ours_mse = mse(reference, out)
    if PNGQUANT is None:
        return Row(name, ours, ours_mse, None, None)
    png = tmp / f"{src.stem}-copy.png"
    Image.fromarray(reference).save(png, compress_level=1)
    peer_out = tmp / f"{src.stem}-pngquant.png"
    peer = time_command(pngquant_cmd(png, peer_out, k), runs)
    return Row(name, ours, ours_mse, peer, mse(reference, peer_out))


def make_big(tmp: Path) -> Path:
    """A 4000x3000 photo: china.jpg upscaled with LANCZOS, saved as JPEG."""
    path = tmp / "china-4000x3000.jpg"
    Image.fromarray(big_china()).save(path, quality=92)
    return path


def print_rows(rows: list[Row], k: int) -> None:
    print(f"k={k}; median wall time of whole runs, peak RSS of the child, MSE per channel")
    print(
        f"{'input':<22}{'ours s':>9}{'MiB':>7}{'MSE':>9}"
        f"{'pngquant s':>12}{'MiB':>7}{'MSE':>9}{'time ratio':>12}"
    )
    for r in rows:
        line = f"{r.name:<22}{r.ours.seconds:>9.3f}{r.ours.peak_mib:>7.0f}{r.ours_mse:>9.2f}"
        if r.peer is not None and r.peer_mse is not None:
            ratio = r.ours.seconds / r.peer.seconds
            line += f"{r.peer.seconds:>12.3f}{r.peer.peak_mib:>7.0f}{r.peer_mse:>9.2f}"
            line += f"{ratio:>11.2f}x"
        print(line, flush=True)


def check_targets(small: Row, big: Row, help_time: Timing) -> list[str]:
    lines = []
    if small.peer is not None and small.peer_mse is not None:
        ratio = small.ours.seconds / small.peer.seconds
        text = f"china.jpg: {ratio:.2f}x pngquant's time (need <= 1.5x)"
        lines.append(verdict(ratio <= 1.5, text))
        lines.append(verdict(small.ours_mse < small.peer_mse, "china.jpg: lower MSE than pngquant"))
    seconds, peak = big.ours.seconds, big.ours.peak_mib
    lines.append(verdict(seconds < 1.2, f"4000x3000: {seconds:.2f} s (need < 1.2 s)"))
    lines.append(verdict(peak < 400, f"4000x3000: peak {peak:.0f} MiB (need < 400)"))
    if big.peer_mse is not None:
        lines.append(verdict(big.ours_mse < big.peer_mse, "4000x3000: lower MSE than pngquant"))
    lines.append(
        verdict(help_time.seconds < 0.3, f"--help: {help_time.seconds:.3f} s (need < 0.3 s)")
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each command (median)")
    parser.add_argument("--colors", type=int, default=16, help="palette size k")
    args = parser.parse_args()
    compile_package()
    if PNGQUANT is None:
        print("pngquant not found on PATH: timing ours only")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        small_src = tmp / "china.jpg"
        shutil.copyfile(SAMPLES / "china.jpg", small_src)
        small = bench_input("china.jpg 640x427", small_src, tmp, args.colors, args.runs)
        big = bench_input("china 4000x3000 jpg", make_big(tmp), tmp, args.colors, args.runs)
        floor = time_command(floor_cmd(small_src, tmp / "floor.png"), args.runs)
    print_rows([small, big], args.colors)
    if small.peer is not None:
        print(
            f"\nPython floor on china.jpg (start, import numpy/Pillow/Click, decode, write "
            f"an indexed PNG; no clustering): {floor.seconds:.3f} s = "
            f"{floor.seconds / small.peer.seconds:.2f}x pngquant"
        )
    help_time = time_command([sys.executable, "-m", "quantize", "--help"], args.runs)
    print(f"\nquantize --help: median {help_time.seconds:.3f} s, peak {help_time.peak_mib:.0f} MiB")
    print("\nTargets:")
    print("\n".join(check_targets(small, big, help_time)))


if __name__ == "__main__":
    main()
