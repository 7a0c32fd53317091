"""One array operation split into stripes of rows, run on the process's cores.

numpy releases the GIL inside its loops over large arrays (ufuncs, ``take``,
``argmin``, ``sort``, BLAS products, ``bincount``) and Pillow inside its
codecs, so threads working on disjoint stripes of one array run in parallel;
only ``ufunc.at`` holds the GIL throughout.  Each stripe computes exactly what
the serial loop computes for those rows (the same blocks, the same order
within a row), so results do not depend on the number of threads.

Threads are used only where they cannot multiply: in the main thread of a
process that is not itself a worker of a process pool (``quantize -j N``
runs N such processes, each already using a core), and never nested: work
already split over threads (each restart of a fit on a thread of its own,
:mod:`quantize.restarts`) runs its inner stripes on one.  Plain
`threading` threads, started per call: a pool would import
`concurrent.futures`, which a single-image run otherwise never loads, and
would not survive a ``fork``.
"""

from __future__ import annotations

import contextvars
import itertools
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Final, Generic, TypeVar

__all__ = ["MAX_THREADS", "Deferred", "run_ranges", "run_stripes", "stripes", "thread_count"]

T = TypeVar("T")

#: Most threads one operation is split over.  Most of a run holds the GIL
#: between array operations, which limits what more threads could add.
MAX_THREADS: Final[int] = 4

# Set while the main thread waits for threads of run_ranges (only the main
# thread starts them, so one flag is enough): nothing inside them splits again.
_splitting = threading.Event()


def thread_count() -> int:
    """Threads an operation may use here: the cores this process may run on
    (at most `MAX_THREADS`), or 1 off the main thread, in pool workers and
    inside work that `run_ranges` has already split."""
    if threading.current_thread() is not threading.main_thread() or _splitting.is_set():
        return 1
    # A process-pool worker has multiprocessing loaded (a single-image run
    # never loads it) and a parent process.
    mp = sys.modules.get("multiprocessing")
    if mp is not None and mp.parent_process() is not None:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_THREADS))


def stripes(n: int, *, min_rows: int, align: int = 1) -> list[tuple[int, int]]:
    """Contiguous (start, stop) ranges covering ``range(n)``, one per thread.

    Parameters
    ----------
    n : int
        Rows to cover.
    min_rows : int
        Fewest rows per stripe: below ``2 * min_rows`` rows there is one.
    align : int, default 1
        Every boundary is a multiple of it (a block size of the work).

    Returns
    -------
    list of (int, int)
        As even as the alignment allows, in order; ``[(0, n)]`` for one
        stripe (also for ``n == 0``).
    """
    if n < 2 * min_rows:  # one stripe whatever the cores: skip asking for them
        return [(0, n)]
    parts = min(thread_count(), n // max(min_rows, 1))
    if parts <= 1:
        return [(0, n)]
    blocks = -(-n // align)
    bounds = [min(n, align * (blocks * i // parts)) for i in range(parts + 1)]
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def run_ranges(work: Callable[[int, int], T], ranges: Sequence[tuple[int, int]]) -> list[T]:
    """``work(start, stop)`` for every range, each on its own thread (the
    first on the calling one); results in the order of ``ranges``.

    ``work`` must touch only its own rows of any shared output.  The first
    exception raised is re-raised here once every thread has ended.
    """
    if len(ranges) == 1:
        return [work(*ranges[0])]
    results: list[T | None] = [None] * len(ranges)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            results[i] = work(*ranges[i])
        except BaseException as exc:  # re-raised in the calling thread
            errors.append(exc)

    # Each thread runs in a copy of the caller's context (its settings,
    # such as quantize._kernels.plain_sums, hold there too).
    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(one, i), daemon=True)
        for i in range(1, len(ranges))
    ]
    started: list[threading.Thread] = []
    _splitting.set()
    try:
        for thread in threads:
            thread.start()
            started.append(thread)
        one(0)
    finally:
        for thread in started:
            thread.join()
        _splitting.clear()
    if errors:
        raise errors[0]
    return results  # type: ignore[return-value]  # every slot was filled


def run_stripes(work: Callable[[int, int], T], n: int, *, min_rows: int, align: int = 1) -> list[T]:
    """``work(start, stop)`` on the `stripes` of ``range(n)``, in parallel threads
    (see `run_ranges`); the results in row order."""
    return run_ranges(work, stripes(n, min_rows=min_rows, align=align))


class Deferred(Generic[T]):
    """A value computed on another thread while the caller goes on.

    Where `thread_count` allows no second thread, it is computed when first
    asked for instead, so nothing runs earlier than it would have.

    Parameters
    ----------
    compute : callable () -> T
    """

    def __init__(self, compute: Callable[[], T]) -> None:
        self._compute: Callable[[], T] | None = compute
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if thread_count() > 1:
            context = contextvars.copy_context()  # the caller's settings hold there too
            self._thread = threading.Thread(target=context.run, args=(self._run,), daemon=True)
            self._thread.start()

    @classmethod
    def ready(cls, value: T) -> Deferred[T]:
        """A value already computed."""
        done = cls.__new__(cls)
        done._compute, done._value, done._error, done._thread = None, value, None, None
        return done

    def _run(self) -> None:
        assert self._compute is not None
        try:
            self._value = self._compute()
        except BaseException as exc:  # re-raised by result()
            self._error = exc
        finally:
            self._compute = None  # what it referenced may be freed

    def wait(self) -> None:
        """Return once the value is computed (computing it now if it was
        deferred), without raising what computing it raised."""
        if self._thread is not None:
            self._thread.join()
        elif self._compute is not None:
            self._run()

    def result(self) -> T:
        """The value, once computed; the exception computing it raised, if any."""
        self.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # set by _run
