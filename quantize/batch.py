"""Many images at once: find them, plan their outputs, run them in worker processes.

:func:`run_batch` is the library entry point behind the ``quantize`` command.
It reads the folders one at a time (:func:`quantize.discover.scan_images`),
plans the outputs of each folder's images as it goes
(:mod:`quantize.batch_plan`) and hands the jobs, lazily, to an executor
(:mod:`quantize.executors`), which runs :func:`quantize.outputs.process_file`
on one image at a time, in this process or in worker processes: work starts
as soon as the first folder is read, and the executor holds a bounded number
of jobs.  Each worker writes its own outputs atomically; the parent only
collects small :class:`ImageResult` records (with ``keep_results`` False
only counts and failures) and calls the progress callback.  Every image is
processed by the same deterministic code whatever the number of workers, so
the outputs are byte-identical for any ``workers``.

With ``shared_palette`` a first pass collects each image's table of distinct
colors, merges the tables (a bounded buffer of keys and counts), fits one
palette to the merged table and writes it as ``palette.json``; the second
pass recolors every image with it.
"""

from __future__ import annotations

import os
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import partial
from itertools import chain, count
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from quantize.batch_plan import (
    SHARED_PALETTE_NAME,
    BatchOptions,
    BatchResult,
    ImageResult,
    Job,
    Phase,
    Progress,
    ProgressCallback,
    can_forget_inputs,
    can_stream,
    check_output_file,
    check_output_folder,
    excluded_folders,
    html_page_path,
    no_images_message,
    plan_job,
    plan_outputs_for,
    protect_ahead,
    shared_palette_path,
    single_file_mode,
    stream_jobs,
)
from quantize.commit import FileId, recording, remove_committed
from quantize.discover import Source, scan_images
from quantize.encode import ANIMATION_FORMATS
from quantize.errors import InputError, OutputError, QuantizeError
from quantize.executors import Executor, Reduction, interruptible, local_executor, stopping
from quantize.histogram import ColorTable, TableMerger
from quantize.imageio import captured_warnings, load_image
from quantize.outputs import (
    plan_outputs,
    process_file,
    shared_palette_files,
    write_page,
    write_shared_palette,
)
from quantize.palette import Palette
from quantize.palette_formats import read_palette
from quantize.pipeline import RunOptions, learn_shared_palette, visible_table
from quantize.safeio import OutputPlanner
from quantize.vocabulary import Status

# The planning half lives in quantize.batch_plan; its names are this module's API too.
__all__ = [
    "SHARED_PALETTE_NAME",
    "TABLE_SUM",
    "BatchOptions",
    "BatchResult",
    "ImageResult",
    "Job",
    "Phase",
    "Progress",
    "ProgressCallback",
    "TableSum",
    "TableSummer",
    "can_forget_inputs",
    "can_stream",
    "check_output_file",
    "check_output_folder",
    "excluded_folders",
    "html_page_path",
    "no_images_message",
    "plan_job",
    "protect_ahead",
    "read_table",
    "run_batch",
    "run_job",
    "shared_palette_path",
    "single_file_mode",
    "split_table",
    "stream_jobs",
]

if TYPE_CHECKING:
    from quantize.pipeline import QuantizeResult
    from quantize.report_html import PageEntry

# --------------------------------------------------------------------------- #
# Worker tasks (module level so that they can be pickled)
# --------------------------------------------------------------------------- #


