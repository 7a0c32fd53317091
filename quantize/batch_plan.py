"""Planning a batch: its options and results, and where each image's outputs go.

:func:`stream_jobs` plans the images as :func:`quantize.discover.scan_images`
finds them, a folder at a time: every image of a folder is protected as an
input before any of them is planned, and :func:`can_stream` says when that
is all the protection an output needs (otherwise the caller passes the whole
scan as one group, and every input is protected before any output is
planned).  When streaming, :func:`protect_ahead` protects every input
before a first existing output is checked (refused, or with ``--force``
replaced).  :mod:`quantize.batch` runs the jobs.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from quantize.discover import IMAGE_SUFFIXES, Source, folder_images, scan_images
from quantize.errors import OutputError, QuantizeError
from quantize.outputs import OutputPlan, is_folder_spec, plan_outputs
from quantize.palette import Palette
from quantize.pipeline import RunOptions
from quantize.safeio import OutputPlanner
from quantize.vocabulary import Status

if TYPE_CHECKING:
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
    #: Keep every image's :class:`ImageResult` in ``BatchResult.results``.  False
    #: keeps only the counts per status and the failures (what a summary needs), so
    #: that a batch of millions holds a constant amount per image; with ``html``
    #: what the page shows of each is kept (not its outputs, time or traceback).
    keep_results: bool = True


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

    Images are found while the first ones are processed, so ``total`` (the
    images found so far) may grow from one event to the next until ``final``
    is True; the end of the scan is told by one more event with ``result``
    None and ``final`` True.  A phase whose images are all known from the
    start (the second pass of a shared palette) is final throughout.
    """

    phase: Phase
    done: int
    total: int
    result: ImageResult | None = None
    final: bool = True


ProgressCallback = Callable[[Progress], None]


