"""Reading and writing files without losing anything the user had.

Part of the I/O layer (no Pillow).  Two mechanisms here, each in one place
(temporary files and the all-or-nothing commit are :mod:`quantize.commit`):

* :class:`OutputPlanner` resolves every input once (any spelling, symbolic
  links, hard links) and every planned output (by the folder it lands in,
  resolved), so that no output is ever an input, no two outputs of one run
  land on the same file, and bad paths fail with a line naming them.  Once
  every input is known it removes, from the folders planned into, the
  temporary files of earlier runs that died
  (:func:`quantize.commit.remove_stale_temps`).
* :func:`open_regular` and :func:`read_small_file` open inputs (images,
  palette files) only when they are regular files, so a FIFO or device
  never blocks or reads without end.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import IO

from quantize.commit import READ_FLAGS, FileId, defer_existing, file_id, remove_stale_temps
from quantize.errors import InputError, OutputError
from quantize.keyset import KeySet, digest

#: Longest file name (bytes) when the file system does not say: Linux's NAME_MAX.
DEFAULT_NAME_MAX = 255


class _FileIds:
    """A set of file ids, most of them packed in 8 bytes (device number, inode)."""

    def __init__(self) -> None:
        self._devices: dict[int, int] = {}  # device -> its place, the top 16 bits of a key
        self._packed = KeySet()
        self._other: set[FileId] = set()  # ids that do not fit in a key

    def add(self, file: FileId) -> None:
        device, inode = file
        place = self._devices.setdefault(device, len(self._devices))
        if place < _DEVICES and 0 <= inode < _INODES:
            self._packed.add(place * _INODES + inode)
        else:
            self._other.add(file)

    def __contains__(self, file: FileId) -> bool:
        device, inode = file
        place = self._devices.get(device)
        if place is not None and place < _DEVICES and 0 <= inode < _INODES:
            return place * _INODES + inode in self._packed
        return file in self._other


_DEVICES, _INODES = 1 << 16, 1 << 48


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


# --------------------------------------------------------------------------- #
# Planning: protected inputs, claimed outputs
# --------------------------------------------------------------------------- #


class OutputPlanner:
    """Every input of a run, protected, and every output it plans, claimed once.

    Paths are compared by where a write lands: the folder resolved (symbolic
    links, ``..``) and identified by device and inode (so a bind mount or
    other second path to it is the same folder), and the name kept, since
    replacing a symbolic link replaces the link; files also by device and
    inode (hard links, links to inputs).  Folders are resolved once each, as
    they are when planning starts.

    Parameters
    ----------
    inputs : iterable of Path
        Files the run reads: images named or found in folders, palette files.
    force : bool
        Existing outputs may be replaced (never an input).
    started : float, optional
        Wall-clock start of the run (``time.time()``): temporary files of dead
        processes older than this are removed from the folders planned into,
        by :meth:`remove_stale`.  None removes nothing.
    """

    def __init__(
        self, inputs: Iterable[Path] = (), *, force: bool = False, started: float | None = None
    ) -> None:
        self.force, self.started = force, started
        self._ids = _FileIds()
        self._paths: set[str] = set()
        self._problems: dict[Path, str] = {}
        self._claims: dict[str, str] = {}
        self._folders: dict[str, tuple[str, str]] = {}  # as spelled -> (resolved, key)
        self._name_max: dict[str, int] = {}
        self._planned: dict[str, None] = {}  # folders claimed into, in order
        self._cleaned: set[str] = set()
        # Claims and input paths since the last retire(), and the digests of retired claims.
        self._fresh_claims: list[str] = []
        self._fresh_paths: list[str] = []
        self._retired = KeySet()
        self._recover: Callable[[str], str | None] | None = None
        #: Called once, before the first existing output is checked: a streaming
        #: run then protects every input it will find, so that the check
        #: refuses or replaces exactly what it would after the whole scan.
        self.census: Callable[[], None] | None = None
        self._lasting: set[str] = set()  # link targets guarded: never forgotten
        self._guarded_free: set[str] = set()  # those guarded while unclaimed
        for path in inputs:
            self.protect(path)

    def location(self, path: Path) -> str:
        """Where a write to ``path`` lands: a key of its folder, its name kept."""
        return os.path.join(self._folder(path)[1], path.name)

    def _folder(self, path: Path) -> tuple[str, str]:
        """The folder of ``path`` resolved, and its key: device and inode where it exists."""
        folder = os.fspath(path.parent)
        known = self._folders.get(folder)
        if known is None:
            known = self._folders[folder] = _folder_key(os.path.realpath(folder))
        return known

    def protect(self, path: Path) -> None:
        """Add an input: neither its path (any spelling) nor its file may become an output."""
        path = Path(path)
        self._add_path(self.location(path))
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                self._add_path(self.location(Path(os.path.realpath(path))))
                st = os.stat(path)
            self._ids.add(file_id(st))
        except (FileNotFoundError, PermissionError):
            pass  # nothing there to lose; reading it will say what is wrong
        except OSError as exc:
            # A symlink loop or a name over the limit cannot be read either.
            self._problems[path] = _reason(exc)

    def guard(self, path: Path) -> None:
        """Protect an input for the whole run, by its file alone unless it is a link.

        For an input found ahead of the scan that plans it (see
        :attr:`census`): its file (device and inode) is protected,
        and for a symbolic link the location it leads to as well, which no
        :meth:`retire` forgets.  A regular file's own path needs no entry:
        an output can only land on it when it is the same file.
        """
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                target = self.location(Path(os.path.realpath(path)))
                self._lasting.add(target)
                if (self._claims.get(target) or self._retired_owner(target)) is None:
                    self._guarded_free.add(target)
                st = os.stat(path)
            self._ids.add(file_id(st))
        except OSError:
            pass  # nothing there to lose (a dangling link's target is guarded above)

    def take_census(self) -> None:
        """An existing output is checked next: call :attr:`census`, the first time."""
        census, self.census = self.census, None
        if census is not None:
            census()

    def guarded_free(self, path: Path) -> bool:
        """Whether ``path`` was guarded (as a link's target) before any output claimed it.

        Such a path is never written by this run: every later claim of it is
        refused by :meth:`check`.
        """
        return self.location(path) in self._guarded_free

    def _add_path(self, key: str) -> None:
        if key not in self._paths:
            self._paths.add(key)
            self._fresh_paths.append(key)

    def _protected(self, key: str) -> bool:
        return key in self._paths or key in self._lasting

    def input_problem(self, path: Path) -> str | None:
        """Why an input cannot even be resolved (loop, name too long), or None."""
        return self._problems.get(Path(path))

    def is_input(self, path: Path, st: os.stat_result | None = None) -> bool:
        """True when writing ``path`` (whose ``lstat`` is ``st``, if known) would touch an input."""
        if self._protected(self.location(path)):
            return True
        try:
            st = st or os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                if self._protected(self.location(Path(os.path.realpath(path)))):
                    return True
                st = os.stat(path)
        except OSError:
            return False
        return file_id(st) in self._ids

    def claim(self, owner: str, outputs: Sequence[Path]) -> None:
        """Reserve ``outputs`` for ``owner``: all of them, or none when one is refused.

        Raises
        ------
        OutputError
            An output's name is too long or lies under a file, or an earlier
            owner claimed the same file.
        """
        keys: list[str] = []
        folders: dict[str, None] = {}
        for out in outputs:
            self.inspect(out)
            key = self.location(out)
            earlier = self._claims.get(key) or self._retired_owner(key)
            if earlier is not None or key in keys:
                raise OutputError(f"{out}: same output as {earlier or owner}")
            keys.append(key)
            folders[self._folder(out)[0]] = None
        self._claims.update(dict.fromkeys(keys, owner))
        self._fresh_claims.extend(keys)
        self._planned.update(folders)

    def owner(self, path: Path) -> str | None:
        """Who claimed ``path`` as an output, or None."""
        key = self.location(path)
        return self._claims.get(key) or self._retired_owner(key)

    def keep_exact(self) -> None:
        """Keep what was claimed and protected so far out of every later :meth:`retire`."""
        self._fresh_claims, self._fresh_paths = [], []

    def retire(self, recover: Callable[[str], str | None], inputs: bool) -> set[str]:
        """Keep the claims made since the last call as 8-byte digests; forget input paths.

        For a run over millions of images: what it holds stops growing with
        every image.  A later claim (or :meth:`owner`) whose digest matches
        a retired one asks ``recover(key)`` for the owner of ``key`` (a
        :meth:`location`), planning again the images that claimed into its
        folder: None means no image did (two keys can share a digest), and
        the claim goes ahead.  With ``inputs`` the input paths protected
        since the last call are forgotten too, which is safe only when no
        later output can land in their folders; their files stay protected.

        Returns
        -------
        set of str
            The keys of the folders the retired claims land in (the part of
            a :meth:`location` before the name).
        """
        self._recover = recover
        folders = set()
        for key in self._fresh_claims:
            del self._claims[key]
            self._retired.add(digest(key))
            folders.add(os.path.dirname(key))
        self._fresh_claims = []
        if inputs:
            self._paths.difference_update(self._fresh_paths)
        self._fresh_paths = []
        return folders

    def _retired_owner(self, key: str) -> str | None:
        if self._recover is None or digest(key) not in self._retired:
            return None
        return self._recover(key)

    def remove_stale(self) -> int:
        """Remove stale temporary files from every folder claimed into so far.

        Called once every input is protected: a file named like a temporary
        file may itself be an input, and is then kept.

        Returns
        -------
        int
            Files removed.
        """
        removed = 0
        for folder in self._planned:
            if self.started is not None and folder not in self._cleaned:
                self._cleaned.add(folder)
                removed += remove_stale_temps(Path(folder), self.started, keep=self)
        return removed

    def check(self, outputs: Iterable[Path]) -> None:
        """Refuse to overwrite an input or, without ``force``, an existing output.

        Raises
        ------
        OutputError
        """
        for out in outputs:
            st = self.inspect(out)
            if st is None:
                if self._protected(self.location(out)):
                    raise OutputError(f"{out}: refusing to overwrite the input image")
                continue
            self.take_census()
            if self.is_input(out, st):
                raise OutputError(f"{out}: refusing to overwrite the input image")
            if not self.force:
                if defer_existing(out):
                    continue  # a job's own earlier attempt? its commit tells (see commit.recording)
                raise OutputError(f"{out}: already exists (use --force to overwrite)")
            if os.path.isdir(out):
                raise OutputError(f"{out}: is a directory")

    def inspect(self, out: Path) -> os.stat_result | None:
        """The ``lstat`` of a planned output, None when it does not exist yet.

        Raises
        ------
        OutputError
            Naming the path: a name over the file system's limit, a folder in
            the path that is a file, or any other reason the path cannot be used.
        """
        folder = os.fspath(out.parent)
        limit = self._name_max.get(folder)
        if limit is None:
            limit = self._name_max[folder] = name_max(out.parent)
        if len(os.fsencode(out.name)) > limit:
            raise OutputError(f"{out}: file name too long")
        try:
            return os.lstat(out)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            blocker = next((p for p in out.parents if os.path.lexists(p)), out.parent)
            raise OutputError(f"{blocker}: is not a folder") from None
        except OSError as exc:
            raise OutputError(f"{out}: {_reason(exc)}") from None


def _folder_key(resolved: str) -> tuple[str, str]:
    """``resolved`` and its key: the device and inode of its nearest existing folder + the rest."""
    existing, rest = resolved, ""
    while True:
        try:
            st = os.stat(existing)
        except OSError:
            parent = os.path.dirname(existing)
            if parent == existing:
                return resolved, resolved
            existing, rest = parent, os.path.join(os.path.basename(existing), rest)
            continue
        # "//" cannot begin a resolved path: the key never equals a real path.
        return resolved, os.path.join(f"//{st.st_dev}:{st.st_ino}", rest).rstrip(os.sep) or "/"


def name_max(folder: Path) -> int:
    """Longest file name in bytes the file system holding ``folder`` accepts."""
    existing = next((p for p in (folder, *folder.parents) if os.path.isdir(p)), Path("."))
    try:
        return int(os.pathconf(existing, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):
        return DEFAULT_NAME_MAX


# --------------------------------------------------------------------------- #
# Reading inputs: regular files only
# --------------------------------------------------------------------------- #


def open_regular(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open a file for binary reading, only when it is a regular file.

    A FIFO, device, socket or directory is refused from its ``stat`` before
    it is opened, so nothing blocks or reads without end; the file is then
    opened non-blocking and checked again, in case it was swapped meanwhile.

    Raises
    ------
    InputError
        Missing, not a regular file, or unreadable; the reason is one line.
    """
    try:
        _require_regular(os.stat(path).st_mode)
        fd = os.open(path, READ_FLAGS)
    except OSError as exc:
        raise InputError(_os_reason(exc)) from exc
    try:
        _require_regular(os.fstat(fd).st_mode)
        if READ_FLAGS & getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_small_file(path: str | os.PathLike[str], limit: int) -> bytes:
    """The whole content of a regular file of at most ``limit`` bytes.

    Raises
    ------
    InputError
        As :func:`open_regular`, or the file is larger than ``limit``.
    """
    with open_regular(path) as fh:
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise InputError(_os_reason(exc)) from exc
    if len(data) > limit:
        raise InputError(f"larger than the limit of {limit} bytes")
    return data


def _require_regular(mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise InputError("is a directory")
    kind = (
        "a FIFO (named pipe)"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "not a file"
    )
    raise InputError(f"is {kind}, not a regular file")


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, IsADirectoryError):
        return "is a directory"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot read: {(exc.strerror or str(exc)).lower()}"
