"""256 colors on 12-17 MP photos: the whole ``quantize`` command against ``pngquant --nofs``.

k = 256 is pngquant's default and the web's most common setting.  The inputs
are held-out corpus photos (:mod:`corpus`) scaled with LANCZOS to 12 and
16 MP, and a 12 MP synthetic render (smooth gradient with noise: about a
million distinct colors), each saved once as a PNG that both commands read
(pngquant reads only PNG).  The commands run interleaved, round by round:

* ours: ``python -m quantize IN.png -k 256 -o OUT.png --force -q`` (process
  start to exit, the JSON report included);
* ``pngquant 256 --nofs`` on the same file;

and the script prints each command's median wall time, the ratio of the
medians, the peak RSS of the child and the MSE per channel (0-255) of each
output against the decoded input.  Target of issue 14: at most 0.5x
pngquant's whole-command time with a lower MSE, on every input.

It also prints each command's median CPU time (user + system, all threads):
pngquant runs libimagequant's OpenMP threads on every core; quantize
decodes its PNG input on a thread while its modules load
(`quantize.prefetch`), splits counting, recoloring, the clustering's
nearest-center searches, the nearest-color search and ΔE over threads,
runs the restarts of a fit one per thread, computes the metrics on a
thread of its own and deflates the PNG in 2-3 parts on threads
(`quantize._threads`, `quantize.encode`).  On an idle machine the wall
time is what a user waits; on a busy one the CPU times are the steadier
measure of the work each command does, and threads gain little there.

Run from the repository root on a quiet machine::

    python benchmarks/bench_k256.py [--runs 5]
    python benchmarks/bench_k256.py --quick      # one photo, 2 runs
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import PNGQUANT, compile_package, decoded, mse, run_child, verdict  # noqa: E402
from bench_cli import ours_cmd, pngquant_cmd  # noqa: E402
from corpus import RENDERS, corpus, large  # noqa: E402

K = 256
# (corpus photo, megapixels) scaled up, and the render drawn at 12 MP.
PHOTOS = (("astronaut", 12.0), ("coffee", 12.0), ("motorcycle_left", 16.0))
RENDER = "render-gradient"
RENDER_SIZE = (3000, 4000)


def make_inputs(tmp: Path, quick: bool) -> list[Path]:
    by_name = {image.name: image for image in corpus()}
    images = [large(by_name[name], mp) for name, mp in PHOTOS[: 1 if quick else None]]
    if not quick:
        _, render = RENDERS[RENDER]
        pixels = render(*RENDER_SIZE)
        images.append(type(images[0])(f"{RENDER}-12mp", "render", pixels))
    paths = []
    for image in images:
        path = tmp / f"{image.name}.png"
        Image.fromarray(image.pixels).save(path, compress_level=1)
        paths.append(path)
    return paths


def _children_cpu() -> float:
    """User + system seconds of every waited-for child process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None, help="rounds (default 5; 2 quick)")
    parser.add_argument("--quick", action="store_true", help="one 12 MP photo")
    args = parser.parse_args()
    runs = args.runs or (2 if args.quick else 5)
    compile_package()
    if PNGQUANT is None:
        print("pngquant not found on PATH (apt-get install -y pngquant): timing ours only")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        inputs = make_inputs(tmp, args.quick)
        times: dict[tuple[Path, str], list[float]] = {}
        cpu: dict[tuple[Path, str], list[float]] = {}
        peaks: dict[tuple[Path, str], float] = {}
        for _ in range(runs):
            for src in inputs:
                cmds = {"ours": [*ours_cmd(src, tmp / f"{src.stem}-ours.png", K), "--force", "-q"]}
                if PNGQUANT is not None:
                    cmds["pngquant"] = pngquant_cmd(src, tmp / f"{src.stem}-pq.png", K)
                for who, cmd in cmds.items():
                    before = _children_cpu()
                    seconds, peak = run_child(cmd)
                    cpu.setdefault((src, who), []).append(_children_cpu() - before)
                    times.setdefault((src, who), []).append(seconds)
                    peaks[src, who] = max(peaks.get((src, who), 0.0), peak)
        print(
            f"k={K}; median wall time of {runs} interleaved whole runs, peak RSS, MSE per channel"
        )
        print(
            f"{'input':<28}{'MP':>6}{'ours s':>9}{'MiB':>6}{'MSE':>8}"
            f"{'pngquant s':>12}{'MiB':>6}{'MSE':>8}{'ratio':>8}"
            f"{'cpu ours':>10}{'cpu pq':>8}{'ratio':>7}"
        )
        checks = []
        for src in inputs:
            reference = decoded(src)
            mp = reference.shape[0] * reference.shape[1] / 1e6
            ours_s = statistics.median(times[src, "ours"])
            ours_mse = mse(reference, tmp / f"{src.stem}-ours.png")
            line = (
                f"{src.stem:<28}{mp:>6.1f}{ours_s:>9.3f}{peaks[src, 'ours']:>6.0f}{ours_mse:>8.2f}"
            )
            if PNGQUANT is not None:
                peer_s = statistics.median(times[src, "pngquant"])
                peer_mse = mse(reference, tmp / f"{src.stem}-pq.png")
                ratio = ours_s / peer_s
                line += f"{peer_s:>12.3f}{peaks[src, 'pngquant']:>6.0f}{peer_mse:>8.2f}"
                line += f"{ratio:>7.2f}x"
                ours_cpu = statistics.median(cpu[src, "ours"])
                peer_cpu = statistics.median(cpu[src, "pngquant"])
                line += f"{ours_cpu:>10.3f}{peer_cpu:>8.3f}{ours_cpu / peer_cpu:>6.2f}x"
                checks.append(verdict(ratio <= 0.5, f"{src.stem}: {ratio:.2f}x pngquant (<= 0.5x)"))
                checks.append(
                    verdict(ours_mse < peer_mse, f"{src.stem}: MSE {ours_mse:.2f} < {peer_mse:.2f}")
                )
            print(line, flush=True)
    if checks:
        print("\nTargets:")
        print("\n".join(checks))


if __name__ == "__main__":
    main()
