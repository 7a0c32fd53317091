"""Where a batch's tasks run: in this process, or in local worker processes.

The batch runner (:mod:`quantize.batch`) turns a batch into picklable tasks
(one image each) and hands them, with a picklable module-level function, to an
:class:`Executor`.  The executor runs ``fn(task)`` for every task and calls
``on_done(index, outcome)`` in the calling process exactly once per task, in
any order; ``index`` is the task's position in the input.  An outcome is
anything with a ``status`` (one of :data:`quantize.vocabulary.STATUSES`).

Two executors live here:

* :class:`InProcess` runs the tasks one after the other in this process
  (``-j 1``, and any batch of one image).
* :class:`LocalProcesses` runs them in a pool of worker processes.  All the
  bookkeeping of processes lives here: worker signal handlers, workers that
  die with their parent, a shared board naming the task each worker runs (so
  a worker that dies fails only its own task, and only after
  :data:`MAX_WORKER_DEATHS` deaths), bounded submission, and stopping on
  Ctrl-C or SIGTERM.

A task function cooperates with an executor through :func:`stopping` (a
stop was asked for: do not start) and :func:`interruptible` (the block a
Ctrl-C may interrupt; outside it the task cleans up undisturbed).

Other executors (a Dask cluster, :mod:`quantize.dask_executor`) implement
the same :class:`Executor` interface in their own module, imported only when
asked for.

:meth:`Executor.map_reduce` also sums a part of every outcome (the shared
palette's color tables): here in the calling process, one part at a time;
an executor whose workers are elsewhere sums them where they are, so that
the calling process only receives the total.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from itertools import chain, islice
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from quantize.commit import guard_moves, signals_deferred
from quantize.errors import raise_dropped, take_dropped
from quantize.vocabulary import Status

if TYPE_CHECKING:
    # Imported where a pool is made: multiprocessing costs start-up time that
    # a run with -j 1 or a single image never needs.
    from concurrent.futures import Future

__all__ = [
    "EXIT_TERMINATED",
    "KILL_AFTER",
    "MAX_WORKER_DEATHS",
    "TICK",
    "Executor",
    "InProcess",
    "LocalProcesses",
    "Merger",
    "Outcome",
    "Reduction",
    "death_reason",
    "interruptible",
    "local_executor",
    "stopping",
]


class Outcome(Protocol):
    """What a task returns: the executor only needs to know whether it was interrupted."""

    @property
    def status(self) -> Status: ...


T = TypeVar("T")
R = TypeVar("R", bound=Outcome)
P = TypeVar("P")


class Merger(Protocol[P]):
    """Sums parts of outcomes (see :meth:`Executor.map_reduce`).

    The total must not depend on the order or grouping in which parts are
    added, and its size must be bounded whatever their number: a merger's
    result is added to other mergers as a part again.
    """

    def add(self, part: P) -> None: ...

    def result(self) -> P: ...


@dataclass(frozen=True)
class Reduction(Generic[R, P]):
    """What :meth:`Executor.map_reduce` sums of the outcomes, and how.

    Both callables must be picklable (module-level): an executor may split
    the outcomes and sum the parts where the tasks ran.

    Attributes
    ----------
    merger : callable
        ``merger()`` makes an empty :class:`Merger`.
    split : callable
        ``split(outcome)``: what ``on_done`` receives, and the part to sum
        (None: nothing).
    """

    merger: Callable[[], Merger[P]]
    split: Callable[[R], tuple[R, P | None]]


#: ``on_done(index, outcome)``: called in the calling process once per task.
DoneCallback = Callable[[int, R], None]
#: ``settle(task, status, reason)``: the outcome of a task that got none from
#: its worker (the worker died, or the run was stopped before it ended).
Settle = Callable[[T, Status, "str | None"], R]

#: How often a task may kill its worker: the first death is retried on a fresh
#: worker (it may have been killed from outside); the second fails the task.
MAX_WORKER_DEATHS = 2
#: Exit status of a process ended by SIGTERM, as a shell reports it.
EXIT_TERMINATED = 128 + signal.SIGTERM
#: Seconds between a wait's checks for a stop request that a finalizer dropped.
TICK = 1.0
#: Seconds the pool's workers get to end on SIGTERM (see :meth:`_Pool.end_workers`)
#: before those still running outside a move of files are killed.
KILL_AFTER = 2.0


class Executor(ABC):
    """Runs batch tasks and reports each task's outcome once.

    Use as a context manager (or call :meth:`close`) so that resources an
    executor holds (processes, a cluster connection) are released.
    """

    #: How many tasks may run at the same time.
    workers: int = 1

    @abstractmethod
    def run(
        self,
        tasks: Iterable[T],
        fn: Callable[[T], R],
        on_done: DoneCallback[R],
        settle: Settle[T, R],
    ) -> bool:
        """Run ``fn(task)`` for every task; call ``on_done(index, outcome)`` as each ends.

        ``tasks`` is consumed lazily: an executor holds only a bounded number
        of tasks at a time.  ``fn`` and the tasks must be picklable for
        executors that run them elsewhere.

        Returns
        -------
        bool
            True when interrupted by Ctrl-C (or SIGTERM): remaining tasks were
            not started and the running ones were told to stop; the outcomes of
            those that still ended are reported.
        """

    def map_reduce(
        self,
        tasks: Iterable[T],
        fn: Callable[[T], R],
        on_done: DoneCallback[R],
        settle: Settle[T, R],
        reduction: Reduction[R, P],
    ) -> tuple[bool, P | None]:
        """Run the tasks as :meth:`run` does, and sum a part of every outcome.

        ``reduction`` says which part of an outcome is summed, and how.  This
        default sums every part in the calling process as its task ends.

        Returns
        -------
        interrupted : bool
            As for :meth:`run`.
        total : part or None
            The sum of the parts; None when interrupted or when no outcome had one.
        """
        total = reduction.merger()
        parts = 0

        def done(index: int, outcome: R) -> None:
            nonlocal parts
            light, part = reduction.split(outcome)
            if part is not None:
                total.add(part)
                parts += 1
            on_done(index, light)

        if self.run(tasks, fn, done, settle):
            return True, None
        return False, total.result() if parts else None

    def share(self, paths: Sequence[str | os.PathLike[str]]) -> None:  # noqa: B027
        """Note the inputs and output folder the tasks read and write under.

        Local executors see this file system; an executor whose workers may
        not checks that each worker sees ``paths`` before it runs a task.
        """

    def close(self) -> None:  # noqa: B027 (most executors hold nothing)
        """Release what the executor holds; it cannot run tasks afterwards."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def local_executor(workers: int) -> Executor:
    """The default executor: this process for one worker, else a local process pool."""
    return InProcess() if workers <= 1 else LocalProcesses(workers)


