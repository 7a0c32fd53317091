"""The ``quantize`` command: parse options, call the pipeline, report.

Heavy modules (numpy, Pillow, the core) are imported inside the command so
that ``quantize --help`` stays fast.  The option types are
:mod:`quantize.cli_types`; progress and the summary, :mod:`quantize.cli_report`.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

import click

from quantize import errors
from quantize._version import __version__
from quantize.cli_report import Reporter, echo
from quantize.cli_types import (
    KEEP_FILE,
    ColorParam,
    FiniteFloatRange,
    FormatList,
    IntOrAuto,
    KeepColors,
)
from quantize.errors import Terminated
from quantize.limits import (
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_PIXELS,
    MAX_COLORS,
    MAX_N_INIT,
    MIN_COLORS,
)
from quantize.text import one_line
from quantize.vocabulary import (
    ALGORITHMS,
    DITHER_METHODS,
    FORMAT_ALIASES,
    IMAGE_FORMATS,
    PALETTE_FORMATS,
    SORT_KEYS,
    SPACES,
    Algorithm,
    Dither,
    DitherMethod,
    SortKey,
    Space,
)

if TYPE_CHECKING:
    from quantize.autok import Target
    from quantize.executors import Executor
    from quantize.palette import Palette

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

EPILOG = """\b
Exit codes:
  0    every image was written
  1    an image failed (unreadable input, existing output without --force, ...)
  2    bad usage (unknown option, value out of range, bad --palette file)
  130  interrupted (Ctrl-C)
  143  terminated (SIGTERM)

\b
Examples:
  quantize photo.jpg -k 16           writes photo-k16.png and photo-k16.json
  quantize photo.jpg -o small.gif    indexed GIF, report in small.json
  quantize photo.jpg --palette-format json,gpl --swatch --no-image
                                     photo-k16.json, .gpl and .swatch.png only
  quantize photo.jpg -k auto --space lab --dither
                                     smallest k with PSNR >= 32 dB, writes
                                     photo-kauto.png and photo-kauto.json
  quantize photos/ -r -o out/        every image below photos/, mirrored in out/
  quantize sprites/ --shared-palette one palette for all, saved as palette.json
