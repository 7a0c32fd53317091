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
  quantize photo.jpg -k auto --space lab --dither
                                     smallest k with PSNR >= 32 dB, writes
                                     photo-kauto.png and photo-kauto.json
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


class Colors(click.ParamType):
    """An integer from 2 to 256, or the word ``auto``."""

    name = "INTEGER|auto"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "auto":
            return value
        try:
            number = int(value)
        except ValueError:
            self.fail(f"{value!r} is not an integer from 2 to 256 or 'auto'", param, ctx)
        if not 2 <= number <= 256:
            self.fail(f"{number} is not in the range 2<=x<=256 (or 'auto')", param, ctx)
        return number


@click.command(
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
    epilog=EPILOG,
)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "-k",
    "--colors",
    type=Colors(),
    default=16,
    help="Number of colors, 2 to 256, or 'auto': the smallest k that meets --target-psnr "
    "or --target-delta-e (256 if none does).",
)
@click.option(
    "--target-psnr",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="DB",
    help="With -k auto: lowest acceptable PSNR in dB.  [default: 32]",
)
@click.option(
    "--target-delta-e",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="E",
    help="With -k auto: highest acceptable mean CIEDE2000 difference (instead of a PSNR).",
)
@click.option(
    "--space",
    type=click.Choice(["rgb", "lab", "oklab"]),
    default="rgb",
    help="Color space the clustering runs in: sRGB, CIELAB (D65) or OKLab.",
)
@click.option(
    "--dither",
    is_flag=True,
    help="Dither the pixels when mapping them to the palette (Floyd-Steinberg unless "
    "--dither-method says otherwise).  The palette stays exact.",
)
@click.option(
    "--dither-method",
    type=click.Choice(["floyd-steinberg", "ordered"]),
    default="floyd-steinberg",
    help="Error diffusion (Pillow's, no strength setting), or 8x8 Bayer ordered dithering.",
)
@click.option(
    "--dither-strength",
    type=click.FloatRange(0, 1),
    default=None,
    help="0..1, for --dither-method ordered only.  [default: 1]",
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
    colors: int | str,
    target_psnr: float | None,
    target_delta_e: float | None,
    space: str,
    dither: bool,
    dither_method: str,
    dither_strength: float | None,
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
        colors=colors,  # type: ignore[arg-type]
        space=space,
        **_perceptual_options(
            colors, target_psnr, target_delta_e, dither, dither_method, dither_strength
        ),
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


def _perceptual_options(
    colors: int | str,
    target_psnr: float | None,
    target_delta_e: float | None,
    dither: bool,
    dither_method: str,
    dither_strength: float | None,
) -> dict[str, Any]:
    """Check how the quality options combine; the RunOptions fields they set."""
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
    return {
        "target": target,
        "dither": dither_method if dither else "none",
        "dither_strength": 1.0 if dither_strength is None else dither_strength,
    }


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
    quality = f"PSNR {psnr_text} dB, mean ΔE {result.metrics.delta_e_mean:.2f}"
    k_text = f"k={result.palette.size}"
    auto = result.k_auto
    if auto is not None:
        target, k = auto.target, auto.chosen
        if auto.met:
            k_text = f"k={k} (auto: smallest k with {target.describe()})"
        else:
            k_text = f"k={k} (auto: {target.describe()} not reached even with k={k})"
    return f"{source}: {k_text}, {quality}, {result.seconds:.2f} s -> {image}"


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
