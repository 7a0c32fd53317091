"""Many images at once: find them, plan their outputs, run them in worker processes.

:func:`run_batch` is the library entry point behind the ``quantize`` command.
It expands files and folders into a list of paths (never of decoded images,
so memory stays flat), decides every output path before any work, then hands
one image at a time to :func:`quantize.outputs.process_file` in a pool of
worker processes.  Each worker writes its own outputs atomically; the parent
only collects small :class:`ImageResult` records and calls the progress
callback.  Every image is processed by the same deterministic code whatever
the number of workers, so the outputs are byte-identical for any ``workers``.

With ``shared_palette`` a first pass collects each image's table of distinct
colors, merges the tables (a bounded buffer of keys and counts), fits one
palette to the merged table and writes it as ``palette.json``; the second
pass recolors every image with it.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import NDArray

from quantize.discover import IMAGE_SUFFIXES, Source, find_images
from quantize.encode import ANIMATION_FORMATS
from quantize.errors import InputError, OutputError, QuantizeError
from quantize.executors import Executor, Reduction, interruptible, local_executor, stopping
from quantize.histogram import ColorTable, TableMerger
from quantize.imageio import captured_warnings, load_image
from quantize.outputs import (
    OutputPlan,
    is_folder_spec,
    plan_outputs,
    process_file,
    shared_palette_files,
    write_page,
    write_shared_palette,
)
from quantize.palette import Palette
from quantize.palette_formats import read_palette
from quantize.pipeline import RunOptions, learn_shared_palette, visible_table
from quantize.safeio import (
    FileId,
    OutputPlanner,
    recording,
    remove_committed,
)
from quantize.vocabulary import Status

if TYPE_CHECKING:
    from quantize.pipeline import QuantizeResult
    from quantize.report_html import PageEntry

#: Name of the shared palette file written with ``shared_palette``.
SHARED_PALETTE_NAME = "palette.json"


Phase = Literal["palette", "images"]


@dataclass(frozen=True)
class BatchOptions:
    """How a batch is found, planned and run.

    Attributes
    ----------
    run : RunOptions
        Per-image settings: the `quantize.options.QuantizeOptions` (colors,
        clustering, a given palette ...) and the outputs (format, force ...).
    output : str or None
        None: outputs next to their inputs.  With one input file, a file
        name or a folder as for a single image; otherwise a folder, under
        which the tree below each folder argument is mirrored.
    recursive : bool
        Also take images from the subfolders of folder arguments.
    skip_existing : bool
        Skip (and count as skipped) images whose outputs all exist.
    workers : int or None
        Worker processes; None means ``os.cpu_count()``.  1 runs in-process.
    shared_palette : bool
        Learn one palette over all images and recolor every image with it.
    """

    run: RunOptions = field(default_factory=RunOptions)
    output: str | None = None
    recursive: bool = False
    skip_existing: bool = False
    workers: int | None = None
    shared_palette: bool = False
    #: Also write ``index.html`` with every image's thumbnails (quantize.report_html).
    html: bool = False
    #: Other files the run reads (a ``--keep @FILE``): protected like inputs.
    read_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageResult:
    """What happened to one input image.

    Attributes
    ----------
    source : Path
    status : {"written", "skipped", "failed", "interrupted"}
    outputs : tuple of Path
        Files written (or, when skipped, the files that already existed).
    reason : str or None
        One-line reason of a failure.
    warnings : tuple of str
    colors : int
        Palette size of the result.
    psnr : float or None
        PSNR in dB (``inf`` when exact).
    seconds : float
        Time spent on the image.
    delta_e_mean : float or None
        Mean CIEDE2000 difference of the pixels to their new colors.
    auto : str or None
        With ``-k auto``: why the palette size was chosen.
    detail : str or None
        Traceback text of an unexpected error, for ``--debug``.
    palette_size : int
        Size of the given or shared palette the image was recolored with
        (``colors`` counts the ones it uses); 0 when clustered for the image.
    """

    source: Path
    status: Status
    outputs: tuple[Path, ...] = ()
    reason: str | None = None
    warnings: tuple[str, ...] = ()
    colors: int = 0
    psnr: float | None = None
    seconds: float = 0.0
    delta_e_mean: float | None = None
    auto: str | None = None
    detail: str | None = None
    palette_size: int = 0
    #: What the ``--html`` page shows of a written image (thumbnails, palette, sizes).
    page: PageEntry | None = None


@dataclass(frozen=True)
class Progress:
    """One progress event passed to the callback of :func:`run_batch`.

    A phase starts with ``done == 0`` and ``result is None``; then one event
    follows per finished image.  ``phase`` is ``"palette"`` for the first pass
    of a shared palette (reading color tables) and ``"images"`` otherwise.
    """

    phase: Phase
    done: int
    total: int
    result: ImageResult | None = None


ProgressCallback = Callable[[Progress], None]


@dataclass
class BatchResult:
    """The outcome of :func:`run_batch`.

    Attributes
    ----------
    results : list of ImageResult
        One per input image, in input order.
    seconds : float
        Wall time of the whole batch.
    interrupted : bool
        True when stopped by Ctrl-C; images not reached are left out.
    palette : Palette or None
        The shared palette, when one was learned or reused.
    palette_path : Path or None
        Where the shared palette was written (or read from).
    total : int
        Number of input images found; more than ``len(results)`` after Ctrl-C.
    palette_reused : bool
        True when the shared palette was read from an existing file
        (``skip_existing``), not learned and written.
    """

    results: list[ImageResult]
    seconds: float
    interrupted: bool = False
    palette: Palette | None = None
    palette_path: Path | None = None
    total: int = 0
    palette_reused: bool = False
    #: The ``--html`` page, when written.
    page_path: Path | None = None

    def count(self, status: Status) -> int:
        """Number of images with ``status``."""
        return sum(r.status == status for r in self.results)

    @property
    def not_done(self) -> int:
        """Images found but neither written, skipped nor failed (after Ctrl-C)."""
        return self.total - sum(r.status != "interrupted" for r in self.results)

    @property
    def failures(self) -> list[ImageResult]:
        """The failed images, in input order."""
        return [r for r in self.results if r.status == "failed"]


@dataclass(frozen=True)
class Job:
    """One image to process and where its outputs go."""

    source: Path
    plan: OutputPlan
    #: All outputs appearing while it runs (another run wrote them) skips it.
    skip_existing: bool = False


# --------------------------------------------------------------------------- #
# Planning
# --------------------------------------------------------------------------- #


def single_file_mode(inputs: Sequence[str | os.PathLike[str]]) -> bool:
    """True when ``inputs`` is one path that is not a folder: ``-o`` may then name a file."""
    return len(inputs) == 1 and not os.path.isdir(inputs[0])


def check_output_folder(inputs: Sequence[str | os.PathLike[str]], output: str | None) -> None:
    """Refuse an ``output`` that cannot be the folder a batch needs.

    With folders or several inputs the output is a folder (created when
    missing); an existing file or a name with an image suffix is refused.

    Raises
    ------
    ValueError
    """
    if output is None or single_file_mode(inputs) or is_folder_spec(output):
        return
    if os.path.lexists(output):
        raise ValueError(f"{output} is not a folder; with folders or several inputs -o is a folder")
    if Path(output).suffix.lower() in IMAGE_SUFFIXES:
        raise ValueError(
            f"{output} looks like a file name; with folders or several inputs -o is a folder"
        )


def check_output_file(inputs: Sequence[str | os.PathLike[str]], output: str | None) -> None:
    """Refuse an ``output`` file name (one input file) whose suffix names no format.

    ``-o results`` with one input is most likely meant as a folder; it is a
    usage problem, found before any work.

    Raises
    ------
    ValueError
    """
    if output is None or not single_file_mode(inputs) or is_folder_spec(output):
        return
    if Path(output).suffix.lower() not in IMAGE_SUFFIXES:
        known = ", ".join(sorted(IMAGE_SUFFIXES))
        raise ValueError(
            f"{output}: cannot tell the output format "
            f"(end it with {os.sep} for a folder, or give a suffix: {known})"
        )


def no_images_message(inputs: Sequence[str | os.PathLike[str]], recursive: bool) -> str:
    """The one-line error for folder inputs that yielded no image: what they hold.

    For example ``shots/: no images found (use -r to include subfolders)``.
    """
    folders = [Path(p) for p in inputs if Path(p).is_dir()]
    names = ", ".join(str(f).rstrip(os.sep) + os.sep for f in folders) or "inputs"
    entries = subfolders = others = 0
    for folder in folders:
        with suppress(OSError):
            for entry in folder.iterdir():
                entries += 1
                if entry.is_dir():
                    subfolders += 1
                elif entry.suffix.lower() not in IMAGE_SUFFIXES:
                    others += 1
    if subfolders and not recursive:
        hint = "use -r to include subfolders"
    elif others:
        known = ", ".join(sorted(IMAGE_SUFFIXES))
        hint = f"{others} file{'s' * (others != 1)} without an image suffix ({known})"
    elif subfolders:
        hint = "none in the subfolders either"
    else:
        hint = "the folder is empty" if entries == 0 else "nothing readable as an image file"
    return f"{names}: no images found ({hint})"


def plan_jobs(
    sources: Iterable[Source],
    options: BatchOptions,
    single_file: bool,
    named: Sequence[Path] = (),
    planner: OutputPlanner | None = None,
) -> Iterator[Job | ImageResult]:
    """Decide every output path; yield a job, or the result of an image that needs no work.

    An image is failed here when its path cannot be resolved, its outputs
    cannot be planned, would land (by resolved path) on the outputs of an
    earlier image or on any input (``sources``, ``named`` or the planner's),
    or exist without ``force``; skipped when ``skip_existing`` and all its
    outputs exist.
    """
    sources = list(sources)  # paths only: every input is known before any output
    if planner is None:
        planner = OutputPlanner(force=options.run.force)
    for path in [*named, *(source.path for source in sources)]:
        planner.protect(path)
    for source in sources:
        problem = planner.input_problem(source.path)
        if problem is not None:
            yield ImageResult(source.path, "failed", reason=problem)
            continue
        try:
            plan = _plan(source, options, single_file)
            planner.claim(str(source.path), plan.paths)
        except QuantizeError as exc:
            yield ImageResult(source.path, "failed", reason=str(exc))
            continue
        if options.skip_existing and all(p.exists() for p in plan.paths):
            yield ImageResult(source.path, "skipped", outputs=tuple(plan.paths))
            continue
        try:
            planner.check(plan.paths)
        except OutputError as exc:
            yield ImageResult(source.path, "failed", reason=str(exc))
            continue
        yield Job(source.path, plan, options.skip_existing)


def _plan(source: Source, options: BatchOptions, single_file: bool) -> OutputPlan:
    output = options.output
    if output is None or single_file:
        return plan_outputs(source.path, output, options.run)
    folder = Path(output)
    if source.root is not None:
        folder = folder / source.path.parent.relative_to(source.root)
    return plan_outputs(source.path, f"{folder}{os.sep}", options.run)


def shared_palette_path(inputs: Sequence[str | os.PathLike[str]], output: str | None) -> Path:
    """Where ``palette.json`` goes: the output folder, else beside the first input.

    With ``output`` a folder it goes in that folder; with ``output`` an image
    file name (one input file), beside that file.  Without ``output``: in the
    first input when it is a folder, otherwise in the first input's folder.
    """
    if output is not None:
        folder = (
            Path(output)
            if not single_file_mode(inputs) or is_folder_spec(output)
            else Path(output).parent
        )
    else:
        first = Path(inputs[0])
        folder = first if os.path.isdir(first) else first.parent
    return folder / SHARED_PALETTE_NAME


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


class _Collector:
    """Results by input position, forwarding each to the progress callback."""

    def __init__(self, phase: Phase, total: int, progress: ProgressCallback | None) -> None:
        self.phase, self.total, self.progress = phase, total, progress
        self.done = 0
        if progress is not None:
            progress(Progress(phase, 0, total))

    def report(self, result: ImageResult) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(Progress(self.phase, self.done, self.total, result))


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
    exclude = None if options.output is None or single else Path(options.output)
    sources = find_images(inputs, recursive=options.recursive, exclude=exclude)
    finished: dict[int, ImageResult] = {}
    jobs: list[tuple[int, Job]] = []
    # Images found in folders that look like outputs are skipped; files named
    # on the command line are always inputs and must never be overwritten.
    named = [Path(p) for p in inputs if not os.path.isdir(p)]
    if options.run.palette_file is not None:
        named.append(Path(options.run.palette_file))
    named.extend(Path(p) for p in options.read_files)
    planner = OutputPlanner(force=options.run.force, started=started)
    palette_path = None
    if options.shared_palette:
        # Claimed first: no image output may land on the shared palette.
        palette_path = shared_palette_path(inputs, options.output)
        planner.claim(
            "the shared palette", shared_palette_files(palette_path, options.run.palette_formats)
        )
    if page_path is not None:
        planner.claim("the --html page", [page_path])
    for index, item in enumerate(plan_jobs(sources, options, single, named, planner)):
        if isinstance(item, Job):
            jobs.append((index, item))
        else:
            finished[index] = item
    if page_path is not None:
        planner.check([page_path])  # only now is an input named index.html protected
    planner.remove_stale()  # only now: every input is protected
    planned = [finished[i] for i in sorted(finished)]
    total = len(planned) + len(jobs)
    if total == 0:
        # Only folders can yield nothing: a file named as an input is always tried.
        raise InputError(no_images_message(inputs, options.recursive))
    # Workers elsewhere (a cluster) must see the inputs and the output folder.
    executor.share([*inputs, *([options.output] if options.output is not None else [])])
    run_opts = options.run
    palette, palette_used, interrupted, reused = None, None, False, False
    if palette_path is not None and jobs:
        palette_used = palette_path
        reused = options.skip_existing and palette_path.exists()
        interrupted, palette = _shared_palette(
            jobs, options, palette_path, planner, executor, finished, progress
        )
        jobs = [(i, job) for i, job in jobs if i not in finished]
        run_opts = replace(run_opts, palette=palette, palette_file=str(palette_path))
    if not interrupted:
        interrupted = _run_jobs(jobs, planned, run_opts, executor, finished, progress)
    results = [finished[i] for i in sorted(finished)]
    seconds = time.perf_counter() - start
    batch = BatchResult(results, seconds, interrupted, palette, palette_used, total, reused)
    if page_path is not None and not interrupted:
        write_page(batch, page_path, force=options.run.force)
    return batch


def html_page_path(inputs: Sequence[str | os.PathLike[str]], output: str | None) -> Path:
    """Where ``--html`` writes ``index.html``: where ``palette.json`` would go."""
    from quantize.report_html import PAGE_NAME

    return shared_palette_path(inputs, output).with_name(PAGE_NAME)


def _run_jobs(
    jobs: list[tuple[int, Job]],
    planned: list[ImageResult],
    opts: RunOptions,
    executor: Executor,
    finished: dict[int, ImageResult],
    progress: ProgressCallback | None,
) -> bool:
    """Run the jobs; the images settled while planning are reported first."""
    collector = _Collector("images", len(planned) + len(jobs), progress)
    for result in planned:
        collector.report(result)

    def on_done(position: int, result: ImageResult) -> None:
        finished[jobs[position][0]] = result
        collector.report(result)

    tasks = [job for _, job in jobs]
    return executor.run(tasks, partial(run_job, opts=opts), on_done, _settled)


def _settled(job: Job, status: Status, reason: str | None) -> ImageResult:
    """The outcome of an image that got none from its worker process."""
    return ImageResult(job.source, status, reason=reason)


def _settled_table(job: Job, status: Status, reason: str | None) -> _TableResult:
    return _TableResult(_settled(job, status, reason))


def _shared_palette(
    jobs: list[tuple[int, Job]],
    options: BatchOptions,
    path: Path,
    planner: OutputPlanner,
    executor: Executor,
    finished: dict[int, ImageResult],
    progress: ProgressCallback | None,
) -> tuple[bool, Palette | None]:
    """Learn (or, with skip_existing, reuse) the shared palette.

    Images that cannot be read are marked failed in ``finished`` here.

    Returns
    -------
    interrupted : bool
    palette : Palette or None
        None when interrupted or when no image could be read.
    """
    if options.skip_existing and path.exists():
        return False, read_palette(path)
    planner.check(shared_palette_files(path, options.run.palette_formats))
    collector = _Collector("palette", len(jobs), progress)

    def on_done(position: int, outcome: _TableResult) -> None:
        if outcome.result.status == "failed":
            finished[jobs[position][0]] = outcome.result
        collector.report(outcome.result)

    tasks = [job for _, job in jobs]
    # The tables are summed where the executor runs the tasks (a cluster sums
    # them on its workers); only the total comes back here.
    summed = executor.map_reduce(
        tasks, partial(read_table, opts=options.run), on_done, _settled_table, TABLE_SUM
    )
    interrupted, total = summed
    if interrupted:
        return True, None
    if total is None:
        return False, None
    palette, report = learn_shared_palette(total.table, options.run, total.transparent)
    formats = options.run.palette_formats
    write_shared_palette(path, palette, report, total.images, formats, force=options.run.force)
    return False, palette