"""


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
    epilog=EPILOG,
)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-k",
    "--colors",
    type=IntOrAuto(MIN_COLORS, MAX_COLORS),
    default=16,
    help=f"Number of colors, {MIN_COLORS} to {MAX_COLORS}, or 'auto': the smallest k that "
    "meets --target-psnr "
    "or --target-delta-e (256 if none does).",
)
@click.option(
    "--target-psnr",
    type=FiniteFloatRange(min=0, min_open=True),
    default=None,
    metavar="DB",
    help="With -k auto: lowest acceptable PSNR in dB.  [default: 32]",
)
@click.option(
    "--target-delta-e",
    type=FiniteFloatRange(min=0, min_open=True),
    default=None,
    metavar="E",
    help="With -k auto: highest acceptable mean CIEDE2000 difference (instead of a PSNR).",
)
@click.option(
    "--space",
    type=click.Choice(SPACES),
    default="rgb",
    help="Color space the clustering runs in: sRGB, CIELAB (D65), OKLab or linear-light RGB.",
)
@click.option(
    "--dither",
    is_flag=True,
    help="Dither the pixels when mapping them to the palette (Floyd-Steinberg unless "
    "--dither-method says otherwise).  The palette stays exact.",
)
@click.option(
    "--dither-method",
    type=click.Choice([m for m in DITHER_METHODS if m != "none"]),
    default="floyd-steinberg",
    help="Error diffusion (Pillow's, no strength setting), or 8x8 Bayer ordered dithering.",
)
@click.option(
    "--dither-strength",
    type=FiniteFloatRange(0, 1),
    default=None,
    help="0..1, for --dither-method ordered only.  [default: 1]",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    default=None,
    help="Output image file (its suffix picks the format; the report goes beside it), or a "
    "folder (existing, or ending with '/') for the default names. With a folder or several "
    "inputs it is always a folder, mirroring the input folders.  [default: next to the input]",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([*IMAGE_FORMATS, *FORMAT_ALIASES]),
    default="png",
    callback=lambda ctx, param, value: FORMAT_ALIASES.get(value, value),
    help="Output format when -o does not name a file. png, gif, tiff and bmp are indexed; "
    "webp (lossless) and jpeg get the recolored RGB image (jpg and tif are accepted too).",
)
@click.option(
    "--algorithm",
    type=click.Choice(ALGORITHMS),
    default="kmeans",
    help="Full k-means, or mini-batch k-means.",
)
@click.option(
    "--n-init",
    type=IntOrAuto(1, MAX_N_INIT),
    default="auto",
    help=f"k-means restarts, 1 to {MAX_N_INIT}; the best is kept.",
)
@click.option(
    "--max-iter", type=click.IntRange(min=1), default=300, help="Iteration cap per k-means run."
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=0,
    help="Random seed: the same input and options give byte-identical outputs.",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PIXELS,
    help="Most pixels read from one input: width x height, summed over the frames of an "
    "animation; more is an error, to stop decompression bombs.",
)
@click.option(
    "--max-frames",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_FRAMES,
    help="Most frames read from one animation; more is an error.",
)
@click.option(
    "--background",
    type=ColorParam(),
    default="white",
    help="Color that transparency is flattened onto for formats without it (jpeg, bmp) "
    "and semi-transparency for gif.",
)
@click.option("--no-report", is_flag=True, help="Do not write the JSON palette report.")
@click.option(
    "--palette-format",
    "palette_formats",
    type=FormatList(),
    default="json",
    metavar="LIST",
    help="Comma-separated palette files to write beside the image, replacing the default: "
    f"json (the report), {', '.join(f for f in PALETTE_FORMATS if f != 'json')}. "
    "--no-report drops json from the list.",
)
@click.option(
    "--sort",
    type=click.Choice(SORT_KEYS),
    default="count",
    help="Palette order in the report, every palette file, the swatch and the image's palette.",
)
@click.option("--swatch", is_flag=True, help="Also write STEM.swatch.png, one band per color.")
@click.option(
    "--plot",
    is_flag=True,
    help="Also write STEM.pixels.png, a scatter plot of 10,000 pixels before and after.",
)
@click.option(
    "--no-image", is_flag=True, help="Write the palette files (and swatch, plot) but no image."
)
@click.option("--force", is_flag=True, help="Overwrite existing outputs (never an input).")
@click.option(
    "-r", "--recursive", is_flag=True, help="Also take the images in subfolders of folder inputs."
)
@click.option(
    "--skip-existing",
    is_flag=True,
    help="Skip images whose outputs all exist (counted as skipped, not failed).",
)
@click.option(
    "-j",
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    show_default="number of CPU cores",
    help="Images processed in parallel, in separate processes. Outputs are the same for any N.",
)
@click.option(
    "--dask",
    "dask_address",
    metavar="ADDRESS|local",
    default=None,
    help="Process the images on a Dask cluster: a scheduler address (tcp://host:8786), or "
    "'local' for a cluster of -j workers on this machine. Inputs and outputs must be on a file "
    'system every worker sees. Needs pip install "quantize[dask]".',
)
@click.option(
    "--shared-palette",
    is_flag=True,
    help="Learn one palette over all input images, save it as palette.json and recolor every "
    "image with it.",
)
@click.option(
    "--palette",
    "palette_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Recolor with the colors of this file instead of clustering: a quantize JSON report, "
    "a GIMP .gpl, an .ase or a text file with one hex color per line. -k is ignored.",
)
@click.option(
    "--keep",
    "keep",
    type=KeepColors(),
    default=None,
    help="Colors that must stay in the palette exactly: comma-separated #rrggbb, or @FILE "
    "(any palette file --palette reads). They count toward -k; the others are learned "
    "around them.",
)
@click.option(
    "--html",
    is_flag=True,
    help="Also write index.html in the output folder: every image before and after, its "
    "palette and numbers, with thumbnails in thumbs/.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.version_option(__version__, "--version", prog_name="quantize")
def quantize_command(
    inputs: tuple[Path, ...],
    colors: int | Literal["auto"],
    target_psnr: float | None,
    target_delta_e: float | None,
    space: Space,
    dither: bool,
    dither_method: DitherMethod,
    dither_strength: float | None,
    output: str | None,
    fmt: str,
    algorithm: Algorithm,
    n_init: int | Literal["auto"],
    max_iter: int,
    seed: int,
    max_pixels: int,
    max_frames: int,
    background: tuple[int, int, int],
    no_report: bool,
    palette_formats: tuple[str, ...],
    sort: SortKey,
    swatch: bool,
    plot: bool,
    no_image: bool,
    force: bool,
    recursive: bool,
    skip_existing: bool,
    workers: int | None,
    dask_address: str | None,
    shared_palette: bool,
    palette_file: Path | None,
    keep: Any,
    html: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Reduce the colors of images with k-means clustering.

    Writes, for each INPUT, the recolored image (an indexed PNG whose palette is
    exactly the colors found) and a JSON palette report beside it. INPUTS are
    image files and folders (their images; with -r also those of subfolders).
    """
    if len(inputs) == 1 and workers is None and dask_address is None:
        # Decoded on a thread while the modules below load (quantize.prefetch).
        from quantize import prefetch

        prefetch.start(inputs[0])
    from quantize.batch import BatchOptions, check_output_file, check_output_folder, run_batch
    from quantize.errors import QuantizeError
    from quantize.palette_formats import PaletteError
    from quantize.pipeline import RunOptions

    _resume_collector()
    try:
        check_output_folder(inputs, output)
        check_output_file(inputs, output)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    report = "json" in palette_formats and not no_report
    extra_formats = tuple(f for f in palette_formats if f != "json")
    if no_image and not (report or extra_formats or swatch or plot):
        raise click.UsageError("--no-image leaves nothing to write")
    if shared_palette and palette_file is not None:
        raise click.UsageError("--shared-palette and --palette cannot be used together")
    if shared_palette and colors == "auto":
        raise click.UsageError("--shared-palette needs a fixed -k (not auto)")
    palette = _read_palette(palette_file) if palette_file is not None else None
    if keep is not None and palette is None and colors != "auto" and len(keep) > int(colors):
        raise click.BadParameter(
            f"{len(keep)} kept colors do not fit in -k {colors}", param_hint="'--keep'"
        )
    if palette is not None and keep is not None:
        _check_keep_fits(palette, keep)
    if palette is not None:
        if _given(click.get_current_context(), "colors") and colors != palette.size and not quiet:
            echo(f"quantize: note: -k {colors} ignored: {palette_file} has {palette.size} colors")
        colors = palette.size  # output names say how many colors there are
    target, dithering, strength = _perceptual_options(
        colors, target_psnr, target_delta_e, dither, dither_method, dither_strength
    )
    # Every value is typed as its option's click type makes it (click.Choice
    # returns one of its choices), so RunOptions needs no casts.
    opts = RunOptions(
        colors=colors,
        space=space,
        target=target,
        dither=dithering,
        dither_strength=strength,
        algorithm=algorithm,
        n_init=n_init,
        max_iter=max_iter,
        seed=seed,
        fmt=fmt,
        report=report,
        force=force,
        palette_formats=extra_formats,
        sort=sort,
        swatch=swatch,
        plot=plot,
        image=not no_image,
        max_pixels=max_pixels,
        max_frames=max_frames,
        background=background,
        palette=palette,
        palette_file=str(palette_file) if palette_file is not None else None,
        keep=keep,
    )
    batch = BatchOptions(
        run=opts,
        output=output,
        recursive=recursive,
        skip_existing=skip_existing,
        workers=workers,
        shared_palette=shared_palette,
        html=html,
        read_files=tuple(
            p for p in [click.get_current_context().meta.get(KEEP_FILE)] if p is not None
        ),
        # The summary needs the counts and the failures only: a huge batch holds little.
        keep_results=False,
    )
    lossy = _lossy_output(inputs, output, fmt)
    if lossy is not None and not no_image and not quiet:
        click.echo(
            f"quantize: note: {lossy} cannot hold a palette: the image files are not indexed and "
            "hold more colors than the palette; their metrics are measured on the decoded file",
            err=True,
        )
    if plot:
        _preload_plots(quiet)
    executor = _dask_executor(dask_address, workers, quiet) if dask_address is not None else None
    reporter = Reporter(quiet=quiet, debug=debug)
    stopped_late = False
    try:
        result = run_batch(inputs, batch, reporter.progress, executor)
    except QuantizeError as exc:
        # Problems of the batch as a whole (palette.json exists ...), found before any image work.
        reporter.close()
        if debug:
            traceback.print_exc()
        echo(f"quantize: error: {_reason(exc)}")
        # A reused palette.json that cannot be parsed is bad input like a bad --palette file.
        sys.exit(EXIT_USAGE if isinstance(exc, PaletteError) else EXIT_FAILED)
    finally:
        if executor is not None:
            stopped_late = _close(executor)
    dropped = errors.take_dropped()
    if (stopped_late or dropped or errors.terminated()) and not result.interrupted:
        # Held while the cluster was let go, or dropped in a finalizer after
        # the run's last wait: the run ended all the same, and says it was
        # stopped (with none not done) and exits as stopped.
        result.interrupted = True
    reporter.close()
    reporter.finish(result, _stop_message())
    if result.page_path is not None and not quiet:
        echo(f"page: {result.page_path}")
    if result.interrupted:
        sys.exit(_stop_code())
    sys.exit(EXIT_FAILED if result.failures else EXIT_OK)