def death_reason(deaths: int) -> str:
    """Why a task failed after its worker died ``deaths`` times."""
    times = "once" if deaths == 1 else f"{deaths} times"
    return f"the worker process died {times} while working on it (killed, or out of memory?)"


class InProcess(Executor):
    """Runs the tasks one after the other in this process."""

    def run(
        self,
        tasks: Iterable[T],
        fn: Callable[[T], R],
        on_done: DoneCallback[R],
        settle: Settle[T, R],
    ) -> bool:
        try:
            for index, task in enumerate(tasks):
                # Between images: a stop request a finalizer dropped stops here.
                raise_dropped()
                outcome = fn(task)
                on_done(index, outcome)
                if outcome.status == "interrupted":
                    take_dropped()  # this stop acts on it
                    return True
        except KeyboardInterrupt:
            take_dropped()
            return True
        return False


class LocalProcesses(Executor):
    """Runs the tasks in a pool of ``workers`` local processes.

    At most ``2 * workers`` tasks are submitted at a time, so a huge batch
    does not queue a huge backlog.  A worker process that dies (killed, out
    of memory) fails only the task it was running, and only when that task
    kills a worker :data:`MAX_WORKER_DEATHS` times; the other unfinished
    tasks run again on a fresh pool.  A batch of one task runs in this
    process, which spares the pool's start-up.
    """

    def __init__(self, workers: int) -> None:
        self.workers = max(1, workers)

    def run(
        self,
        tasks: Iterable[T],
        fn: Callable[[T], R],
        on_done: DoneCallback[R],
        settle: Settle[T, R],
    ) -> bool:
        tasks = iter(tasks)
        # No more processes than tasks, and none at all for one task.
        try:
            first = list(islice(tasks, self.workers))
        except KeyboardInterrupt:
            return True  # while the tasks were being found: none has started
        if len(first) <= 1:
            return InProcess().run(chain(first, tasks), fn, on_done, settle)
        return _run_pool(enumerate(chain(first, tasks)), fn, len(first), on_done, settle)


# --------------------------------------------------------------------------- #
# What a task function sees of its executor
# --------------------------------------------------------------------------- #

