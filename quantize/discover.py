"""Finding the images of a batch: files named, and folders scanned in a stable order.

A folder yields the files with an image suffix, sorted by name (depth
first with ``recursive``), never quantize's own outputs (recognised by the
inverse of the naming rule, :func:`quantize.outputs.is_own_output`), the
output folder, or the thumbnails of an ``--html`` page.  Inputs are yielded
lazily, as paths, never decoded images.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from quantize.encode import SUFFIX_FORMATS
from quantize.outputs import is_own_output
from quantize.safeio import OutputPlanner

__all__ = ["IMAGE_SUFFIXES", "Source", "find_images"]

#: File suffixes taken from folders (files named explicitly are always tried).
IMAGE_SUFFIXES = frozenset(SUFFIX_FORMATS)


@dataclass(frozen=True)
class Source:
    """An input image and the folder argument it was found under (None if named)."""

    path: Path
    root: Path | None = None


def find_images(
    inputs: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    exclude: Path | None = None,
) -> Iterator[Source]:
    """Expand files and folders into the images to process, in a stable order.

    A file named in ``inputs`` is always yielded.  A folder yields its files
    with an image suffix (:data:`IMAGE_SUFFIXES`), sorted by name, and with
    ``recursive`` those of its subfolders (symbolic links to folders are not
    followed).  quantize's own outputs are left out: a file named
    ``STEM-kK.*`` whose folder also holds an image named ``STEM.*``, and
    everything in the subfolder ``exclude`` (the output folder).  A file met
    twice is yielded once.

    Parameters
    ----------
    inputs : iterable of path
    recursive : bool
    exclude : Path, optional

    Yields
    ------
    Source
    """
    # os.path: a symlink loop or an over-long name is an input that fails
    # alone later, not an exception here.
    excluded = Path(os.path.realpath(exclude)) if exclude is not None else None
    seen: set[str] = set()
    places = OutputPlanner()  # the same file through a bind mount is met twice too
    for arg in map(Path, inputs):
        found = _scan(arg, recursive, excluded) if os.path.isdir(arg) else iter([Source(arg)])
        for source in found:
            key = places.location(Path(os.path.realpath(source.path)))
            if key not in seen:
                seen.add(key)
                yield source


def _scan(root: Path, recursive: bool, excluded: Path | None) -> Iterator[Source]:
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            entries = sorted(folder.iterdir(), key=lambda p: p.name)
        except OSError:
            continue  # an unreadable subfolder holds nothing we can read either
        files = [e for e in entries if e.suffix.lower() in IMAGE_SUFFIXES and e.is_file()]
        stems = {f.stem for f in files}
        for f in files:
            if not is_own_output(f.name, stems):
                yield Source(f, root)
        if recursive:
            subfolders = [
                e
                for e in entries
                if e.is_dir()
                and not e.is_symlink()
                and e.resolve() != excluded
                and not _page_thumbnails(e)
            ]
            folders.extend(reversed(subfolders))  # depth first, in name order


def _page_thumbnails(folder: Path) -> bool:
    """Whether ``folder`` holds the thumbnails of an ``--html`` page (never inputs)."""
    from quantize.report_html import PAGE_NAME, THUMB_DIR

    return folder.name == THUMB_DIR and (folder.parent / PAGE_NAME).is_file()