def _close(executor: Executor) -> bool:
    """Close ``executor``; True when Ctrl-C or SIGTERM came meanwhile.

    The Dask executor holds them until its cluster is released, then they
    raise: the run is over by then, and only the exit code is left to say so.
    """
    try:
        executor.close()
    except KeyboardInterrupt:
        return True
    return False


def _dask_executor(address: str, workers: int | None, quiet: bool) -> Executor:
    """Connect to a Dask scheduler, or start a local cluster, before any work.

    Missing Dask, or a scheduler that cannot be reached within a few seconds,
    is a one-line error (exit 1).
    """
    try:
        from quantize.dask_executor import LOCAL, ClusterError, DaskExecutor
    except ImportError as exc:
        echo(f"quantize: error: {exc}")
        sys.exit(EXIT_FAILED)
    if address != LOCAL and workers is not None and not quiet:
        echo("quantize: note: -j ignored: the cluster's workers process the images")
    try:
        return DaskExecutor(address, workers=workers)
    except ClusterError as exc:
        echo(f"quantize: error: {exc}")
        sys.exit(EXIT_FAILED)


def _preload_plots(quiet: bool) -> None:
    """Import matplotlib once here: the worker processes forked later inherit it."""
    from quantize.plots import preload

    for line in dict.fromkeys(preload()):
        if not quiet:
            click.echo(f"quantize: warning: --plot: {line}", err=True)


