"""Temporary files and the all-or-nothing commit.

Part of the I/O layer (no Pillow); :mod:`quantize.safeio` plans the outputs
these files become.

* Temporary files are named ``.quantize-PID-XXXXXXXX.tmp``: short (an output
  name up to the file system's limit still gets one), and recognisable with
  the process that owns them, so a later run can tell stale ones
  (:func:`remove_stale_temps`).
* :func:`commit` moves finished temporary files into place, all or nothing:
  without ``force`` a file is only created, never replaced (a hard link of
  the temporary file, which fails when the name exists), so a file that
  appeared after planning (another run) is never replaced; with ``force``
  every replaced file is kept as a backup until the whole set is in place.
  If any step fails, the steps already done are undone.
* :func:`halt` stops the writes of a run's tasks in a worker process (a
  cluster's worker, which Ctrl-C cannot interrupt): a task that has not
  begun its commit places nothing, one that has ends it, and the call
  returns once none of them has a file on the disk in between.  A task
  still writing when it gives up (a long encode) has its temporary files
  listed (:func:`unfinished_temps`), for removal once its process is gone.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quantize.errors import OutputError

if TYPE_CHECKING:
    from quantize.safeio import OutputPlanner

#: Temporary files: ``.quantize-`` + the owner's pid + ``-`` + random + ``.tmp``.
TEMP_PREFIX = ".quantize-"
TEMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"\.quantize-(?P<pid>[0-9]{1,10})-[a-z0-9_]{1,16}\.tmp")
#: Temporary files of dead processes are removed when unchanged this long before the run.
STALE_SECONDS = 600.0
#: How long a commit waits for another quantize process committing into the same folder.
LOCK_WAIT_SECONDS = 2.0
#: How long later commits wait for a folder whose lock this process once waited out:
#: its holder may keep it for the whole run (``flock out/ quantize ... -o out/``).
LOCK_RETRY_SECONDS = 0.05
# Errors of os.link on file systems without hard links (FAT, some network and FUSE ones).
_NO_HARD_LINKS = frozenset(
    {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS, errno.EMLINK, errno.EXDEV}
)
# Opening a file to read without waiting for a FIFO's writer (O_NONBLOCK, POSIX
# only): how safeio.open_regular opens inputs, and, not through a symbolic
# link, how a commit reads a target to compare.  Here, not in safeio, because
# safeio imports this module.
READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_READ_FLAGS = READ_FLAGS | getattr(os, "O_NOFOLLOW", 0)

#: A file's identity: (device, inode).
FileId = tuple[int, int]


def file_id(st: os.stat_result) -> FileId:
    """The identity of the file whose ``stat`` is ``st``."""
    return st.st_dev, st.st_ino


# --------------------------------------------------------------------------- #
# Temporary files
# --------------------------------------------------------------------------- #


def make_temp(folder: Path, temps: list[Path]) -> int:
    """Create a new empty temporary file in ``folder``, open for writing; its descriptor.

    Its path is appended to ``temps`` *before* the file exists: Ctrl-C or
    SIGTERM raise their exception as soon as a system call returns, so with
    :func:`tempfile.mkstemp` one could come after the file was made but
    before its name was known, and the file would stay behind.  The name
    holds this process's id, so a name recorded for a file that was never
    made cannot be another process's file.

    Raises
    ------
    OSError
        The file cannot be created (``temps`` then ends with its name).
    """
    _start_writing()
    for _ in range(tempfile.TMP_MAX):
        name = _new_temp_name(folder)
        temps.append(name)
        try:
            fd = os.open(name, _TEMP_FLAGS, 0o600)
        except FileExistsError:
            temps.pop()  # not ours to remove: another call's file
            continue
        _made_temp(fd, name)
        return fd
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(folder))


# Windows opens files in text mode unless told otherwise.
_TEMP_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
)


def _new_temp_name(folder: Path) -> Path:
    return folder / f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"


def remove_stale_temps(folder: Path, before: float, keep: OutputPlanner | None = None) -> int:
    """Remove quantize's temporary files left in ``folder`` by processes that died.

    A file is removed only when its name is one of ours, its owner process
    no longer runs, it is a regular file last changed (written, or linked:
    ``--force`` backups keep the old file's mtime) :data:`STALE_SECONDS`
    before ``before``, and it is not an input of ``keep``.  The margin is
    for processes this one cannot see: another machine sharing the folder
    over the network, another container; their pids mean nothing here.

    Returns
    -------
    int
        Files removed.
    """
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        match = _TEMP_NAME.fullmatch(entry.name)
        if match is None or _alive(int(match["pid"])):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        path = Path(entry.path)
        if not stat.S_ISREG(st.st_mode) or max(st.st_mtime, st.st_ctime) >= before - STALE_SECONDS:
            continue
        if keep is not None and keep.is_input(path):
            continue
        with suppress(OSError):
            os.unlink(path)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    """True unless process ``pid`` is known not to exist (unknown counts as alive)."""
    if pid <= 0 or pid == os.getpid() or os.name != "posix":
        # pid 0 would signal our own group; elsewhere os.kill would end the process.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):
        return True  # PermissionError: it runs as another user
    return True


def ensure_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) unless it exists.

    Raises
    ------
    OutputError
        Naming the folder that cannot be created.
    """
    if os.path.isdir(folder):
        # Not even tried: mkdir of an existing folder fails on a read-only mount.
        return
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, str) else folder
        if os.path.lexists(where) and not os.path.isdir(where):
            raise OutputError(f"{where}: is not a folder") from exc
        raise OutputError(f"{where}: cannot create folder: {exc.strerror or exc}") from exc