@dataclass
class BatchResult:
    """The outcome of :func:`run_batch`.

    Attributes
    ----------
    results : list of ImageResult
        One per input image, in input order; empty when the batch was run
        with ``keep_results`` False (the counts and failures are kept), but
        with ``html`` then: what the page shows (no outputs, time or traceback).
    seconds : float
        Wall time of the whole batch.
    interrupted : bool
        True when stopped by Ctrl-C; images not reached are left out.
    palette : Palette or None
        The shared palette, when one was learned or reused.
    palette_path : Path or None
        Where the shared palette was written (or read from).
    total : int
        Number of input images found; more than were reported after Ctrl-C
        (which also stops the scan: images not found yet are not counted).
    palette_reused : bool
        True when the shared palette was read from an existing file
        (``skip_existing``), not learned and written.
    counts : dict of str to int
        Images per status; computed from ``results`` when not given.
    failed : list of ImageResult
        The failed images, in input order; from ``results`` when not given.
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
    counts: dict[str, int] = field(default_factory=dict)
    failed: list[ImageResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.counts and self.results:
            self.counts = dict(Counter(r.status for r in self.results))
            self.failed = [r for r in self.results if r.status == "failed"]

    def count(self, status: Status) -> int:
        """Number of images with ``status``."""
        return self.counts.get(status, 0)

    @property
    def reported(self) -> int:
        """Images with an outcome (any status)."""
        return sum(self.counts.values())

    @property
    def not_done(self) -> int:
        """Images found but neither written, skipped nor failed (after Ctrl-C)."""
        return self.total - (self.reported - self.count("interrupted"))

    @property
    def failures(self) -> list[ImageResult]:
        """The failed images, in input order."""
        return list(self.failed)


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


def stream_jobs(
    groups: Iterable[Sequence[Source]],
    options: BatchOptions,
    single_file: bool,
    planner: OutputPlanner,
    found: Callable[[int], None] | None = None,
    *,
    streaming: bool = True,
    forget_inputs: bool = False,
) -> Iterator[Job | ImageResult]:
    """Plan the images one group (a folder's listing) at a time, as they are found.

    The images of a group are all protected before any of them is planned;
    the inputs the run reads otherwise (files named, palette files) must be
    protected in ``planner`` beforehand.  That is all the protection an
    output needs when :func:`can_stream` says so: every output lands in a
    folder whose images are protected already, or in one the scan never
    reads.  ``found(n)`` is called with the size of each group before its
    images are planned.  Once the scan is over, the stale temporary files
    of dead runs are removed from the folders planned into: only then is
    every input protected.  With ``streaming`` False the caller passes one
    group (all the images): then every input is protected before planning.

    When streaming, each group's claims are retired once it is planned
    (:meth:`OutputPlanner.retire`), so that the planner holds a few bytes
    per image; with ``forget_inputs`` (:func:`can_forget_inputs`) the
    group's input paths are forgotten as well.
    """
    retired = _Retired(options, single_file, planner) if streaming else None
    planner.keep_exact()  # what was claimed before the images (a shared palette)
    for group in groups:
        for source in group:
            planner.protect(source.path)
        if found is not None:
            found(len(group))
        for source in group:
            owner = _late_link(source.path, planner) if streaming else None
            if owner is not None:
                # It may lead to a file this run writes: never read it as an input.
                reason = f"{source.path}: a link to an output of {owner} in this run"
                yield ImageResult(source.path, "failed", reason=reason)
                continue
            yield plan_job(source, options, single_file, planner)
        if retired is not None and group:
            retired.note(planner.retire(retired.owner_of, forget_inputs), group)
    planner.remove_stale()


class _Retired:
    """Which images claimed into each folder, for the owner of a retired claim.

    One entry per group (a folder read, or a file named), not per image:
    the owner is found by reading the folder again and planning its images.
    """

    def __init__(self, options: BatchOptions, single_file: bool, planner: OutputPlanner) -> None:
        self.options, self.single_file, self.planner = options, single_file, planner
        self._groups: dict[str, list[Source | tuple[Path, Path]]] = {}
        self._known: tuple[str, dict[str, str]] | None = None  # one folder's claims, found again

    def note(self, folders: set[str], group: Sequence[Source]) -> None:
        """The claims of ``group`` into ``folders`` were retired."""
        first = group[0]
        where = first if first.root is None else (first.path.parent, first.root)
        for folder in folders:
            self._groups.setdefault(folder, []).append(where)
        if self._known is not None and self._known[0] in folders:
            self._known = None

    def owner_of(self, key: str) -> str | None:
        """The image whose retired claim is ``key`` (a planner location), or None."""
        folder = os.path.dirname(key)
        if self._known is None or self._known[0] != folder:
            self._known = folder, self._claims_into(folder)
        return self._known[1].get(key)

    def _claims_into(self, folder: str) -> dict[str, str]:
        claims: dict[str, str] = {}
        for where in self._groups.get(folder, []):
            sources = [where] if isinstance(where, Source) else folder_images(*where)
            for source in sources:
                try:
                    plan = plan_outputs_for(source, self.options, self.single_file)
                except (QuantizeError, ValueError):
                    continue
                for path in plan.paths:
                    claims.setdefault(self.planner.location(path), str(source.path))
        return claims


def _late_link(path: Path, planner: OutputPlanner) -> str | None:
    """The image whose output a symbolic link ``path`` leads to, if one was planned already.

    The only way an input found later can be an earlier image's output: its
    own folder was read before any output was planned into it.
    """
    if not os.path.islink(path):
        return None
    target = Path(os.path.realpath(path))
    if planner.guarded_free(target):
        return None  # protected before any output claimed it: no output of this run
    return planner.owner(target)


def can_stream(inputs: Sequence[str | os.PathLike[str]], options: BatchOptions) -> bool:
    """Whether the images may be planned (and processed) while the folders are still read.

    Outputs next to their inputs land in a folder read (and protected) in
    full already, under names the scan never takes as inputs
    (:func:`quantize.outputs.is_own_output`); outputs under ``-o``, and the
    thumbnails of ``--html``, land in folders the scan leaves out
    (:func:`excluded_folders`), unless a folder argument is one of them or
    lies inside one.  An existing output (which ``--force`` replaces) may
    be an input found later (a hard or symbolic link to it, or from it):
    before the first one is checked, every input is protected
    (:func:`protect_ahead`).  A thumbnails folder that exists without its
    page is read as inputs, as it always was: then the whole scan comes
    first.
    """
    if single_file_mode(inputs):
        return True
    folders = [Path(os.path.realpath(p)) for p in inputs if os.path.isdir(p)]
    outside = [Path(os.path.realpath(f)) for f in excluded_folders(inputs, options)]
    if any(folder == out or folder.is_relative_to(out) for folder in folders for out in outside):
        return False
    return not (options.html and _stray_thumbnails(html_page_path(inputs, options.output)))


def excluded_folders(inputs: Sequence[str | os.PathLike[str]], options: BatchOptions) -> list[Path]:
    """The folders the scan of a batch leaves out: the output folder, the page's thumbnails.

    A thumbnails folder is left out when the run makes it (it does not
    exist yet); one that has its page beside it is left out by the scan
    anyway; one without (a run stopped before its page) holds inputs.
    """
    folders = []
    if options.output is not None and not single_file_mode(inputs):
        folders.append(Path(options.output))
    if options.html:
        from quantize.report_html import THUMB_DIR

        thumbs = html_page_path(inputs, options.output).parent / THUMB_DIR
        if not os.path.lexists(thumbs):
            folders.append(thumbs)
    return folders


def _stray_thumbnails(page: Path) -> bool:
    """Whether the page's thumbnails folder exists without the page (its images are inputs)."""
    from quantize.report_html import THUMB_DIR

    return os.path.lexists(page.parent / THUMB_DIR) and not page.is_file()


def protect_ahead(
    inputs: Sequence[str | os.PathLike[str]],
    recursive: bool,
    exclude: Sequence[Path],
    planner: OutputPlanner,
) -> None:
    """Protect every input the scan of a batch will find, without keeping them.

    For a streaming run: :meth:`OutputPlanner.check` calls it (as its
    ``census``) before it checks a first existing output.  An input found
    later could be that file (a hard link to it, a symbolic link to it or
    to its name, a path to its folder): ``--force`` would replace it, and
    without ``--force`` the output would be refused for another reason than
    after the whole scan.  Once every input is protected, an existing
    output is refused or replaced exactly as in a run that reads the whole
    tree first.  Holds one file id per input (what the planner keeps for
    every input anyway), and one path per symbolic link.  ``exclude`` is
    what the batch's scan leaves out (:func:`excluded_folders`, from
    before the run wrote anything).
    """
    for group in scan_images(inputs, recursive=recursive, exclude=exclude):
        for source in group:
            planner.guard(source.path)


def can_forget_inputs(inputs: Sequence[str | os.PathLike[str]]) -> bool:
    """Whether a streaming run may forget a folder's input paths once its images are planned.

    Only files named on the command line can have outputs planned into a
    folder after its images (they come after a folder argument); the
    other outputs land beside their own inputs or under ``-o``, which the
    scan never reads.  The files themselves stay protected (by device and
    inode) in any case.
    """
    return all(os.path.isdir(p) for p in inputs)


def plan_job(
    source: Source, options: BatchOptions, single_file: bool, planner: OutputPlanner
) -> Job | ImageResult:
    """Plan one image whose input is protected: its job, or its result when it needs no work."""
    problem = planner.input_problem(source.path)
    if problem is not None:
        return ImageResult(source.path, "failed", reason=problem)
    try:
        plan = plan_outputs_for(source, options, single_file)
        if planner.census is not None and _checks_existing(plan.paths, options.skip_existing):
            planner.take_census()  # before the claim: a link to these outputs is an input then
        planner.claim(str(source.path), plan.paths)
    except QuantizeError as exc:
        return ImageResult(source.path, "failed", reason=str(exc))
    if options.skip_existing and all(p.exists() for p in plan.paths):
        return ImageResult(source.path, "skipped", outputs=tuple(plan.paths))
    try:
        planner.check(plan.paths)
    except OutputError as exc:
        return ImageResult(source.path, "failed", reason=str(exc))
    return Job(source.path, plan, options.skip_existing)


def _checks_existing(paths: Sequence[Path], skip_existing: bool) -> bool:
    """Whether planning these outputs checks an existing file (skipped images check none)."""
    return any(map(os.path.lexists, paths)) and not (
        skip_existing and all(p.exists() for p in paths)
    )


def plan_outputs_for(source: Source, options: BatchOptions, single_file: bool) -> OutputPlan:
    """The output plan of ``source``: beside it, or under ``options.output`` mirroring its tree."""
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


def html_page_path(inputs: Sequence[str | os.PathLike[str]], output: str | None) -> Path:
    """Where ``--html`` writes ``index.html``: where ``palette.json`` would go."""
    from quantize.report_html import PAGE_NAME

    return shared_palette_path(inputs, output).with_name(PAGE_NAME)