_busy = False
_stopping = False
#: Set by SIGTERM: the worker ends as soon as the task it works on is cleaned up.
_terminating = False
#: Inside a task a signal must not end the worker at once: the task cleans up first.
_in_task = False
#: Pid of the worker's parent when it started; a change means the parent died.
_parent_pid: int | None = None
#: This worker's cell in the pool's shared board (see :class:`_Pool`).
_slot = -1
_board: Any = None
# prctl(2) option: the signal the kernel sends this process when its parent dies.
_PR_SET_PDEATHSIG = 1


def stopping() -> bool:
    """Whether this worker was told to stop: a task must not start any more."""
    return _stopping


@contextmanager
def interruptible() -> Iterator[None]:
    """The part of a task that Ctrl-C may interrupt (raising KeyboardInterrupt).

    Outside it a worker's Ctrl-C only stops later tasks from starting, so
    that the clean-up after an interrupted block is never itself interrupted.
    """
    global _busy
    _busy = True
    try:
        yield
    finally:
        _busy = False


# --------------------------------------------------------------------------- #
# Local worker processes
# --------------------------------------------------------------------------- #


def _worker_init(
    parent: int | None = None,
    board: Any = None,
    counter: Any = None,
    pids: Any = None,
    guards: Sequence[Any] = (),
) -> None:
    """Set up a worker process: signals, its board cell, and dying with its parent.

    Ctrl-C interrupts a worker only while it works on an image.  An idle
    worker must ignore it: an exception in the pool's own loop kills the
    process and breaks the pool.  The parent forwards the signal too, for
    interrupts that do not come from the terminal.  SIGTERM ends the worker
    (after removing the outputs of its image); the kernel sends it when the
    parent dies, so no worker is left blocked on the pool's queue forever.
    """
    global _parent_pid, _board, _slot
    signal.signal(signal.SIGINT, _on_sigint)
    signal.signal(signal.SIGTERM, _on_sigterm)
    if board is not None and counter is not None:
        with counter.get_lock():
            _slot = counter.value
            counter.value += 1
        _board = board
        if pids is not None and _slot < len(guards):
            pids[_slot] = os.getpid()
            guard_moves(guards[_slot])
    _parent_pid = os.getppid() if parent is None else parent
    _die_with_parent()
    if os.getppid() != _parent_pid:
        os._exit(EXIT_TERMINATED)  # the parent died before the kernel could be told