# --------------------------------------------------------------------------- #
# The commit
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Placed:
    """One file moved into place: what it is now, and the backup of what was there.

    ``adopted``: the target already held these bytes (see :func:`recording`);
    nothing was moved, and an undo leaves it.
    """

    target: Path
    file: FileId
    backup: Path | None
    adopted: bool = False


class _Job:
    """What :func:`recording` keeps for the job running in this thread."""

    def __init__(self, log: list[tuple[Path, FileId]]) -> None:
        self.log = log
        #: Outputs that existed already when the job checked them (see defer_existing).
        self.existed: set[Path] = set()


_recording = threading.local()


@contextmanager
def recording(log: list[tuple[Path, FileId]]) -> Iterator[None]:
    """Run one job of a planned batch in this thread; log the files :func:`commit` places.

    The log is for :func:`remove_committed`, when the job is abandoned.

    Inside this block an output that exists although the run's planning found
    it free (or skipped it) is one of two things: a file this job placed in an
    earlier attempt of the same run (its worker died after the commit, or in
    the middle of it, before the outcome was reported), or a file another
    process put there meanwhile.  Outputs are deterministic, so the two are
    told apart by their bytes: without ``force``, :func:`commit` leaves an
    existing target whose bytes are exactly those it would place as it is,
    and counts it placed ("adopted").  That is safe whoever made the file:
    it is never written, moved or removed, and what is there is what the
    run promised; a file with other bytes fails the job as before.  The
    check before the work (:meth:`quantize.safeio.OutputPlanner.check`) therefore leaves an
    existing output to the commit here (:func:`defer_existing`), which then
    names it as that check would have.
    """
    saved = getattr(_recording, "job", None)
    _recording.job = _Job(log)
    try:
        yield
    finally:
        _recording.job = saved


def defer_existing(path: Path) -> bool:
    """Inside :func:`recording`: note that output ``path`` exists, leave it to the commit.

    Returns
    -------
    bool
        True inside :func:`recording` (the commit decides); False elsewhere
        (the caller refuses the existing output itself).
    """
    job: _Job | None = getattr(_recording, "job", None)
    if job is None:
        return False
    job.existed.add(Path(path))
    return True


def remove_committed(log: Iterable[tuple[Path, FileId]]) -> None:
    """Remove files placed by :func:`commit` that still are the files it placed.

    A file another process put there since is left alone.
    """
    with _guarded():
        for target, file in log:
            with suppress(OSError):
                if file_id(os.lstat(target)) == file:
                    os.unlink(target)


_guard: AbstractContextManager[Any] | None = None


def guard_moves(guard: AbstractContextManager[Any] | None) -> None:
    """Hold ``guard`` while this process moves or removes a set of outputs.

    For a process that another one may kill (a pool's worker): the killer
    takes ``guard`` (a ``multiprocessing.Lock``) first, so a set of files is
    never left half moved.
    """
    global _guard
    _guard = guard


def _guarded() -> AbstractContextManager[Any]:
    """The guard of :func:`guard_moves` to hold, or nothing to hold."""
    return nullcontext() if _guard is None else _guard