def run_job(job: Job, opts: RunOptions) -> ImageResult:
    """Process one image and describe the outcome; never raises but for Ctrl-C in-process.

    Outputs this call created are removed again when it is interrupted, so an
    image ends up with all its outputs or none.
    """
    if stopping():
        return ImageResult(job.source, "interrupted")
    start = time.perf_counter()
    committed: list[tuple[Path, FileId]] = []
    try:
        # Load warnings are in the result already; these are the ones of later steps.
        with interruptible(), recording(committed), captured_warnings() as later:
            result = process_file(job.source, job.plan, opts)
    except KeyboardInterrupt:
        if not opts.force:
            # Only the files this call placed: another run's are never touched.
            # With --force they replaced the old outputs, whose backups are gone:
            # the complete new set stays rather than none at all.
            remove_committed(committed)
        return ImageResult(job.source, "interrupted")
    except Exception as exc:
        if job.skip_existing and isinstance(exc, OutputError) and _all_exist(job.plan.paths):
            # Another run wrote this image meanwhile: what --skip-existing asks for.
            return ImageResult(job.source, "skipped", outputs=tuple(job.plan.paths))
        return _failure(job.source, exc)
    return ImageResult(
        job.source,
        "written",
        outputs=tuple(job.plan.paths),
        warnings=tuple(dict.fromkeys([*result.warnings, *later])),
        colors=result.palette.size,
        psnr=result.metrics.psnr,
        seconds=time.perf_counter() - start,
        delta_e_mean=result.metrics.delta_e_mean,
        auto=None if result.k_auto is None else result.k_auto.describe(),
        palette_size=0 if opts.palette is None else opts.palette.size,
        page=_page_entry(job, result),
    )


def _page_entry(job: Job, result: QuantizeResult) -> PageEntry | None:
    """The --html page's view of a written image, made here in the worker."""
    if job.plan.thumbs is None:
        return None
    from quantize.report_html import page_entry

    image = job.plan.image if job.plan.write_image else None
    return page_entry(job.source, image, job.plan.thumbs, result.palette, result.kept, result.image)


def _all_exist(paths: Sequence[Path]) -> bool:
    return all(os.path.lexists(p) for p in paths)


def _failure(source: Path, exc: Exception) -> ImageResult:
    # The traceback travels with every failure so that --debug can show it.
    detail = "".join(traceback.format_exception(exc))
    if isinstance(exc, InputError) and exc.path is not None and Path(exc.path) == source:
        reason = exc.reason  # the path starts the line already
    elif isinstance(exc, QuantizeError | ValueError):
        reason = str(exc).splitlines()[0] or type(exc).__name__
    elif isinstance(exc, OSError):
        reason = (exc.strerror or str(exc)).lower()
        if exc.filename is not None:
            reason = f"{os.fsdecode(exc.filename)}: {reason}"
    else:
        # A bug must not stop the batch, but it must be visible.
        reason = f"internal error: {type(exc).__name__}: {exc}"
    return ImageResult(source, "failed", reason=reason, detail=detail)


@dataclass(frozen=True)
class _TableResult:
    """A color table read in a worker for the shared palette."""

    result: ImageResult
    keys: NDArray[np.uint32] | None = None
    counts: NDArray[np.int64] | None = None
    transparent: int = 0

    @property
    def status(self) -> Status:
        return self.result.status


def read_table(job: Job, opts: RunOptions) -> _TableResult:
    """Decode one image and return its distinct visible colors (first shared-palette pass).

    The image is decoded as for its output, within the same limits: every
    frame of an animation only when its output format can hold one.
    """
    if stopping():
        return _TableResult(ImageResult(job.source, "interrupted"))
    try:
        # The image is loaded again for the second pass, which reports its warnings.
        with interruptible(), captured_warnings():
            loaded = load_image(
                job.source,
                max_pixels=opts.max_pixels,
                max_frames=opts.max_frames,
                animation=job.plan.fmt in ANIMATION_FORMATS,
            )
            table, transparent = visible_table(loaded)
    except KeyboardInterrupt:
        return _TableResult(ImageResult(job.source, "interrupted"))
    except Exception as exc:
        return _TableResult(_failure(job.source, exc))
    if table.n_colors == 0:
        return _TableResult(
            ImageResult(job.source, "failed", reason="the image has no visible pixels")
        )
    return _TableResult(ImageResult(job.source, "written"), table.keys, table.counts, transparent)


# --------------------------------------------------------------------------- #
# Running tasks in-process or in a pool
# --------------------------------------------------------------------------- #

