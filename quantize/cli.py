"""The ``quantize`` command: parse options, call the pipeline, report.

Heavy modules (numpy, Pillow, the core) are imported inside the command so
that ``quantize --help`` stays fast.
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from quantize._version import __version__

if TYPE_CHECKING:
    from quantize.pipeline import QuantizeResult, RunOptions

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EPILOG = """\b
Exit codes:
  0    every image was written
  1    an image failed (unreadable input, existing output without --force, ...)
  2    bad usage (unknown option, value out of range)
  130  interrupted (Ctrl-C)

\b
Examples:
  quantize photo.jpg -k 16           writes photo-k16.png and photo-k16.json
  quantize photo.jpg -o small.gif    indexed GIF, report in small.json
  quantize photo.jpg --palette-format json,gpl --swatch --no-image
                                     photo-k16.json, .gpl and .swatch.png only
"""


#: Values of --palette-format: the JSON report and the exporters of quantize.palette.
PALETTE_FORMATS = ("json", "gpl", "css", "ase", "txt")


class FormatList(click.ParamType):
    """A comma-separated list of palette formats, returned as a tuple without repeats."""

    name = ",".join(PALETTE_FORMATS)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        items = [item.strip() for item in str(value).split(",")]
        for item in items:
            if item not in PALETTE_FORMATS:
                known = ", ".join(PALETTE_FORMATS)
                self.fail(f"{item!r} is not a palette format (use {known})", param, ctx)
        return tuple(dict.fromkeys(items))


class NInit(click.ParamType):
    """A positive integer or the word ``auto``."""

    name = "INTEGER|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) or value == "auto":
            return value
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is not a positive integer or 'auto'", param, ctx)
        if number < 1:
            self.fail(f"{value!r} is not a positive integer or 'auto'", param, ctx)
        return number


class ColorParam(click.ParamType):
    """A color as Pillow spells it: ``white``, ``#ffeedd``, ``rgb(1,2,3)``."""

    name = "COLOR"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, tuple):
            return value
        from PIL import ImageColor

        try:
            rgb = ImageColor.getrgb(str(value))
        except ValueError:
            self.fail(f"{value!r} is not a color (try white, black or #rrggbb)", param, ctx)
        return tuple(rgb[:3])


#: Pillow's default pixel limit (``PIL.Image.MAX_IMAGE_PIXELS``), without importing Pillow.
DEFAULT_MAX_PIXELS = 89_478_485


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
    epilog=EPILOG,
)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-k", "--colors", type=click.IntRange(2, 256), default=16, help="Number of colors, 2 to 256."
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    default=None,
    help="Output image file (its suffix picks the format; the report goes beside it), or a "
    "folder (existing, or ending with '/') for the default names.  [default: next to the input]",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["png", "webp", "gif", "tiff", "bmp", "jpeg"]),
    default="png",
    help="Output format when -o does not name a file. png, gif, tiff and bmp are indexed; "
    "webp (lossless) and jpeg get the recolored RGB image.",
)
@click.option(
    "--algorithm",
    type=click.Choice(["kmeans", "minibatch"]),
    default="kmeans",
    help="Full k-means, or mini-batch k-means.",
)
@click.option("--n-init", type=NInit(), default="auto", help="k-means restarts; the best is kept.")
@click.option(
    "--max-iter", type=click.IntRange(min=1), default=300, help="Iteration cap per k-means run."
)
@click.option(
    "--seed",
    type=int,
    default=0,
    help="Random seed: the same input and options give byte-identical outputs.",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_PIXELS,
    help="Largest image (width x height) read; a bigger one is an error, to stop "
    "decompression bombs.",
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
    "json (the report), gpl, css, ase, txt. --no-report drops json from the list.",
)
@click.option(
    "--sort",
    type=click.Choice(["count", "hue", "lightness"]),
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
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
@click.version_option(__version__, "--version", prog_name="quantize")
def quantize_command(
    inputs: tuple[Path, ...],
    colors: int,
    output: str | None,
    fmt: str,
    algorithm: str,
    n_init: int | str,
    max_iter: int,
    seed: int,
    max_pixels: int,
    background: tuple[int, int, int],
    no_report: bool,
    palette_formats: tuple[str, ...],
    sort: str,
    swatch: bool,
    plot: bool,
    no_image: bool,
    force: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Reduce the colors of images with k-means clustering.

    Writes, for each INPUT, the recolored image (an indexed PNG whose palette is
    exactly the colors found) and a JSON palette report beside it.
    """
    from quantize.pipeline import RunOptions, is_folder_spec

    if output is not None and len(inputs) > 1 and not is_folder_spec(output):
        raise click.UsageError("with several inputs, -o must be a folder (end it with '/')")
    report = "json" in palette_formats and not no_report
    extra_formats = tuple(f for f in palette_formats if f != "json")
    if no_image and not (report or extra_formats or swatch or plot):
        raise click.UsageError("--no-image leaves nothing to write")
    opts = RunOptions(
        colors=colors,
        algorithm=algorithm,  # type: ignore[arg-type]
        n_init=n_init,  # type: ignore[arg-type]
        max_iter=max_iter,
        seed=seed,
        fmt=fmt,
        report=report,
        force=force,
        palette_formats=extra_formats,
        sort=sort,  # type: ignore[arg-type]
        swatch=swatch,
        plot=plot,
        image=not no_image,
        max_pixels=max_pixels,
        background=background,
    )
    failed = sum(
        not _run_one(path, output, opts, inputs, quiet=quiet, debug=debug) for path in inputs
    )
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


def _run_one(
    source: Path,
    output: str | None,
    opts: RunOptions,
    inputs: tuple[Path, ...],
    *,
    quiet: bool,
    debug: bool,
) -> bool:
    from quantize.errors import QuantizeError
    from quantize.pipeline import plan_outputs, process_file

    try:
        plan = plan_outputs(source, output, opts)
        result = process_file(source, plan, opts, inputs)
    except (QuantizeError, OSError) as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"quantize: error: {source}: {_reason(exc)}", err=True)
        return False
    if not quiet:
        for warning in result.warnings:
            click.echo(f"quantize: warning: {source}: {warning}", err=True)
        # The image, or the first palette file with --no-image.
        click.echo(_summary(source, plan.paths[0], result), err=True)
    return True


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _summary(source: Path, image: Path, result: QuantizeResult) -> str:
    psnr = result.metrics.psnr
    psnr_text = "inf" if psnr == float("inf") else f"{psnr:.2f}"
    return (
        f"{source}: k={result.palette.size}, PSNR {psnr_text} dB, "
        f"mean ΔE {result.metrics.delta_e_mean:.2f}, {result.seconds:.2f} s -> {image}"
    )


def main() -> None:
    """Console-script entry point.

    Click's standalone mode would turn Ctrl-C into exit code 1; run it
    non-standalone so an interrupt exits 130 as documented.
    """
    try:
        code = quantize_command.main(prog_name="quantize", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("quantize: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