def commit(moves: Sequence[tuple[Path, Path]], *, force: bool) -> None:
    """Move finished temporary files onto their targets: all of them, or none.

    Without ``force`` a target is only ever created: when one exists at this
    point (it appeared after planning), nothing is replaced.  With ``force``
    targets are replaced, and each replaced file is kept as a backup (a hard
    link, or a rename) until every move is done.  When any move fails the
    ones already done are undone: created files removed, replaced ones
    restored.  Commits of quantize processes into one folder take turns.
    Inside :func:`recording`, without ``force``, a target that already holds
    exactly the temporary file's bytes is left as it is and counts as placed.

    Parameters
    ----------
    moves : sequence of (temp, target)
        Temporary files (from :func:`make_temp`, beside their targets).
    force : bool

    Raises
    ------
    OutputError
        Naming the target that could not be placed.
    """
    _start_writing()
    done: list[_Placed] = []
    job: _Job | None = getattr(_recording, "job", None)
    with _locked({target.parent for _, target in moves}), _signals_deferred(), _guarded():
        try:
            for temp, target in moves:
                done.append(_place(temp, target, force, job))
        except BaseException:
            for placed in reversed(done):
                _undo(placed)
            raise
        for placed in done:
            if placed.backup is not None:
                with suppress(OSError):
                    os.unlink(placed.backup)
        # With an adopted file the set is whole only together with it: an
        # abandoned job keeps all of it rather than leave a part.
        if job is not None and not any(placed.adopted for placed in done):
            job.log.extend((placed.target, placed.file) for placed in done)


# --------------------------------------------------------------------------- #
# Halting the writes of a run
# --------------------------------------------------------------------------- #


class Halted(KeyboardInterrupt):
    """A task of a halted run was about to write: it stops as for Ctrl-C (see :func:`halt`)."""


class _Task:
    def __init__(self, run: str) -> None:
        self.run = run
        self.writing = False
        #: The temporary files it made (see :func:`unfinished_temps`).
        self.temps: dict[str, FileId] = {}


#: Guards the two tables below; notified when a task ends its writes.
_writes = threading.Condition()
#: Runs halted in this process; ``None``: every run.
_halted: set[str | None] = set()
#: Tasks with a temporary or committed file of their image.
_writers: set[_Task] = set()


_tasks = threading.local()


@contextmanager
def task_of(run: str) -> Iterator[None]:
    """Run one task of run ``run`` in this thread, so that :func:`halt` can stop its writes.

    The task counts as writing from its first temporary file to the end of
    this block: by then its files are all in place, or none (its own
    clean-up, as after Ctrl-C, has removed them).
    """
    saved = getattr(_tasks, "task", None)
    task = _tasks.task = _Task(run)
    try:
        yield
    finally:
        _tasks.task = saved
        if task.writing:
            with _writes:
                _writers.discard(task)
                _writes.notify_all()


def _start_writing() -> None:
    """Before a temporary file or a commit: raise Halted once this thread's run is halted."""
    task: _Task | None = getattr(_tasks, "task", None)
    if task is None:
        return
    with _writes:
        if task.run in _halted or None in _halted:
            raise Halted
        if not task.writing:
            task.writing = True
            _writers.add(task)


def _made_temp(fd: int, name: Path) -> None:
    """Note temporary file ``name`` (open as ``fd``) for :func:`unfinished_temps`."""
    task: _Task | None = getattr(_tasks, "task", None)
    if task is not None:
        task.temps[os.path.abspath(name)] = file_id(os.fstat(fd))


def halt(runs: Iterable[str] | None, timeout: float) -> bool:
    """Stop the writes of ``runs`` (None: every run) in this process; wait for those under way.

    From now on a task of these runs (see :func:`task_of`) raises
    :class:`Halted` where it would make a temporary file or begin a commit,
    and removes its files as after Ctrl-C; a commit already begun ends.
    Tasks that write nothing more are left to run.

    Returns
    -------
    bool
        True when no task of these runs has a file on the disk any more;
        False when some still had one after ``timeout`` seconds.
    """
    keys: set[str | None] = {None} if runs is None else set(runs)
    with _writes:
        _halted.update(keys)
        return _writes.wait_for(lambda: not _writing(keys), timeout)


def _writing(keys: set[str | None]) -> list[_Task]:
    """The tasks of runs ``keys`` (``None`` in it: every run) with a file on the disk."""
    return [task for task in _writers if None in keys or task.run in keys]