# --------------------------------------------------------------------------- #
# The shared palette
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class TableSum:
    """The summed color tables of some images (what the first pass adds up).

    Attributes
    ----------
    table : ColorTable
        Sorted distinct keys (m,) and their summed counts (m,).
    transparent : bool
        Whether any of the images has transparent pixels.
    images : int
        How many images were summed.
    """

    table: ColorTable
    transparent: bool
    images: int


class TableSummer:
    """A :class:`quantize.executors.Merger` of :class:`TableSum` parts, in bounded memory.

    Built on :class:`TableMerger`: the sum does not depend on the order or
    grouping of the parts, so the shared palette is the same wherever they
    were added up.
    """

    def __init__(self) -> None:
        self._merger = TableMerger()
        self._transparent = False
        self._images = 0

    def add(self, part: TableSum) -> None:
        """Add the tables of ``part``."""
        self._merger.add(part.table.keys, part.table.counts)
        self._transparent = self._transparent or part.transparent
        self._images += part.images

    def result(self) -> TableSum:
        """Everything added so far, as one part."""
        return TableSum(self._merger.table(), self._transparent, self._images)


def split_table(outcome: _TableResult) -> tuple[_TableResult, TableSum | None]:
    """The first pass's outcome without its table, and the table as a part to sum."""
    if outcome.keys is None or outcome.counts is None:
        return outcome, None
    part = TableSum(ColorTable(outcome.keys, outcome.counts), outcome.transparent > 0, 1)
    return _TableResult(outcome.result), part


#: The first pass sums the images' color tables.
TABLE_SUM: Reduction[_TableResult, TableSum] = Reduction(TableSummer, split_table)


# --------------------------------------------------------------------------- #
# The runner
# --------------------------------------------------------------------------- #


class _Phase:
    """The progress events of one phase; its total grows as images are found."""

    def __init__(self, phase: Phase, progress: ProgressCallback | None, total: int = 0) -> None:
        self.phase, self.progress = phase, progress
        self.total, self.done = total, 0
        self.final = total > 0  # a phase started with its total knows it
        self.started = False
        if self.final:
            self.start()

    def start(self) -> None:
        if not self.started and self.progress is not None:
            self.progress(Progress(self.phase, 0, self.total, final=self.final))
        self.started = True

    def found(self, count: int) -> None:
        """``count`` more images belong to the phase."""
        self.total += count
        self.start()

    def scanned(self) -> None:
        """Every image of the phase was found: the total is final."""
        self.final = True
        if self.started and self.progress is not None:
            self.progress(Progress(self.phase, self.done, self.total, final=True))

    def report(self, result: ImageResult) -> None:
        self.start()
        self.done += 1
        if self.progress is not None:
            self.progress(Progress(self.phase, self.done, self.total, result, self.final))


class _Tally:
    """What the batch result keeps: counts per status, the failures, every result if asked."""

    def __init__(self, keep: bool, page: bool = False) -> None:
        self.counts: Counter[str] = Counter()
        self.failed: list[tuple[int, ImageResult]] = []
        self.results: list[tuple[int, ImageResult]] | None = [] if keep or page else None
        self.page_only = page and not keep

    def add(self, index: int, result: ImageResult) -> None:
        self.counts[result.status] += 1
        if result.status == "failed":
            self.failed.append((index, result))
        if self.results is not None:
            if self.page_only:
                # What the page shows: a run over millions holds one card's worth per image.
                result = replace(result, outputs=(), seconds=0.0, detail=None)
            self.results.append((index, result))

    def batch(self, seconds: float, interrupted: bool, total: int) -> BatchResult:
        results = [r for _, r in sorted(self.results or [], key=_first)]
        failed = [r for _, r in sorted(self.failed, key=_first)]
        return BatchResult(
            results, seconds, interrupted, total=total, counts=dict(self.counts), failed=failed
        )


def _first(item: tuple[int, ImageResult]) -> int:
    return item[0]