def _lossy_output(inputs: tuple[Path, ...], output: str | None, fmt: str) -> str | None:
    """The output format when it is lossy (JPEG), else None."""
    from quantize.batch import single_file_mode
    from quantize.encode import LOSSY_FORMATS, SUFFIX_FORMATS
    from quantize.outputs import is_folder_spec

    if output is not None and single_file_mode(inputs) and not is_folder_spec(output):
        fmt = SUFFIX_FORMATS.get(Path(output).suffix.lower(), fmt)
    return fmt.upper() if fmt in LOSSY_FORMATS else None


def _perceptual_options(
    colors: int | str,
    target_psnr: float | None,
    target_delta_e: float | None,
    dither: bool,
    dither_method: DitherMethod,
    dither_strength: float | None,
) -> tuple[Target | None, Dither, float]:
    """Check how the quality options combine.

    Returns
    -------
    target, dither, dither_strength
        The `RunOptions` fields they set.
    """
    from quantize.autok import Target

    if target_psnr is not None and target_delta_e is not None:
        raise click.UsageError("--target-psnr and --target-delta-e are mutually exclusive")
    target = None
    if target_psnr is not None or target_delta_e is not None:
        if colors != "auto":
            raise click.UsageError("--target-psnr and --target-delta-e need -k auto")
        if target_psnr is not None:
            target = Target("psnr", target_psnr)
        elif target_delta_e is not None:
            target = Target("delta_e", target_delta_e)
    if not dither and (dither_method != "floyd-steinberg" or dither_strength is not None):
        raise click.UsageError("--dither-method and --dither-strength need --dither")
    if dither_method == "floyd-steinberg" and dither_strength is not None:
        raise click.UsageError(
            "--dither-strength needs --dither-method ordered "
            "(Pillow's Floyd-Steinberg always diffuses the full error)"
        )
    return (
        target,
        dither_method if dither else "none",
        1.0 if dither_strength is None else dither_strength,
    )


def _check_keep_fits(palette: Palette, keep: Any) -> None:
    """The kept colors are added to a --palette: the two together must fit in a palette."""
    import numpy as np

    total = len(np.unique(np.concatenate([keep, palette.colors]), axis=0))
    if total > MAX_COLORS:
        raise click.BadParameter(
            f"the --palette file's {palette.size} colors and the kept ones make {total}, "
            f"more than {MAX_COLORS}",
            param_hint="'--keep'",
        )


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source != click.core.ParameterSource.DEFAULT


def _read_palette(path: Path) -> Palette:
    """Read --palette before any image work; a bad file is a usage error (exit 2)."""
    from quantize.palette_formats import PaletteError, read_palette

    try:
        return read_palette(path)
    except PaletteError as exc:
        raise click.BadParameter(str(exc), param_hint="'--palette'") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    if not errors.note_terminated():
        return  # the first one is being handled: let the clean-up finish
    raise Terminated