def unfinished_temps(runs: Iterable[str] | None) -> list[tuple[str, FileId]]:
    """The temporary files that tasks of ``runs`` (None: every run) still have on the disk.

    For a process that ends before such a task could remove them (a
    worker stopped after :func:`halt` gave up waiting): each is an absolute
    path and the identity of the file this process made there, which
    :func:`remove_temps` checks before it removes anything.
    """
    keys: set[str | None] = {None} if runs is None else set(runs)
    with _writes:
        temps = [item for task in _writing(keys) for item in list(task.temps.items())]
    return [(path, file) for path, file in temps if _is_file(path, file)]


def remove_temps(temps: Iterable[tuple[str, FileId]]) -> int:
    """Remove the temporary files of :func:`unfinished_temps` that are still those files.

    A name that now holds another file (made since by another process) is
    left alone.  Returns how many were removed.
    """
    removed = 0
    for path, file in temps:
        if _TEMP_NAME.fullmatch(os.path.basename(path)) and _is_file(path, file):
            with suppress(OSError):
                os.unlink(path)
                removed += 1
    return removed


def _is_file(path: str, file: FileId) -> bool:
    try:
        return file_id(os.lstat(path)) == file
    except OSError:
        return False


def halted() -> bool:
    """Whether :func:`halt` was called in this process."""
    return bool(_halted)


#: Signals whose handlers raise (Ctrl-C, and SIGTERM in quantize's command and workers).
_DEFERRED_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name)
)


@contextmanager
def signals_handled(handler: Callable[[int, object], None]) -> Iterator[None]:
    """Ctrl-C and SIGTERM go to ``handler`` in this block, then to their own handlers again.

    Only the main thread can set handlers; elsewhere, and where a handler
    Python cannot put back is set, nothing changes.
    """
    handlers = [signal.getsignal(signum) for signum in _DEFERRED_SIGNALS]
    if threading.current_thread() is not threading.main_thread() or None in handlers:
        yield
        return
    # Every handler goes back even if a Ctrl-C lands between two of them, as
    # they are set or put back: a signal left with this block's handler
    # would be lost from then on.  So each one's way back is noted first.
    with ExitStack() as restore:
        for signum, previous in zip(_DEFERRED_SIGNALS, handlers, strict=True):
            restore.callback(_set_handler, signum, previous)
            signal.signal(signum, handler)
        yield


def _set_handler(signum: int, handler: Any) -> None:
    """``signal.signal``, looked up as it is called (a test stands in for it)."""
    signal.signal(signum, handler)