def _die_with_parent() -> None:
    """Have SIGTERM sent to this process when its parent dies, however it dies.

    Linux does this in the kernel (``PR_SET_PDEATHSIG``); elsewhere a daemon
    thread checks once a second whether the process was re-parented.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) == 0:
                return
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_watch_parent, name="quantize-parent-watch", daemon=True).start()


def _watch_parent(interval: float = 1.0) -> None:
    while os.getppid() == _parent_pid:
        time.sleep(interval)
    if hasattr(signal, "pthread_kill"):
        # The main thread must take the signal: it may be blocked reading the pool's queue.
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)
    else:
        os.kill(os.getpid(), signal.SIGTERM)  # Windows: ends the process


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _busy, _stopping
    _stopping = True  # tasks already queued to this worker must not start
    if _busy:
        _busy = False  # a second signal must not interrupt the clean-up
        raise KeyboardInterrupt


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """End the worker: its parent died, or the pool (or process group) is being stopped.

    A busy worker is interrupted first so that its task's outputs are
    removed; a worker inside a task but not busy (removing them already, say
    after Ctrl-C) finishes that.  :func:`_tracked` then exits.  The worker's
    board cell is cleared, so the parent does not blame its task for the death.
    """
    global _busy, _stopping, _terminating
    if _terminating:
        return
    _terminating = _stopping = True
    _release_slot()
    if _busy:
        _busy = False
        raise KeyboardInterrupt
    if not _in_task:
        os._exit(EXIT_TERMINATED)


def _release_slot() -> None:
    if _board is not None and _slot >= 0:
        _board[_slot] = -1


def _tracked(index: int, fn: Callable[[T], R], task: T) -> R:
    """Run ``fn(task)`` in a worker with ``index`` on the board while it runs."""
    global _in_task
    if _board is not None and _slot >= 0:
        _board[_slot] = index
    _in_task = True
    try:
        return fn(task)
    finally:
        _in_task = False
        _release_slot()
        if _terminating:
            os._exit(EXIT_TERMINATED)


class _Pool:
    """A process pool that knows which task each of its workers is running.

    Every worker takes one cell of a shared board at start and writes there
    the index of the task it runs (-1 when idle).  When a worker dies, the
    pool breaks; the others are stopped by the pool with SIGTERM and clear
    their cells on the way out, so the cells still set afterwards name the
    tasks whose workers died.
    """

    def __init__(self, workers: int) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context()
        self.board = context.Array("q", [-1] * workers, lock=False)
        #: Each cell's worker, and the lock it holds while it moves or removes outputs.
        self.pids = context.Array("q", [0] * workers, lock=False)
        self.guards = [context.Lock() for _ in range(workers)]
        self.killer: threading.Timer | None = None
        counter = context.Value("i", 0)
        # A forked or spawned worker's parent is this process (a forkserver's is not).
        parent = os.getpid() if context.get_start_method() in ("fork", "spawn") else None
        self.executor = ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_worker_init,
            initargs=(parent, self.board, counter, self.pids, self.guards),
        )

    def submit(self, fn: Callable[[T], R], index: int, task: T) -> Future[R]:
        # submit() forks the workers; a Ctrl-C or SIGTERM handled in fork()'s
        # at-fork hooks raises there, where Python prints it and drops it: the
        # run went on to the end and exited 0.  Hold them until it returns.
        with signals_deferred():
            return self.executor.submit(_tracked, index, fn, task)

    def close(self) -> set[int]:
        """Shut the pool down; the indices of the tasks whose workers died."""
        self.executor.shutdown(wait=True, cancel_futures=True)
        return {index for index in self.board if index >= 0}

    def end_workers(self, signum: int) -> None:
        """A stop request while the pool ends: SIGTERM the workers, kill the stuck ones.

        A worker ends on SIGTERM once its image is cleaned up (one moving
        files first ends that).  One stuck in a long C call never runs its
        handler: after :data:`KILL_AFTER` seconds it is killed, unless it is
        moving or removing an image's files (it holds its guard then), so
        that no image is left with only some of them.
        """
        if self.killer is not None:
            return  # the workers were told already, in this wait
        processes: dict[int, Any] = dict(getattr(self.executor, "_processes", None) or {})
        for process in processes.values():
            with suppress(OSError):
                process.terminate()
        self._arm_killer(processes)

    def _arm_killer(self, processes: dict[int, Any]) -> None:
        self.killer = threading.Timer(KILL_AFTER, self._kill_stuck, (processes,))
        self.killer.daemon = True
        self.killer.start()

    def _kill_stuck(self, processes: dict[int, Any]) -> None:
        moving = False
        for slot, guard in enumerate(self.guards):
            process = processes.get(self.pids[slot])
            if process is None or process.exitcode is not None:
                continue
            # The guard stays taken: a killed worker must not begin a move.
            if guard.acquire(block=False):
                with suppress(OSError):
                    process.kill()
            else:
                moving = True
        # A worker moving files now may get stuck after its move: looked at
        # again, unless the wait for the workers is over (stop_killer).
        if moving and threading.current_thread() is self.killer:
            self._arm_killer(processes)

    def stop_killer(self) -> None:
        """End the killer of :meth:`end_workers`: the wait for the workers is
        over, and a stop request in a later wait starts another."""
        killer, self.killer = self.killer, None
        if killer is not None:
            killer.cancel()


def _run_pool(
    tasks: Iterator[tuple[int, T]],
    fn: Callable[[T], R],
    workers: int,
    on_done: DoneCallback[R],
    settle: Settle[T, R],
) -> bool:
    from concurrent.futures import wait
    from concurrent.futures.process import BrokenProcessPool

    pool = _Pool(workers)
    stopped = False
    # Tasks to run again first (their workers died), then the ones not yet taken.
    retry: deque[int] = deque()
    held: dict[int, T] = {}  # every task submitted and not yet reported
    running: dict[Future[R], int] = {}
    deaths: Counter[int] = Counter()
    fruitless = 0  # pool breaks in a row with no task finished or to blame

    def next_task() -> int | None:
        if retry:
            return retry.popleft()
        item = next(tasks, None)
        if item is None:
            return None
        held[item[0]] = item[1]
        return item[0]

    def report(index: int, outcome: R) -> None:
        del held[index]
        on_done(index, outcome)

    try:
        while True:
            broken = False
            while len(running) < 2 * workers:
                index = next_task()
                if index is None:
                    break
                try:
                    # A Ctrl-C comes after the task is noted as running, so it is stopped.
                    with signals_deferred():
                        running[pool.submit(fn, index, held[index])] = index
                except BrokenProcessPool:
                    retry.appendleft(index)
                    broken = True
                    break
            if not running and not broken:
                break
            done = _first_completed(running)
            lost = _collect(done, running, report)
            finished = len(done) - len(lost)
            if not (lost or broken):
                continue
            # A broken pool fails every future it has not completed: wait for all.
            done, _ = wait(running)
            lost += _collect(done, running, report)
            culprits = pool.close()
            pool = _Pool(workers)
            fruitless = 0 if culprits or finished else fruitless + 1
            again = []
            for index in sorted(lost):
                deaths[index] += index in culprits
                if deaths[index] >= MAX_WORKER_DEATHS or fruitless > MAX_WORKER_DEATHS:
                    reason = death_reason(max(deaths[index], 1))
                    report(index, settle(held[index], "failed", reason))
                else:
                    again.append(index)
            retry.extendleft(reversed(again))
    except KeyboardInterrupt:
        stopped = True
        take_dropped()  # this stop acts on it
        _undisturbed(partial(_stop, pool, running, held, report, settle), pool)
    finally:
        late = _undisturbed(partial(pool.executor.shutdown, wait=True, cancel_futures=True), pool)
    return stopped or late


def _first_completed(running: dict[Future[R], int]) -> set[Future[R]]:
    """Wait for one of ``running`` to end; the ended ones.

    Raises
    ------
    KeyboardInterrupt
        At a tick (:data:`TICK`), a stop request a finalizer dropped
        (:func:`quantize.errors.raise_dropped`): Terminated for SIGTERM.
    """
    from concurrent.futures import FIRST_COMPLETED, wait

    while True:
        raise_dropped()
        done, _ = wait(running, timeout=TICK, return_when=FIRST_COMPLETED)
        if done:
            return done


def _undisturbed(end: Callable[[], object], pool: _Pool) -> bool:
    """Run ``end`` (a wait for the workers to end) with Ctrl-C and SIGTERM held; True if one came.

    Cut short by a second Ctrl-C, the command left while a worker still
    removed its files (or committed them, which a worker ends first), and
    multiprocessing's exit then waited for that worker and printed the
    interrupt of that wait.  The workers were told to stop (or have no task
    left), and one that comes during the wait ends them
    (:meth:`_Pool.end_workers`), so that a worker deaf to signals (a long C
    call) cannot keep the command.  A held signal's handler runs
    afterwards (SIGTERM's notes the exit code); what it raises asks for
    the stop under way, or for one after the last task (reported as a stop).
    """
    came = ended = False
    while not ended:
        try:
            with signals_deferred(pool.end_workers):
                end()
                ended = True
        except KeyboardInterrupt:
            # Held and raised as the block ended, or raised before the signals
            # were held: ``end`` has not run then, and runs now.
            came = True
        finally:
            pool.stop_killer()
    return came


def _collect(
    done: set[Future[R]], running: dict[Future[R], int], report: Callable[[int, R], None]
) -> list[int]:
    """Report the finished futures in ``done``; the indices of those whose worker died.

    Raises
    ------
    KeyboardInterrupt
        A worker reports its task interrupted (it got Ctrl-C).
    """
    from concurrent.futures.process import BrokenProcessPool

    lost = []
    for future in sorted(done, key=running.__getitem__):
        index = running.pop(future)
        try:
            outcome = future.result()
        except BrokenProcessPool:
            lost.append(index)
            continue
        report(index, outcome)
        if outcome.status == "interrupted":
            raise KeyboardInterrupt
    return lost


def _stop(
    pool: _Pool,
    running: dict[Future[R], int],
    held: dict[int, T],
    report: Callable[[int, R], None],
    settle: Settle[T, R],
) -> None:
    """Cancel what has not started, interrupt what has, and report what still ends."""
    from concurrent.futures.process import BrokenProcessPool

    for future in running:
        future.cancel()
    # A terminal sends SIGINT to the workers as well; `kill -INT` on the parent
    # does not, so forward it.  The pool has no public list of its processes.
    processes: dict[int, Any] = getattr(pool.executor, "_processes", None) or {}
    for pid in list(processes):
        with suppress(OSError):
            os.kill(pid, signal.SIGINT)
    pool.executor.shutdown(wait=True, cancel_futures=True)
    for future, index in sorted(running.items(), key=lambda item: item[1]):
        if future.done() and not future.cancelled():
            try:
                outcome = future.result()
            except BrokenProcessPool:
                # Stopped with the rest (a SIGTERM to the whole process group).
                outcome = settle(held[index], "interrupted", None)
            report(index, outcome)