def run_batch(
    inputs: Sequence[str | os.PathLike[str]],
    options: BatchOptions | None = None,
    progress: ProgressCallback | None = None,
    executor: Executor | None = None,
) -> BatchResult:
    """Quantize every image in ``inputs`` (files and folders) and write the outputs.

    One bad image never stops the batch: it is reported in the result.  Ctrl-C
    (KeyboardInterrupt) stops the workers, removes the outputs of images that
    were not finished and returns with ``interrupted`` set.

    Parameters
    ----------
    inputs : sequence of path
        Image files and folders.
    options : BatchOptions, optional
    progress : callable, optional
        Called in this process with a :class:`Progress` at the start of each
        phase and after each image.
    executor : Executor, optional
        Where the images are processed (:mod:`quantize.executors`); by
        default this process for ``options.workers`` 1, else that many local
        worker processes.  The outputs are the same whichever runs them.

    Returns
    -------
    BatchResult

    Raises
    ------
    ValueError
        ``options.output`` cannot be the folder the batch needs, or names a
        file (one input file) whose suffix is not an image format.
    InputError
        The folders in ``inputs`` hold no image (the message says what they hold).
    OutputError
        ``palette.json`` (or another shared palette file) exists without
        ``force`` or ``skip_existing``, is an input, or cannot be written.
    PaletteError
        ``skip_existing`` found a ``palette.json`` it cannot read.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from quantize.batch import BatchOptions, run_batch
    >>> tmp = tempfile.TemporaryDirectory()
    >>> photos = Path(tmp.name, "photos")
    >>> photos.mkdir()
    >>> for name in ("a.png", "b.jpg"):
    ...     Image.radial_gradient("L").convert("RGB").save(photos / name)
    >>> result = run_batch([photos], BatchOptions(output=f"{tmp.name}/out/", workers=1))
    >>> result.count("written"), [(r.source, r.reason) for r in result.failures]
    (2, [])
    >>> sorted(p.name for p in Path(tmp.name, "out").iterdir())
    ['a-k16.json', 'a-k16.png', 'b-k16.json', 'b-k16.png']
    >>> tmp.cleanup()
    """
    options = options or BatchOptions()
    if executor is None:
        with local_executor(options.workers or os.cpu_count() or 1) as local:
            return run_batch(inputs, options, progress, local)
    start = time.perf_counter()
    started = time.time()  # temporary files of dead runs older than this are removed
    check_output_folder(inputs, options.output)
    check_output_file(inputs, options.output)
    page_path = None
    if options.html:
        page_path = html_page_path(inputs, options.output)
        options = replace(options, run=replace(options.run, page_dir=page_path.parent))
    single = single_file_mode(inputs)
    exclude = excluded_folders(inputs, options)
    groups = scan_images(inputs, recursive=options.recursive, exclude=exclude)
    streaming = can_stream(inputs, options)
    if not streaming:
        groups = iter([[source for group in groups for source in group]])
    # Images found in folders that look like outputs are skipped; files named
    # on the command line are always inputs and must never be overwritten.
    planner = OutputPlanner(force=options.run.force, started=started)
    if streaming:
        planner.census = partial(protect_ahead, inputs, options.recursive, exclude, planner)
    for path in [Path(p) for p in inputs if not os.path.isdir(p)]:
        planner.protect(path)
    if options.run.palette_file is not None:
        planner.protect(Path(options.run.palette_file))
    for read in options.read_files:
        planner.protect(Path(read))
    palette_path = None
    if options.shared_palette:
        # Claimed first: no image output may land on the shared palette.
        palette_path = shared_palette_path(inputs, options.output)
        planner.claim(
            "the shared palette", shared_palette_files(palette_path, options.run.palette_formats)
        )
    if page_path is not None:
        planner.claim("the --html page", [page_path])
    # Workers elsewhere (a cluster) must see the inputs and the output folder.
    executor.share([*inputs, *([options.output] if options.output is not None else [])])
    run = _Batch(options, single, planner, executor, progress, streaming)
    run.forget_inputs = streaming and can_forget_inputs(inputs)
    if page_path is not None:
        groups = run.checked_page(groups, page_path)
    interrupted = run.images(groups) if palette_path is None else run.shared(groups, palette_path)
    if run.found == 0 and not interrupted:
        # Only folders can yield nothing: a file named as an input is always tried.
        raise InputError(no_images_message(inputs, options.recursive))
    batch = run.tally.batch(time.perf_counter() - start, interrupted, run.found)
    batch.palette, batch.palette_path, batch.palette_reused = run.palette, run.used, run.reused
    if page_path is not None and not interrupted:
        write_page(batch, page_path, force=options.run.force)
    return batch


