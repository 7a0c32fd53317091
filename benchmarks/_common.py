"""What the benchmark scripts share: paths, peers, timing, error measures, verdicts.

The scripts run from the repository root (``python benchmarks/bench_x.py``),
which puts ``benchmarks/`` on ``sys.path``; importing this module also puts
the repository there, so ``quantize`` and ``corpus`` import from the working
tree even when the package is not installed.
"""

from __future__ import annotations

import compileall
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample_images"
for _path in (ROOT / "benchmarks", ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

#: The peer command, or None when pngquant is not installed.
PNGQUANT = shutil.which("pngquant")
PNGQUANT_MISSING = "pngquant not found on PATH (apt-get install -y pngquant)"
#: Width x height of the 12 MP case.
BIG_SIZE = (4000, 3000)

# GNU time measures the child's own peak RSS.  ``ru_maxrss`` from os.wait4
# is polluted here: a child spawned with vfork from this (large) process
# inherits the parent's high-water mark at exec.
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None

T = TypeVar("T")

#: Runs the command in this interpreter and writes its peak RSS (KiB) to argv[1].
PEAK_RSS = """
import atexit, resource, sys
out = sys.argv.pop(1)
def peak():
    with open(out, "w") as f:
        f.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
atexit.register(peak)
from quantize.cli import main
sys.argv[0] = "quantize"
main()
"""


def has_sklearn() -> bool:
    """Whether the scikit-learn peer is installed (without importing it)."""
    return importlib.util.find_spec("sklearn") is not None


def compile_package() -> None:
    """Write the package's bytecode, as installing it does.

    A run from the source tree under ``PYTHONDONTWRITEBYTECODE`` would
    otherwise compile every module on every start, which an installed
    ``quantize`` never does.
    """
    compileall.compile_dir(ROOT / "quantize", quiet=1)


@dataclass(frozen=True)
class Timing:
    """Median wall seconds and largest peak RSS (MiB) over the runs."""

    seconds: float
    peak_mib: float


def run_child(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds from spawn to exit, and the child's peak RSS in MiB."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        full = [GNU_TIME, "-f", "%M", "-o", rss.name, *cmd] if GNU_TIME else cmd
        start = time.perf_counter()
        proc = subprocess.Popen(full, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert proc.stderr is not None
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {code}: {err.decode()[-500:]}")
        kib = int(rss.read().split()[-1]) if GNU_TIME else usage.ru_maxrss
    return seconds, kib / 1024


def time_command(cmd: list[str], runs: int) -> Timing:
    """Median wall time and largest peak RSS of ``runs`` runs of ``cmd``."""
    results = [run_child(cmd) for _ in range(runs)]
    return Timing(statistics.median(r[0] for r in results), max(r[1] for r in results))


def median_run(make: Callable[[], T], repeats: int) -> tuple[T, float]:
    """The result of the last of ``repeats`` calls of ``make``, and their median seconds."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = make()
        times.append(time.perf_counter() - start)
    assert out is not None
    return out, statistics.median(times)


def decoded(path: Path) -> NDArray[np.uint8]:
    """The image file's pixels as RGB, shape (height, width, 3)."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def mse(reference: NDArray[np.uint8], output: Path | Image.Image | NDArray[np.uint8]) -> float:
    """Mean squared error per channel (0-255 scale) of ``output`` against ``reference``.

    Exact integer sums in row blocks, to stay small on 12 MP.
    """
    if isinstance(output, Path):
        got = decoded(output)
    elif isinstance(output, Image.Image):
        got = np.asarray(output.convert("RGB"))
    else:
        got = output
    if got.shape != reference.shape:
        raise RuntimeError(f"{output}: shape {got.shape}, expected {reference.shape}")
    total = 0
    for start in range(0, reference.shape[0], 256):
        diff = got[start : start + 256].astype(np.int32) - reference[start : start + 256]
        total += int(np.einsum("ijc,ijc->", diff, diff, dtype=np.int64))
    return total / reference.size


def big_china(size: tuple[int, int] = BIG_SIZE) -> NDArray[np.uint8]:
    """The 12 MP case: ``sample_images/china.jpg`` upscaled with LANCZOS, (h, w, 3)."""
    with Image.open(SAMPLES / "china.jpg") as img:
        return np.asarray(img.convert("RGB").resize(size, Image.Resampling.LANCZOS))


def status(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


def verdict(ok: bool, text: str) -> str:
    """One line of a script's target list: PASS or FAIL, then what was checked."""
    return f"  {status(ok)}  {text}"
