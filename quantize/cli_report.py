"""What the command prints while it runs: progress, one line per image, the summary.

Part of the command layer; tqdm is imported only when a progress bar is shown.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from quantize.text import one_line

if TYPE_CHECKING:
    from quantize.batch import BatchResult, ImageResult, Progress


class Reporter:
    """Progress bar on a terminal, one line per image otherwise, and the closing summary."""

    def __init__(self, *, quiet: bool, debug: bool) -> None:
        self.quiet, self.debug = quiet, debug
        self.show_bar = not quiet and sys.stderr.isatty()
        self.bar: Any = None
        self.phase: str | None = None

    def progress(self, event: Progress) -> None:
        if event.result is None and event.phase != self.phase:
            self._start_bar(event)
            return
        self._grow(event)
        if event.result is None:
            return
        self._describe(event.phase, event.result)
        # Images stopped by Ctrl-C are "not done" in the summary: the bar agrees.
        if self.bar is not None and event.result.status != "interrupted":
            self.bar.update(1)

    def _start_bar(self, event: Progress) -> None:
        self.close()
        self.phase = event.phase
        if self.show_bar and event.total > 0:
            from tqdm import tqdm

            desc = "palette" if event.phase == "palette" else "images"
            # No monitor thread: worker processes are forked after the bar exists.
            tqdm.monitor_interval = 0
            self.bar = tqdm(total=event.total, desc=desc, unit="img", file=sys.stderr)

    def _grow(self, event: Progress) -> None:
        """Follow the total while images are still being found."""
        if self.bar is not None and self.bar.total != event.total:
            self.bar.total = event.total
            if event.final:
                self.bar.refresh()

    def _say(self, message: str, *, raw: bool = False) -> None:
        """Print one message line (a traceback, ``raw``, keeps its lines) above the bar."""
        text = message if raw else one_line(message)
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            click.echo(text, err=True)

    def _describe(self, phase: str, result: ImageResult) -> None:
        if result.status == "failed":
            if self.debug and result.detail:
                self._say(result.detail.rstrip(), raw=True)
            self._say(f"quantize: error: {result.source}: {result.reason}")
            return
        if self.quiet or phase != "images":
            return
        for warning in result.warnings:
            self._say(f"quantize: warning: {result.source}: {warning}")
        if self.bar is not None:
            return  # the bar shows the progress; only problems go above it
        if result.status == "written":
            self._say(_summary(result))
        elif result.status == "skipped":
            self._say(f"{result.source}: skipped, its outputs exist")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def finish(self, result: BatchResult, stop_message: str) -> None:
        """The summary line and the failed files, for more than one image (or a Ctrl-C).

        ``stop_message`` is the line for a run that was stopped (Ctrl-C, SIGTERM).
        """
        if result.interrupted:
            click.echo(stop_message, err=True)
        if self.quiet or (result.reported <= 1 and not result.interrupted):
            return
        if result.palette_path is not None and result.palette is not None:
            size, path = result.palette.size, result.palette_path
            what = f", reused {path}" if result.palette_reused else f" -> {path}"
            echo(f"shared palette: {size} colors{what}")
        seconds = result.seconds
        rate = result.count("written") / seconds if seconds > 0 else 0.0
        not_done = f", {result.not_done} not done" if result.interrupted else ""
        click.echo(
            f"{result.count('written')} written, {result.count('skipped')} skipped, "
            f"{len(result.failures)} failed{not_done} in {seconds:.1f} s ({rate:.1f} images/s)",
            err=True,
        )
        if result.failures:
            click.echo("failed:", err=True)
            for failure in result.failures:
                echo(f"  {failure.source}: {failure.reason}")


def echo(message: str) -> None:
    """Print one line to stderr, escaped so that any file name keeps it one line."""
    click.echo(one_line(message), err=True)


def _summary(result: ImageResult) -> str:
    psnr = result.psnr
    psnr_text = "inf" if psnr is None or psnr == float("inf") else f"{psnr:.2f}"
    quality = f"PSNR {psnr_text} dB"
    if result.delta_e_mean is not None:
        quality += f", mean ΔE {result.delta_e_mean:.2f}"
    k_text = f"k={result.colors}" + (f" (auto: {result.auto})" if result.auto else "")
    if result.palette_size:
        # A given or shared palette: its size names the files; say how much of it is used.
        k_text = f"k={result.palette_size} ({result.colors} used)"
    # The image, or the first palette file with --no-image.
    image = result.outputs[0] if result.outputs else None
    return f"{result.source}: {k_text}, {quality}, {result.seconds:.2f} s -> {image}"