def _settled(job: Job, status: Status, reason: str | None) -> ImageResult:
    """The outcome of an image that got none from its worker process."""
    return ImageResult(job.source, status, reason=reason)


def _settled_table(job: Job, status: Status, reason: str | None) -> _TableResult:
    return _TableResult(_settled(job, status, reason))


#: What the second pass of a shared palette needs of an image: its position and
#: input, and its output folder (None: as the command line named it), or its
#: result when the first pass or the planning settled it.
_Kept = tuple[int, str, str | None] | tuple[int, ImageResult]


class _Batch:
    """One :func:`run_batch`: the images planned as they are found, run in one or two passes."""

    def __init__(
        self,
        options: BatchOptions,
        single: bool,
        planner: OutputPlanner,
        executor: Executor,
        progress: ProgressCallback | None,
        streaming: bool,
    ) -> None:
        self.options, self.single, self.planner = options, single, planner
        self.streaming = streaming
        self.forget_inputs = False
        self.executor, self.progress = executor, progress
        self.tally = _Tally(options.keep_results, options.html)
        self.found = 0
        self.palette: Palette | None = None
        self.used: Path | None = None
        self.reused = False

    def checked_page(self, groups: Iterator[list[Source]], page: Path) -> Iterator[list[Source]]:
        """``groups``, the page checked before the first group's images are planned.

        When not streaming, the one group holds every image: an input that is
        the page (a link to it) is protected by then.  When streaming, one
        found later is a link to an output of this run, and fails alone
        (:func:`quantize.batch_plan.stream_jobs`); an existing page is checked
        against every input (:func:`protect_ahead`).
        """
        checked = False
        for group in groups:
            if not checked:
                for source in group:
                    self.planner.protect(source.path)
                self.planner.check([page])
                checked = True
            yield group

    def planned(
        self, groups: Iterable[list[Source]], found: Callable[[int], None]
    ) -> Iterator[tuple[int, Job | ImageResult]]:
        def count(images: int) -> None:
            self.found += images
            found(images)

        plans = stream_jobs(
            groups,
            self.options,
            self.single,
            self.planner,
            count,
            streaming=self.streaming,
            forget_inputs=self.forget_inputs,
        )
        return enumerate(plans)

    def images(self, groups: Iterable[list[Source]]) -> bool:
        """Run every image (no shared palette); True when interrupted."""
        phase = _Phase("images", self.progress)
        return self.run(self.planned(groups, phase.found), phase, self.options.run)

    def run(
        self, items: Iterable[tuple[int, Job | ImageResult]], phase: _Phase, opts: RunOptions
    ) -> bool:
        """Run the jobs among ``items``, reporting the results settled while planning in turn."""
        positions: dict[int, int] = {}  # a task's position -> its image's, while it runs
        submitted = count()

        def tasks() -> Iterator[Job]:
            for index, item in items:
                if isinstance(item, Job):
                    positions[next(submitted)] = index
                    yield item
                else:
                    self.tally.add(index, item)
                    phase.report(item)
            phase.scanned()

        def on_done(position: int, result: ImageResult) -> None:
            index = positions.pop(position)
            self.tally.add(index, result)
            phase.report(result)

        return self.executor.run(tasks(), partial(run_job, opts=opts), on_done, _settled)

    def shared(self, groups: Iterable[list[Source]], path: Path) -> bool:
        """Learn (or, with ``skip_existing``, reuse) the shared palette, then run the images.

        Nothing is read or written for the palette unless some image needs work.
        """
        opts = self.options.run
        if self.options.skip_existing and path.exists():
            phase = _Phase("images", self.progress)
            items = self.planned(groups, phase.found)
            first = _first_job(items, lambda index, result: self._settle(phase, index, result))
            if first is None:
                phase.scanned()
                return False
            self.used, self.reused, self.palette = path, True, read_palette(path)
            opts = replace(opts, palette=self.palette, palette_file=str(path))
            return self.run(chain([first], items), phase, opts)
        kept: list[_Kept | None] = []  # None: failed in the first pass
        items = self.planned(groups, lambda images: None)
        first = _first_job(items, lambda index, result: kept.append((index, result)))
        if first is not None:
            self.planner.check(shared_palette_files(path, opts.palette_formats))
            self.used = path
            interrupted, self.palette = self.learn(chain([first], items), kept, path)
            if interrupted:
                for item in kept:
                    if item is not None and isinstance(item[1], ImageResult):
                        self.tally.add(item[0], item[1])
                return True
            opts = replace(opts, palette=self.palette, palette_file=str(path))
        remaining = [item for item in kept if item is not None]
        phase = _Phase("images", self.progress, len(remaining))
        phase.scanned()
        return self.run(self.replanned(remaining), phase, opts)

    def replanned(self, kept: list[_Kept]) -> Iterator[tuple[int, Job | ImageResult]]:
        """The second pass's images: results settled already, and jobs planned again."""
        for item in kept:
            if isinstance(item[1], ImageResult):
                yield item[0], item[1]
                continue
            index, source, folder = item
            path = Path(source)
            if folder is None:
                plan = plan_outputs_for(Source(path), self.options, self.single)
            else:
                plan = plan_outputs(path, f"{folder}{os.sep}", self.options.run)
            yield index, Job(path, plan, self.options.skip_existing)

    def _settle(self, phase: _Phase, index: int, result: ImageResult) -> None:
        self.tally.add(index, result)
        phase.report(result)

    def learn(
        self,
        items: Iterator[tuple[int, Job | ImageResult]],
        kept: list[_Kept | None],
        path: Path,
    ) -> tuple[bool, Palette | None]:
        """The first pass: sum the images' color tables on the executor, fit and write the palette.

        Images that cannot be read fail here; every other one is noted in
        ``kept`` for the second pass (its input and output folder: the job is
        planned again from them, as it was).

        Returns
        -------
        interrupted : bool
        palette : Palette or None
            None when interrupted or when no image could be read.
        """
        phase = _Phase("palette", self.progress)
        positions: dict[int, int] = {}  # a task's position -> its place in ``kept``
        submitted = count()
        folders: dict[str, str] = {}  # one string per output folder

        def tasks() -> Iterator[Job]:
            for index, item in items:
                if isinstance(item, ImageResult):
                    kept.append((index, item))
                    continue
                folder = None if self.single else os.fspath(item.plan.image.parent)
                if folder is not None:
                    folder = folders.setdefault(folder, folder)
                positions[next(submitted)] = len(kept)
                kept.append((index, os.fspath(item.source), folder))
                phase.found(1)
                yield item
            phase.scanned()

        def on_done(position: int, outcome: _TableResult) -> None:
            place = positions.pop(position)
            if outcome.result.status == "failed":
                item = kept[place]
                assert item is not None
                kept[place] = None
                self.tally.add(item[0], outcome.result)
            phase.report(outcome.result)

        # The tables are summed where the executor runs the tasks (a cluster sums
        # them on its workers); only the total comes back here.
        opts = self.options.run
        task = partial(read_table, opts=opts)
        summed = self.executor.map_reduce(tasks(), task, on_done, _settled_table, TABLE_SUM)
        interrupted, total = summed
        if interrupted:
            return True, None
        if total is None:
            return False, None
        palette, report = learn_shared_palette(total.table, opts, total.transparent)
        formats = opts.palette_formats
        write_shared_palette(path, palette, report, total.images, formats, force=opts.force)
        return False, palette


def _first_job(
    items: Iterator[tuple[int, Job | ImageResult]], settled: Callable[[int, ImageResult], None]
) -> tuple[int, Job] | None:
    """Take ``items`` up to the first job, passing the results before it to ``settled``."""
    for index, item in items:
        if isinstance(item, Job):
            return index, item
        settled(index, item)
    return None