def _signals_in_finalizers(unraisable: Any) -> None:
    """``sys.unraisablehook``: a Ctrl-C or SIGTERM whose exception lands in a
    finalizer (a ``__del__``) is dropped there by Python, which would print
    "Exception ignored in" and a traceback.  The request is noted instead
    (:func:`quantize.errors.note_dropped`), and the run's next wait raises it
    again.  Anything else is reported as usual."""
    if not errors.note_dropped(unraisable.exc_value):
        sys.__unraisablehook__(unraisable)


def _stop_code() -> int:
    return EXIT_TERMINATED if errors.terminated() else EXIT_INTERRUPTED


def _stop_message() -> str:
    return "quantize: terminated" if errors.terminated() else "quantize: interrupted"


# Whether `main` paused the garbage collector while the run's modules load.
_collector_paused: list[bool] = []


def _resume_collector() -> None:
    """Collect garbage again once the modules are loaded, if `main` paused
    it; what they made lives as long as the process and is frozen, so that
    no later collection searches it for cycles again."""
    if _collector_paused:
        _collector_paused.clear()
        gc.freeze()
        gc.enable()


#: Thread-pool variables of the BLAS libraries numpy may use.
_BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


class _StderrWithoutReader:
    """``sys.stderr``, except that a reader gone away does not stop the run.

    Messages only accompany the files: with ``quantize ... 2>&1 | head -1``
    the first write would raise EPIPE, which Click turns into exit code 1,
    stopping the batch half done and hiding the real exit code (``2>/dev/full``
    the same with ENOSPC).  Once a write fails, stderr goes to the null device.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return int(self._stream.write(text))
        except OSError:
            self._to_null()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except OSError:
            self._to_null()

    def _to_null(self) -> None:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, self._stream.fileno())
        finally:
            os.close(null)
        with contextlib.suppress(OSError):
            self._stream.flush()  # what was buffered goes to the null device too

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _open_std_streams() -> None:
    """Give a closed stdin, stdout or stderr (``quantize ... 2>&-``) the null device.

    Else the first file quantize opens takes that descriptor, and whatever
    writes to "stderr" (a library's warning, a worker) writes into that file.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
    if sys.stdout is None:
        sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - for the whole run
    if sys.stderr is None:
        sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - for the whole run


def main() -> None:
    """Console-script entry point.

    Click's standalone mode would turn Ctrl-C into exit code 1; run it
    non-standalone so an interrupt exits 130 as documented.  SIGTERM stops
    the run the same way (workers stopped, unfinished outputs removed, the
    summary printed) and exits 143.
    """
    signal.signal(signal.SIGTERM, _on_sigterm)
    sys.unraisablehook = _signals_in_finalizers
    _open_std_streams()
    if not isinstance(sys.stderr, _StderrWithoutReader):
        sys.stderr = _StderrWithoutReader(sys.stderr)
    # quantize runs images in parallel processes itself (-j); BLAS threads on
    # its n x 3 products are too small to gain from threads and only compete
    # with those processes for the cores.  Set before numpy is imported; a
    # user's own setting wins.
    for var in _BLAS_THREAD_VARS:
        os.environ.setdefault(var, "1")
    # Importing numpy, Pillow and the package makes tens of thousands of
    # objects, and the collector's passes over them hold the GIL that the
    # input's decoding thread (quantize.prefetch) needs meanwhile: paused
    # until they are loaded (`_resume_collector`).
    if gc.isenabled():
        gc.disable()
        _collector_paused.append(True)
    # Once the run is over, what it made is left to the process's exit,
    # whose interpreter shutdown would otherwise first search every object
    # of every loaded module for cycles: gc.freeze() makes it skip them
    # (atexit handlers still run, and the files are written by then).
    try:
        code = quantize_command.main(prog_name="quantize", standalone_mode=False)
    except SystemExit:  # the command's own exit, its work done
        gc.freeze()
        raise
    except click.exceptions.Abort:
        click.echo(_stop_message(), err=True)
        sys.exit(_stop_code())
    except click.ClickException as exc:
        exc.message = one_line(exc.message)  # it may quote a file name
        exc.show()
        sys.exit(exc.exit_code)
    except OSError as exc:
        # The run reports its own errors; what reaches here is Click writing
        # --help or --version to a full disk or a closed pipe.
        echo(f"quantize: error: cannot write the output: {_reason(exc)}")
        _quiet_stdout()
        sys.exit(EXIT_FAILED)
    gc.freeze()
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so that the flush at exit cannot fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
