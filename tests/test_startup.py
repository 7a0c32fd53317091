"""What the command imports: heavy modules only when a run needs them.

Each check runs in a fresh interpreter, since this test process has
imported everything already.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Run ``quantize_command`` with some arguments, then print the loaded module names.
RUN = """
import sys
from quantize.cli import quantize_command
try:
    quantize_command.main(sys.argv[1:])
except SystemExit as exc:
    assert exc.code in (0, None), exc.code
print("\\n".join(sorted(sys.modules)))
"""


def loaded_modules(*args: str) -> set[str]:
    """Names in ``sys.modules`` after a fresh interpreter ran ``quantize ARGS``."""
    done = subprocess.run(
        [sys.executable, "-c", RUN, *args],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return set(done.stdout.split())


def test_importing_the_cli_loads_neither_numpy_nor_pillow() -> None:
    modules = loaded_modules("--version")
    assert "quantize.cli" in modules
    assert not {"numpy", "PIL", "quantize.pipeline"} & modules


def test_help_loads_neither_numpy_nor_pillow() -> None:
    modules = loaded_modules("--help")
    assert "click" in modules
    assert not {"numpy", "PIL", "quantize.pipeline"} & modules


def test_single_image_run_does_not_load_what_it_does_not_use(photo: Path) -> None:
    modules = loaded_modules(str(photo), "-q", "-j", "1")
    assert photo.with_name("photo-k16.png").exists()
    assert {"numpy", "PIL.Image", "quantize.pipeline"} <= modules
    # No worker pool, no swatch, no color profile in the file, no masked arrays.
    unused = {
        "multiprocessing",
        "concurrent.futures",
        "PIL.ImageDraw",
        "PIL.ImageFont",
        "PIL.ImageCms",
        "numpy.ma",
        "matplotlib",
    }
    assert not unused & modules


def test_a_swatch_loads_the_font_machinery(photo: Path) -> None:
    modules = loaded_modules(str(photo), "-q", "--swatch")
    assert {"PIL.ImageDraw", "PIL.ImageFont"} <= modules
    assert photo.with_name("photo-k16.swatch.png").exists()


def test_a_pool_loads_multiprocessing(photo: Path, tmp_path: Path) -> None:
    second = tmp_path / "second.png"
    second.write_bytes(photo.read_bytes())
    modules = loaded_modules(str(photo), str(second), "-q", "-j", "2", "-o", str(tmp_path / "out"))
    assert {"multiprocessing", "concurrent.futures.process"} <= modules
    assert (tmp_path / "out" / "second-k16.png").exists()


def test_a_color_profile_loads_imagecms(china: Path) -> None:
    modules = loaded_modules(str(china), "-q", "-k", "4")
    assert "PIL.ImageCms" in modules


def test_only_dask_runs_load_dask(photo: Path, tmp_path: Path) -> None:
    """Dask is an optional extra: importing quantize, --help and local runs never load it."""
    second = tmp_path / "second.png"
    second.write_bytes(photo.read_bytes())
    dask = {"dask", "distributed", "quantize.dask_executor"}
    assert not dask & loaded_modules("--help")
    local = loaded_modules(str(photo), str(second), "-q", "-j", "2", "-o", str(tmp_path / "out"))
    assert "quantize.batch" in local
    assert not dask & local
    done = subprocess.run(
        [sys.executable, "-c", "import sys, quantize; print(sorted(sys.modules))"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    assert not any(f"'{name}'" in done.stdout for name in dask)


#: Run ``main`` on an image and print, when its images start, whether the
#: garbage collector is on and holds the import-time objects frozen.
COLLECTOR = """
import gc, sys
import quantize.batch as batch
run_batch = batch.run_batch

def recording(*args, **kwargs):
    print("collector", gc.isenabled(), gc.get_freeze_count() > 0, flush=True)
    return run_batch(*args, **kwargs)

batch.run_batch = recording
from quantize.cli import main
sys.argv = ["quantize", *sys.argv[1:]]
main()
"""


def test_the_collector_paused_for_the_imports_runs_again_for_the_images(photo: Path) -> None:
    # Paused while the modules load; left off, a batch of many images would
    # keep every reference cycle it makes.
    done = subprocess.run(
        [sys.executable, "-c", COLLECTOR, str(photo), "-q"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    # run_batch may call itself: every call sees the collector on.
    assert set(done.stdout.splitlines()) == {"collector True True"}
