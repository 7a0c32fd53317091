"""Finding the images of a batch: files named, and folders scanned in a stable order.

A folder yields the files with an image suffix, sorted by name (depth
first with ``recursive``), never quantize's own outputs (recognised by the
inverse of the naming rule, :func:`quantize.outputs.is_own_output`), the
output folder, or the thumbnails of an ``--html`` page.  Inputs are yielded
lazily, as paths, never decoded images, one folder listing at a time: the
first images of a huge tree are yielded as soon as their folder is read,
and what the scan keeps grows with the number of folders, not of files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from quantize.encode import SUFFIX_FORMATS
from quantize.outputs import is_own_output
from quantize.safeio import OutputPlanner

__all__ = ["IMAGE_SUFFIXES", "Source", "find_images", "folder_images", "scan_images"]

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
    exclude: Path | Sequence[Path] | None = None,
) -> Iterator[Source]:
    """Expand files and folders into the images to process, in a stable order.

    A file named in ``inputs`` is always yielded.  A folder yields its files
    with an image suffix (:data:`IMAGE_SUFFIXES`), sorted by name, and with
    ``recursive`` those of its subfolders (symbolic links to folders are not
    followed).  quantize's own outputs are left out: a file named
    ``STEM-kK.*`` whose folder also holds an image named ``STEM.*``, and
    everything in the subfolders ``exclude`` (the output folder, the
    thumbnails of an ``--html`` page), by any path (a bind mount too).  A
    file met twice is yielded once.

    Parameters
    ----------
    inputs : iterable of path
    recursive : bool
    exclude : Path or sequence of Path, optional

    Yields
    ------
    Source
    """
    for group in scan_images(inputs, recursive=recursive, exclude=exclude):
        yield from group


def scan_images(
    inputs: Iterable[str | os.PathLike[str]],
    *,
    recursive: bool = False,
    exclude: Path | Sequence[Path] | None = None,
) -> Iterator[list[Source]]:
    """The images of :func:`find_images`, one group per folder read (a named file alone).

    Each group is yielded before the next folder is read, so a caller can
    act on every image of a folder (protect them all as inputs) before any
    of them is processed, and start work before the scan is over.

    Yields
    ------
    list of Source
        Never empty.
    """
    # os.path: a symlink loop or an over-long name is an input that fails
    # alone later, not an exception here.
    seen = _Seen()
    excluded = _Excluded(seen, [exclude] if isinstance(exclude, Path) else exclude or [])
    for arg in map(Path, inputs):
        if os.path.isdir(arg):
            yield from _scan(arg, recursive, excluded, seen)
        elif seen.first_file(arg):
            yield [Source(arg)]


class _Excluded:
    """Subfolders the scan never enters: by their path resolved, and by device and inode.

    The path catches a folder made after the scan started (the run's own
    output folder); device and inode catch a folder that existed, under any
    other path to it (a bind mount of the output folder inside an input
    folder).
    """

    def __init__(self, seen: _Seen, folders: Sequence[Path]) -> None:
        self.paths = {Path(os.path.realpath(f)) for f in folders}
        self.keys = {seen.folder_key(f) for f in folders if os.path.isdir(f)}

    def path(self, folder: str) -> bool:
        return Path(os.path.realpath(folder)) in self.paths


class _Seen:
    """What the scan met, by where a write lands (any spelling, a bind mount too).

    Folders are remembered, not files: a regular file is met twice only when
    its folder is (then the folder is skipped, its files were all yielded) or
    when it was met as a named file or through a symbolic link, which are
    the only files remembered.
    """

    def __init__(self) -> None:
        self.places = OutputPlanner()
        self.folders: set[str] = set()
        self.files: set[str] = set()

    def folder_key(self, folder: Path) -> str:
        # The key of a name inside the folder: the folder's device and inode + the name.
        return self.places.location(Path(os.path.realpath(folder), "\0"))

    def first_folder(self, key: str) -> bool:
        if key in self.folders:
            return False
        self.folders.add(key)
        return True

    def first_file(self, path: Path) -> bool:
        """Whether ``path`` (a named file, or a symbolic link found) is met for the first time."""
        real = Path(os.path.realpath(path))
        key = self.places.location(real)
        if key in self.files or self._yielded_from_folder(real):
            return False
        self.files.add(key)
        return True

    def _yielded_from_folder(self, real: Path) -> bool:
        """Whether the scan of ``real``'s folder yielded it already."""
        if self.folder_key(real.parent) not in self.folders:
            return False
        try:
            names = os.listdir(real.parent)
        except OSError:
            return False
        stems = {Path(n).stem for n in names if Path(n).suffix.lower() in IMAGE_SUFFIXES}
        return (
            real.suffix.lower() in IMAGE_SUFFIXES
            and os.path.isfile(real)
            and not is_own_output(real.name, stems)
        )


def _scan(root: Path, recursive: bool, excluded: _Excluded, seen: _Seen) -> Iterator[list[Source]]:
    folders = [root]
    while folders:
        folder = folders.pop()
        key = seen.folder_key(folder)
        if folder is not root and key in excluded.keys:
            continue  # the output folder under another path: its files are outputs
        if not seen.first_folder(key):
            continue  # met before (another argument, another spelling): all yielded then
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError:
            continue  # an unreadable subfolder holds nothing we can read either
        group = []
        prefix = key[:-1]  # the folder's key, ready for a name
        for f in _images(entries):
            path = folder / f.name
            if f.is_symlink():
                if not seen.first_file(path):
                    continue
            elif prefix + f.name in seen.files:
                continue  # named, or met through a link, before
            group.append(Source(path, root))
        if group:
            yield group
        if recursive:
            subfolders = [
                folder / e.name
                for e in entries
                if _is_dir(e) and not excluded.path(e.path) and not _page_thumbnails(Path(e.path))
            ]
            folders.extend(reversed(subfolders))  # depth first, in name order


def _images(entries: list[os.DirEntry[str]]) -> list[os.DirEntry[str]]:
    """The image files among a folder's ``entries``, quantize's own outputs left out."""
    files = [e for e in entries if _suffix(e.name) in IMAGE_SUFFIXES and _is_file(e)]
    stems = {os.path.splitext(f.name)[0] for f in files}
    return [f for f in files if not is_own_output(f.name, stems)]


def folder_images(folder: Path, root: Path | None) -> list[Source]:
    """The images a scan of ``folder`` (under the folder argument ``root``) takes, read again.

    Files the scan had met before (named, or through a symbolic link) are
    not left out: this is for finding again which image of a folder
    planned an output, not for a second scan.
    """
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError:
        return []
    return [Source(folder / f.name, root) for f in _images(entries)]


def _suffix(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _is_dir(entry: os.DirEntry[str]) -> bool:
    """A subfolder, not a symbolic link to one."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _page_thumbnails(folder: Path) -> bool:
    """Whether ``folder`` holds the thumbnails of an ``--html`` page (never inputs)."""
    from quantize.report_html import PAGE_NAME, THUMB_DIR

    return folder.name == THUMB_DIR and (folder.parent / PAGE_NAME).is_file()