@contextmanager
def _signals_deferred(on_held: Callable[[int], None] | None = None) -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block ends, then act on them.

    Their handlers raise wherever the program is: between a file's move and
    its entry in the list of moves to undo, that file would stay, or an old
    file would stay under its backup name.  The moves take milliseconds.
    Only the main thread can set handlers; elsewhere nothing is deferred.
    Blocks nest: an inner one's signals are held by the outer one.
    ``on_held(signum)``, when given, is called as each one comes.
    """
    received: list[int] = []

    def hold(signum: int, frame: object) -> None:
        received.append(signum)
        if on_held is not None:
            on_held(signum)

    try:
        with signals_handled(hold):
            yield
    finally:
        # SIGTERM first: its handler raises too, and it asks for more (an end
        # at once, exit 143) than a Ctrl-C that came with it.
        for signum in sorted(set(received), key=lambda held: held != signal.SIGTERM):
            signal.raise_signal(signum)


#: For other steps that a signal handler must not interrupt (forking the workers).
signals_deferred = _signals_deferred


def _place(temp: Path, target: Path, force: bool, job: _Job | None = None) -> _Placed:
    file = file_id(os.lstat(temp))
    try:
        try:
            # Even with force: a file that is not there has nothing to back up,
            # and creating it exclusively means an undo only ever removes ours.
            _create(temp, target)
            return _Placed(target, file, None)
        except FileExistsError:
            if not force:
                raise
        backup, renamed = _backup(target)
        try:
            os.replace(temp, target)
        except BaseException:
            if backup is not None:
                _restore(backup, target, renamed)
            raise
        return _Placed(target, file, backup)
    except FileExistsError:
        if job is not None and not force:
            adopted = _same_file_content(temp, target)
            if adopted is not None:
                return _Placed(target, adopted, None, adopted=True)
            if target in job.existed:
                raise OutputError(f"{target}: already exists (use --force to overwrite)") from None
        raise OutputError(
            f"{target}: appeared while running; not replaced (use --force to overwrite)"
        ) from None
    except IsADirectoryError:
        raise OutputError(f"{target}: is a directory") from None
    except OSError as exc:
        raise OutputError(f"{target}: cannot write: {exc.strerror or exc}") from exc


#: Bytes compared at a time by _same_file_content.
_COMPARE_CHUNK = 1 << 20


def _same_file_content(temp: Path, target: Path) -> FileId | None:
    """The id of ``target`` when it is a regular file with ``temp``'s bytes, else None.

    ``target`` is opened without following a symbolic link and without
    waiting for a FIFO's writer, and read only when its size matches.
    """
    flags = _READ_FLAGS
    try:
        fd = os.open(target, flags)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as theirs:
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size != os.lstat(temp).st_size:
                return None
            with open(temp, "rb") as ours:
                while True:
                    chunk = ours.read(_COMPARE_CHUNK)
                    if chunk != theirs.read(_COMPARE_CHUNK):
                        return None
                    if not chunk:
                        return file_id(st)
        except OSError:
            return None


def _create(temp: Path, target: Path) -> None:
    """Give ``temp``'s file the name ``target``, only if that name is free.

    Raises
    ------
    FileExistsError
    """
    try:
        os.link(temp, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if not _rename_noreplace(temp, target):
            # Neither primitive: check under the folder lock, which holds
            # off other quantize runs, though not other programs.
            if os.path.lexists(target):
                raise FileExistsError(errno.EEXIST, "File exists", str(target)) from None
            os.replace(temp, target)
        return
    with suppress(OSError):
        os.unlink(temp)


def _rename_noreplace(src: Path, dst: Path) -> bool:
    """``renameat2(RENAME_NOREPLACE)``; False where the system or file system lacks it.

    Raises
    ------
    FileExistsError
    """
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_noreplace = -100, 1
    if renameat2(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), rename_noreplace) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(dst))


def _backup(target: Path) -> tuple[Path | None, bool]:
    """Keep what is at ``target`` under a temporary name; (backup or None, made by rename)."""
    if not os.path.lexists(target):
        return None, False
    if os.path.isdir(target) and not os.path.islink(target):
        raise IsADirectoryError(errno.EISDIR, "Is a directory", str(target))
    for _ in range(100):
        backup = _new_temp_name(target.parent)
        try:
            os.link(target, backup, follow_symlinks=False)
            return backup, False
        except FileExistsError:
            continue
        except (OSError, NotImplementedError):
            # No hard links here: move the old file aside (it is briefly missing).
            if os.path.lexists(backup):
                continue
            os.rename(target, backup)
            return backup, True
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(target.parent))


def _restore(backup: Path, target: Path, renamed: bool) -> None:
    with suppress(OSError):
        if renamed:
            os.replace(backup, target)
        else:
            os.unlink(backup)  # the old file never left target


def _undo(placed: _Placed) -> None:
    if placed.adopted:
        return  # not moved here by this commit, perhaps not even this run's
    with suppress(OSError):
        if placed.backup is not None:
            os.replace(placed.backup, placed.target)
        elif file_id(os.lstat(placed.target)) == placed.file:
            os.unlink(placed.target)


@contextmanager
def _locked(folders: Iterable[Path]) -> Iterator[None]:
    """Hold an exclusive lock on each folder (in a fixed order) for the commit.

    The lock is advisory, between quantize processes only.  Where folders
    cannot be locked, or another process holds the lock too long (stopped
    in the middle of its commit), the commit goes ahead: without ``force``
    it still never replaces a file.
    """
    fds: list[int] = []
    try:
        for folder in sorted(folders):
            fd = _lock_folder(folder)
            if fd is not None:
                fds.append(fd)
        yield
    finally:
        for fd in fds:
            os.close(fd)  # closing releases the lock


# Folders whose lock this process waited out once (by device and inode).
_held_elsewhere: set[FileId] = set()


def _lock_folder(folder: Path) -> int | None:
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        folder_id = file_id(os.fstat(fd))
    except (ImportError, OSError):
        return None
    # Commits hold the lock for milliseconds; a holder that keeps it for seconds
    # is stopped or is not quantize (a script's `flock DIR`), and waiting again
    # on every commit would turn each image into a wait.
    wait = LOCK_RETRY_SECONDS if folder_id in _held_elsewhere else LOCK_WAIT_SECONDS
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _held_elsewhere.discard(folder_id)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                _held_elsewhere.add(folder_id)
                break
            time.sleep(0.002)
        except OSError:
            break
    os.close(fd)
    return None
