"""Run a batch's tasks on a Dask cluster (``--dask``): the optional ``[dask]`` extra.

:class:`DaskExecutor` implements :class:`quantize.executors.Executor` on a
``distributed.Client``: the same picklable tasks and task functions as the
local worker processes, so every image is processed by the same code and
its outputs are byte-identical to a run with ``-j 1``.

* A scheduler address is asked who it is first, under the connection
  timeout: what does not answer as a scheduler is a one-line error in time.
* Submission is bounded: at most :data:`WINDOW_PER_THREAD` tasks per worker
  thread are on the cluster at a time, taken lazily from the task iterable.
* A worker that dies is replaced by Dask (a nanny restarts it) and its
  tasks are run again; a task whose workers died too often fails alone
  with :func:`quantize.executors.death_reason`, as locally.  The scheduler
  decides when that is (its ``allowed-failures``); the local cluster this
  module starts uses the local rule (:data:`~quantize.executors.MAX_WORKER_DEATHS`).
* :meth:`DaskExecutor.map_reduce` sums the parts on the cluster by a tree
  of merge tasks (:data:`FAN_IN` parts each): the client only receives the
  small outcome of each task and the one total.
* Tasks run in the client's working folder and check first that their
  worker sees the inputs and the output folder (see :meth:`DaskExecutor.share`),
  and the task's own input (a task's ``source`` attribute, when it has one).
* A cluster left with no worker for :data:`WORKER_WAIT` seconds ends the
  run with :class:`ClusterError` instead of waiting for ever.
* Ctrl-C cancels every task not started and lets the running ones end
  (for up to :data:`STOP_WAIT` seconds); SIGTERM, or a second Ctrl-C, ends
  the run at once.  Either way the run is then halted on every worker
  (:func:`quantize.commit.halt`): a task running there, which Ctrl-C
  cannot interrupt, places no file any more, a commit under way ends, and
  the client waits (up to :data:`HALT_WAIT` seconds) until no task of the
  run has a file on the disk before it lets go of the cluster.  So every
  image ends with all of its outputs or none, and none is written after
  the command returned.  Further Ctrl-C and SIGTERM are held until the halt
  and the close are done, then acted on.  The workers of a local cluster
  ignore Ctrl-C (the client stops them) and, on SIGTERM, halt every run
  before they exit; an image still encoded after the halt's wait ends with
  them, and its temporary file is removed (by the client once it closed
  the cluster, or by the worker as it exits).

Importing this module imports ``distributed``; quantize imports it only
for ``--dask``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import queue
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from quantize import commit
from quantize.errors import QuantizeError, Terminated, raise_dropped, take_dropped, terminated
from quantize.executors import (
    EXIT_TERMINATED,
    MAX_WORKER_DEATHS,
    DoneCallback,
    Executor,
    Outcome,
    Reduction,
    Settle,
    death_reason,
)

try:
    import dask
    import distributed
    from distributed.scheduler import KilledWorker
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without the extra
    raise ImportError('--dask needs Dask: pip install "quantize[dask]"') from exc

if TYPE_CHECKING:
    from distributed import Future

__all__ = [
    "CONNECT_TIMEOUT",
    "DEV_LOG_LENGTH",
    "FAN_IN",
    "HALT_WAIT",
    "LOCAL",
    "STOP_WAIT",
    "WATCH_EVERY",
    "WINDOW_PER_THREAD",
    "WORKER_WAIT",
    "ClusterError",
    "DaskExecutor",
    "NotShared",
    "worker_environment",
]

T = TypeVar("T")
R = TypeVar("R", bound=Outcome)
P = TypeVar("P")

#: Seconds to wait for a scheduler before giving up (an unreachable address).
CONNECT_TIMEOUT = 5.0
#: Seconds to wait for a first worker on a scheduler that has none, and
#: for a worker to come back to a cluster that lost them all.
WORKER_WAIT = 60.0
#: Seconds without a task ending after which a run checks the cluster still has workers.
WATCH_EVERY = 1.0
#: Tasks on the cluster at a time, per worker thread: enough that no worker
#: waits for the client, few enough that the client holds little.
WINDOW_PER_THREAD = 3
#: Parts summed by one merge task of :meth:`DaskExecutor.map_reduce`.
FAN_IN = 8
#: Seconds an interrupted run waits for the tasks running on workers to end.
STOP_WAIT = 30.0
#: Seconds a stopped run waits for the workers to end the writes under way
#: (a commit takes milliseconds; a temporary file is removed at the next one).
HALT_WAIT = 10.0
#: Entries in each of Dask's developer logs (recent messages, transitions,
#: events; its default is 1000) in the client and the local cluster this
#: module starts: filled by the first thousand tasks, they made up most of the
#: client's memory, and quantize reads none of them.
DEV_LOG_LENGTH = 50
#: What ``--dask`` takes to start a cluster on this machine.
LOCAL = "local"


class _SyncCancelRace(logging.Filter):
    """Drops the traceback distributed's ``sync`` logs when Ctrl-C or SIGTERM
    lands before its future exists: its cancel callback then raises
    NameError on the event loop (a distributed bug; the run stops cleanly
    all the same), and the command must not print a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        tb = exc.__traceback__ if isinstance(exc, NameError) else None
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is None:
            return True
        code = tb.tb_frame.f_code
        return not (code.co_name == "cancel" and code.co_filename.endswith("distributed/utils.py"))


logging.getLogger("tornado.application").addFilter(_SyncCancelRace())


class _AbandonedGather(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" traceback for
    distributed's internal ``AllExit``: when Ctrl-C or SIGTERM ends a wait
    for a result, the client's gather is abandoned and its inner task ends
    on that signal with nobody to read it (the run stops cleanly all the
    same), and the command must not print a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        kind = type(exc)
        return not (kind.__name__ == "AllExit" and kind.__module__ == "distributed.client")


logging.getLogger("asyncio").addFilter(_AbandonedGather())


class ClusterError(QuantizeError):
    """The cluster cannot be reached or started (a one-line reason)."""


class NotShared(Exception):
    """A worker does not see a path the batch reads or writes under.

    ``args[1]``, when given, is a task's input: the client reports it as a
    file that is gone when the client does not see it either.
    """


@dataclass(frozen=True)
class _Shared:
    """The client's working folder and the paths every worker must see."""

    cwd: str | None
    paths: tuple[str, ...]


#: Per worker process: the _Shared values already checked there.
_seen: set[_Shared] = set()


def _enter(shared: _Shared) -> None:
    """Run in the client's folder; raise NotShared when a path is not visible here."""
    if shared.cwd is not None and _cwd() != shared.cwd:
        # Relative paths name files under the client's folder, wherever the worker started.
        try:
            os.chdir(shared.cwd)
        except OSError:
            raise NotShared(_not_shared(shared.cwd)) from None
    if shared in _seen:
        return
    for path in shared.paths:
        if not os.path.exists(path):
            raise NotShared(_not_shared(path))
    _seen.add(shared)


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:
        return None  # removed meanwhile


def _not_shared(path: str) -> str:
    return (
        f"the Dask worker {_worker_name()} cannot see {path} "
        "(inputs and outputs must be on a file system every worker shares, at the same path)"
    )


def _unseen(exc: NotShared) -> str:
    """The reason of a task whose worker does not see a path: its input, gone here too, says so."""
    if len(exc.args) > 1 and not os.path.lexists(exc.args[1]):
        return "no such file"  # as in a local run: it went away meanwhile
    return str(exc.args[0])


def _worker_name() -> str:
    try:
        return str(distributed.get_worker().address)
    except ValueError:
        return f"on {platform.node()}"


def _remote(fn: Callable[[T], R], shared: _Shared | None, task: T, run: str = "") -> R:
    """A task (of run ``run``, see :meth:`DaskExecutor.halt`) as it runs on a worker."""
    if shared is not None:
        _enter(shared)
        source = getattr(task, "source", None)
        # A worker that sees the folder but not the file says which worker it is.
        if isinstance(source, str | os.PathLike) and not os.path.lexists(source):
            raise NotShared(_not_shared("this file"), os.fspath(source))
    with commit.task_of(run):
        return fn(task)


Temps = list[tuple[str, commit.FileId]]


async def _halt(runs: list[str], timeout: float) -> Temps:
    """On a worker: stop the writes of ``runs``; the temporary files still written after it."""
    return await asyncio.to_thread(_halted_temps, runs, timeout)


def _halted_temps(runs: list[str], timeout: float) -> Temps:
    return [] if commit.halt(runs, timeout) else commit.unfinished_temps(runs)


def _ask_halt(client: distributed.Client, runs: list[str], unfinished: Temps) -> None:
    """Halt ``runs`` on every worker of ``client``'s cluster (see :meth:`DaskExecutor.halt`).

    The temporary files tasks still wrote after :data:`HALT_WAIT` go to ``unfinished``.
    """
    with suppress(Exception):  # a cluster gone has nothing left running
        replies = client.run(_halt, runs, HALT_WAIT, on_error="ignore")
        unfinished.extend(temp for temps in replies.values() for temp in temps)


class _WorkerSignals(distributed.WorkerPlugin):
    """Signal handlers of the worker processes of a local cluster this module starts.

    A terminal's Ctrl-C reaches them with the command: it is the client's to
    act on (an interrupt of a worker's event loop kills it with a
    traceback).  SIGTERM (the whole process group stopped) halts every run
    here, waits for the writes under way, and then ends the worker as SIGTERM does.
    A worker that closes (its cluster closes) halts every run here too, and
    removes the temporary files of the tasks still writing.
    """

    def setup(self, worker: distributed.Worker) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, _worker_sigterm)

    def teardown(self, worker: distributed.Worker) -> None:
        # The process ends with the tasks it still runs.  The client removes
        # the temporary files a halt reported, but a reply that came after
        # it stopped waiting (HALT_WAIT and the connection's timeout), or
        # never, reported nothing: without this they stayed until a later
        # run found them stale.  A commit under way when its temporary file
        # goes undoes itself, so the image still has all or none of its files.
        commit.halt(None, 0)
        commit.remove_temps(commit.unfinished_temps(None))


def _worker_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, _ignore)  # one is enough: it ends the worker
    commit.halt(None, 0)  # from now on, no task here begins a file
    # The wait runs beside the event loop, which goes on answering the client.
    threading.Thread(target=_end_worker, name="quantize-sigterm", daemon=True).start()


def _end_worker() -> None:
    """End this worker once no task of any run has a file on the disk (or HALT_WAIT passed)."""
    if not commit.halt(None, HALT_WAIT):
        # A task still writes an image (a long encode): it ends with this
        # process, before it could remove its temporary file.
        commit.remove_temps(commit.unfinished_temps(None))
    os._exit(EXIT_TERMINATED)


def _ignore(signum: int, frame: object) -> None:
    """A handler that drops the signal (not SIG_IGN, which child processes would inherit)."""


def _light(split: Callable[[R], tuple[R, P | None]], outcome: R) -> tuple[R, bool]:
    """On the worker: the outcome the client needs, and whether it has a part to sum."""
    light, part = split(outcome)
    return light, part is not None


def _merge(reduction: Reduction[R, P], outcomes: Sequence[R], parts: Sequence[P]) -> P | None:
    """On a worker: the sum of the parts of ``outcomes`` and of ``parts``."""
    merger = reduction.merger()
    added = False
    for outcome in outcomes:
        part = reduction.split(outcome)[1]
        if part is not None:
            merger.add(part)
            added = True
    for part in parts:
        merger.add(part)
        added = True
    return merger.result() if added else None


class DaskExecutor(Executor):
    """Runs batch tasks on a Dask cluster.

    Parameters
    ----------
    cluster : distributed.Client or str
        A connected client (left open by :meth:`close`), a scheduler address
        such as ``tcp://scheduler:8786``, or ``"local"`` for a
        ``LocalCluster`` on this machine (127.0.0.1) with ``workers`` worker
        processes of one thread each.
    workers : int, optional
        Worker processes of a local cluster; default ``os.cpu_count()``.
    connect_timeout : float
        Seconds to wait for a scheduler address.

    Raises
    ------
    ClusterError
        The scheduler cannot be reached in time, or the local cluster
        cannot start.

    Examples
    --------
    >>> from quantize.batch import BatchOptions, run_batch
    >>> with DaskExecutor("tcp://scheduler:8786") as cluster:  # doctest: +SKIP
    ...     result = run_batch(["photos/"], BatchOptions(output="out/"), executor=cluster)
    """

    def __init__(
        self,
        cluster: distributed.Client | str,
        *,
        workers: int | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self._cluster: Any = None
        self._owned = not isinstance(cluster, distributed.Client)
        self._shared: _Shared | None = None
        #: Runs whose tasks may still write on a worker (begun, and not ended or halted).
        self.writing: set[str] = set()
        #: Temporary files tasks of halted runs still wrote when the halt gave up waiting.
        self.unfinished: Temps = []
        if isinstance(cluster, distributed.Client):
            self.client = cluster
        elif cluster == LOCAL:
            self.client = self._start_local(workers or os.cpu_count() or 1)
        else:
            self.client = _connect(cluster, connect_timeout)
        self.workers = max(1, sum(self.client.nthreads().values()))

    def _start_local(self, workers: int) -> distributed.Client:
        # The scheduler and the nannies run in this process, so their settings are
        # ours to choose: a task is blamed (and failed) for worker deaths as in a
        # local run, and only the task a worker runs is blamed, not one queued
        # behind it; the workers run quantize as fast as local ones.
        settings = {
            "distributed.scheduler.allowed-failures": MAX_WORKER_DEATHS - 1,
            "distributed.scheduler.worker-saturation": 1.0,
            "distributed.nanny.pre-spawn-environ": worker_environment(),
            # Its sampling thread takes the interpreter lock from the tasks all along.
            "distributed.worker.profile.enabled": False,
            "distributed.admin.low-level-log-length": DEV_LOG_LENGTH,
        }
        try:
            with dask.config.set(settings):
                self._cluster = distributed.LocalCluster(
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    # Its HTTP server (health, metrics) starts all the same, on
                    # port 8787 of every interface unless told: busy, it warned.
                    scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                    silence_logs=logging.CRITICAL,
                )
                # Held by the executor at once, so that close() releases it
                # should the plugin fail to register.
                self.client = distributed.Client(self._cluster)
            self.client.register_plugin(_WorkerSignals(), name="quantize-signals")
            return self.client
        except Exception as exc:
            self.close()
            raise ClusterError(f"cannot start a local Dask cluster: {_one_line(exc)}") from exc

    @property
    def shared(self) -> _Shared | None:
        """What :meth:`share` noted: checked on the worker before each task."""
        return self._shared

    def threads(self) -> int:
        """Worker threads on the cluster now, waiting a while for a first worker.

        The wait ticks every :data:`WATCH_EVERY` seconds, where a stop request
        a finalizer dropped is raised (:func:`quantize.errors.raise_dropped`).

        Raises
        ------
        ClusterError
            No worker joined within :data:`WORKER_WAIT` seconds.
        """
        deadline = time.monotonic() + WORKER_WAIT
        while (threads := sum(self.client.nthreads().values())) == 0:
            raise_dropped()
            left = deadline - time.monotonic()
            if left <= 0:
                address = self.client.scheduler.address if self.client.scheduler else "?"
                raise ClusterError(
                    f"the Dask scheduler at {address} has no workers "
                    f"(none joined within {WORKER_WAIT:g} s)"
                )
            with suppress(TimeoutError):
                self.client.wait_for_workers(1, timeout=min(WATCH_EVERY, left))
        return threads

    def share(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        """Check, before each task on a worker, that the worker sees ``paths``.

        For a path that does not exist yet (an output folder), its deepest
        existing parent is checked.  With a relative path the tasks also run
        in this process's working folder, which the workers must see too.
        """
        seen = [_existing(Path(p)) for p in paths]
        cwd = os.getcwd() if any(not Path(p).is_absolute() for p in paths) else None
        self._shared = _Shared(cwd, tuple(dict.fromkeys(str(p) for p in seen)))

    def run(
        self,
        tasks: Iterable[T],
        fn: Callable[[T], R],
        on_done: DoneCallback[R],
        settle: Settle[T, R],
    ) -> bool:
        return _Run(self, tasks, fn, on_done, settle, None).go()

    def map_reduce(
        self,
        tasks: Iterable[T],
        fn: Callable[[T], R],
        on_done: DoneCallback[R],
        settle: Settle[T, R],
        reduction: Reduction[R, P],
    ) -> tuple[bool, P | None]:
        """As :meth:`Executor.map_reduce`, summing the parts on the cluster.

        Each task's outcome stays on its worker; a small task there sends the
        client the outcome without its part.  Parts are summed by merge tasks
        of :data:`FAN_IN` parts (then sums of sums), so the client never holds
        more than the one total it receives at the end.
        """
        run: _Run[T, R, P] = _Run(self, tasks, fn, on_done, settle, reduction)
        if run.go():
            return True, None
        return False, run.total()

    def halt(self) -> None:
        """Stop the writes of the runs not ended on every worker; wait for those under way.

        Bounded by :data:`HALT_WAIT` (and the connection's timeout), during
        which Ctrl-C and SIGTERM are held, and acted on once it returns: cut
        short, it would let the cluster go while a worker is between two
        files of an image.
        """
        client = getattr(self, "client", None)
        with commit.signals_deferred():
            runs, self.writing = sorted(self.writing), set()
            if not runs or client is None:
                return
            # Client.run has no deadline of its own: a worker that does not
            # answer must not keep the command, so the call runs on a thread.
            asking = threading.Thread(
                target=_ask_halt, args=(client, runs, self.unfinished), daemon=True
            )
            asking.start()
            asking.join(HALT_WAIT + CONNECT_TIMEOUT)

    def close(self) -> None:
        """Close the connection and the local cluster this executor made (not a given client).

        A run that did not end (interrupted, or stopped by an error) is
        halted first (:meth:`halt`).  Ctrl-C and SIGTERM are held until the
        cluster is released, then acted on (their handlers raise here).
        """
        with commit.signals_deferred():
            self.halt()
            self._close()

    def _close(self) -> None:
        client = getattr(self, "client", None)
        # A cluster that went away meanwhile has nothing left to release.
        if self._owned and client is not None:
            with suppress(Exception):
                client.close(timeout=CONNECT_TIMEOUT)
            self._owned = False
        if self._cluster is not None:
            with suppress(Exception):
                self._cluster.close(timeout=CONNECT_TIMEOUT)
            self._cluster = None
            # Its workers are gone, and with them a task that still wrote an
            # image (an encode longer than HALT_WAIT) and would have removed
            # its temporary file.  Should a worker outlive the close, removing
            # the name is still safe: a task of a halted run begins no commit,
            # and one under way undoes itself when a file is missing.
            commit.remove_temps(self.unfinished)
            self.unfinished = []


def worker_environment() -> dict[str, Any]:
    """The environment Dask's nanny gives its workers, without ``MALLOC_TRIM_THRESHOLD_``.

    Dask sets it to return freed memory to the system early; any setting of
    it also fixes glibc's threshold for serving allocations by ``mmap``, so
    every large numpy array is mapped and faulted in afresh, and quantize
    spends several times as long in the kernel.
    """
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    return environ


def _existing(path: Path) -> Path:
    """``path``, or its deepest parent that exists."""
    while not os.path.lexists(path) and path.parent != path:
        path = path.parent
    return path


def _connect(address: str, timeout: float) -> distributed.Client:
    try:
        _probe(address, timeout)
        # The client's log of its messages to the scheduler is made as it connects.
        with dask.config.set({"distributed.admin.low-level-log-length": DEV_LOG_LENGTH}):
            return distributed.Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} within {timeout:g} s: {_one_line(exc)}"
        ) from exc


#: Seconds the probe of an address waits beyond the connection's own timeout.
_PROBE_MARGIN = 1.0
_NO_ANSWER = "it does not answer as a Dask scheduler"


class _NotAScheduler(Exception):
    """Something answers at the address, but not a Dask scheduler."""


def _probe(address: str, timeout: float) -> None:
    """Ask ``address`` who it is, all within ``timeout`` seconds; raise unless a scheduler.

    ``distributed.Client`` bounds the connection by its timeout but not the
    handshake that follows: a server that accepts connections and is not a
    scheduler (the dashboard's port, say) keeps it waiting for ever, and an
    address it cannot parse leaves a half-made client whose finalizer hangs
    when the program exits.  The probe runs its own event loop in a thread,
    so that it also works where this thread runs one (a notebook).

    Raises
    ------
    Exception
        OSError (refused, timed out), ValueError (not an address), or
        :class:`_NotAScheduler`.
    """
    import asyncio
    import threading

    failure: list[BaseException] = []
    # After connect's own deadline, so that an unreachable address says so.
    deadline = timeout + _PROBE_MARGIN

    def run() -> None:
        try:
            asyncio.run(asyncio.wait_for(_identity(address, timeout), deadline))
        except TimeoutError as exc:
            # Python's own (a deadline here); distributed's say what timed out.
            plain = type(exc) is TimeoutError and not str(exc)
            failure.append(_NotAScheduler(_NO_ANSWER) if plain else exc)
        except BaseException as exc:  # reported in the calling thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="quantize-dask-probe", daemon=True)
    thread.start()
    thread.join(deadline + _PROBE_MARGIN)  # the loop's own deadline comes first
    if thread.is_alive():
        raise _NotAScheduler(_NO_ANSWER)
    if failure:
        raise failure[0]


async def _identity(address: str, timeout: float) -> None:
    from distributed.comm import CommClosedError, connect
    from distributed.security import Security

    args = Security().get_connection_args("client")
    try:
        comm = await connect(address, timeout=timeout, **args)
    except CommClosedError:
        raise _NotAScheduler(_NO_ANSWER) from None  # it hung up on the handshake
    except (OSError, ValueError, TypeError):
        raise  # unreachable, not an address, no TLS settings: their reason says it
    except Exception:
        # Its handshake was not one (read as a frame length, say): another protocol.
        raise _NotAScheduler(_NO_ANSWER) from None
    try:
        await comm.write({"op": "identity", "reply": True})
        reply = await comm.read()
    except Exception:
        raise _NotAScheduler(_NO_ANSWER) from None
    finally:
        comm.abort()
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind != "Scheduler":
        what = f"a Dask {kind}" if isinstance(kind, str) else "something else"
        raise _NotAScheduler(f"it is {what}, not the scheduler")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class _Run(Generic[T, R, P]):
    """One run of tasks on the cluster: the submission window, the outcomes, the merge tree."""

    def __init__(
        self,
        executor: DaskExecutor,
        tasks: Iterable[T],
        fn: Callable[[T], R],
        on_done: DoneCallback[R],
        settle: Settle[T, R],
        reduction: Reduction[R, P] | None,
    ) -> None:
        self.executor = executor
        self.client = executor.client
        self.window = WINDOW_PER_THREAD * executor.threads()
        self.items = enumerate(tasks)
        #: Names this run's tasks on the workers, so that it can be halted there.
        self.name = uuid.uuid4().hex
        executor.writing.add(self.name)
        self.remote = partial(_remote, fn, executor.shared, run=self.name)
        self.on_done, self.settle, self.reduction = on_done, settle, reduction
        #: Every future submitted and not yet reported, with its task.
        self.held: dict[Future[Any], tuple[int, T]] = {}
        #: With a reduction: the future of a task's whole outcome, by its light one.
        self.whole: dict[Future[Any], Future[Any]] = {}
        #: With a reduction: futures not yet merged, by level (0: whole outcomes).
        self.levels: list[list[Future[Any]]] = []
        #: Futures that ended, put there by their done callbacks (in Dask's callback thread).
        self.ended: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        #: Since when the cluster has had no worker (None: it has some).
        self.orphaned: float | None = None

    def go(self) -> bool:
        """Run every task; True when interrupted.

        Raises
        ------
        ClusterError
            The cluster had no worker for :data:`WORKER_WAIT` seconds.
        """
        try:
            self.submit()
            while self.held:
                self.finish(self.wait())
                self.submit()
        except KeyboardInterrupt as exc:
            # This stop acts on every request so far, one a finalizer dropped too.
            take_dropped()
            # A signal held while the run halted is raised once it is halted:
            # this stop is the one it asks for (SIGTERM's handler has noted it).
            with suppress(KeyboardInterrupt):
                # SIGTERM asks for an end, not for the images under way.
                self.stop(wait=not (isinstance(exc, Terminated) or terminated()))
            return True
        except ClusterError:
            self.cancel(list(self.held))
            raise
        self.executor.writing.discard(self.name)
        return False

    def wait(self) -> list[Future[Any]]:
        """The submitted futures that ended, waiting for one; raise when no worker is left.

        At each tick a stop request a finalizer dropped is raised
        (:func:`quantize.errors.raise_dropped`): ending this wait, it stops the run.
        """
        while True:
            raise_dropped()
            try:
                ended = [self.ended.get(timeout=WATCH_EVERY)]
            except queue.Empty:
                self.watch()
                continue
            with suppress(queue.Empty):
                while True:
                    ended.append(self.ended.get_nowait())
            return [future for future in ended if future in self.held]

    def watch(self) -> None:
        """Raise ClusterError when the cluster has had no worker for :data:`WORKER_WAIT` s.

        A worker that dies is replaced (a nanny restarts it); a cluster whose
        workers are all gone for good would leave the run waiting for ever.
        """
        try:
            workers = len(self.client.nthreads())
        except Exception:
            workers = 0  # the scheduler cannot be asked: no worker of it can be reached either
        if workers:
            self.orphaned = None
            return
        now = time.monotonic()
        if self.orphaned is None:
            self.orphaned = now
        elif now - self.orphaned >= WORKER_WAIT:
            address = self.client.scheduler.address if self.client.scheduler else "?"
            raise ClusterError(
                f"the Dask scheduler at {address} has had no worker for {WORKER_WAIT:g} s "
                "(every worker left or died); the images not reported were not processed"
            )

    def submit(self) -> None:
        """Submit tasks until the window is full or none is left."""
        while len(self.held) < self.window:
            item = next(self.items, None)
            if item is None:
                return
            future: Future[Any] = self.client.submit(self.remote, item[1], pure=False)
            if self.reduction is not None:
                # The outcome stays on the worker; the client gets it without its part.
                light = self.client.submit(_light, self.reduction.split, future, pure=False)
                self.whole[light] = future
                future = light
            self.held[future] = item
            future.add_done_callback(self.ended.put)

    def finish(self, futures: list[Future[Any]]) -> None:
        """Report the outcomes of finished futures (and merge their parts), in input order."""
        for future in sorted(futures, key=lambda f: self.held[f][0]):
            index, task = self.held[future]
            # Still held while its result comes: a stop then reports it.
            outcome, has_part = self.outcome(future, task)
            del self.held[future]
            whole = self.whole.pop(future, None)
            if whole is not None and has_part:
                self.merge(whole, 0)
            self.on_done(index, outcome)

    def result(self, future: Future[Any]) -> Any:
        """A future's result, checking while it waits that the cluster still has workers.

        A result held by a worker that died is computed again, which never
        happens on a cluster left with no worker.
        """
        while True:
            try:
                return future.result(timeout=WATCH_EVERY)
            except TimeoutError:
                if future.status == "error":
                    raise  # the task's own TimeoutError
                raise_dropped()
                self.watch()

    def outcome(self, future: Future[Any], task: T) -> tuple[R, bool]:
        try:
            value = self.result(future)
        except ClusterError:
            raise
        except KilledWorker as exc:
            return self.settle(task, "failed", death_reason(exc.allowed_failures + 1)), False
        except NotShared as exc:
            return self.settle(task, "failed", _unseen(exc)), False
        except Exception as exc:
            reason = f"failed on the Dask cluster: {type(exc).__name__}: {_one_line(exc)}"
            return self.settle(task, "failed", reason), False
        if self.reduction is not None:
            return value
        return value, False

    def merge(self, future: Future[Any], level: int) -> None:
        """Add a whole outcome (level 0) or a sum to the tree; merge full groups on the cluster."""
        assert self.reduction is not None
        while len(self.levels) <= level:
            self.levels.append([])
        self.levels[level].append(future)
        if len(self.levels[level]) < FAN_IN:
            return
        group, self.levels[level] = self.levels[level], []
        outcomes, parts = (group, []) if level == 0 else ([], group)
        # Ahead of queued tasks: a merge frees the memory of the outcomes it sums.
        merged = self.client.submit(_merge, self.reduction, outcomes, parts, pure=False, priority=1)
        self.merge(merged, level + 1)

    def total(self) -> P | None:
        """The sum of every part: the last merge on the cluster, received here."""
        assert self.reduction is not None
        outcomes = self.levels[0] if self.levels else []
        parts = [future for level in self.levels[1:] for future in level]
        if not outcomes and not parts:
            return None
        final = self.client.submit(_merge, self.reduction, outcomes, parts, pure=False)
        try:
            return self.result(final)
        except ClusterError:
            raise
        except Exception as exc:
            raise ClusterError(
                f"summing the color tables on the Dask cluster failed: {_one_line(exc)}"
            ) from exc
        finally:
            self.levels = []

    def stop(self, wait: bool = True) -> None:
        """Cancel what has not started; report what ended or still ends in a short while.

        A task running on a worker cannot be interrupted: with ``wait`` it is
        left to end (for up to :data:`STOP_WAIT` seconds, or until a second
        Ctrl-C) so that it is reported.  Then the run is halted on the workers
        (:meth:`DaskExecutor.halt`): whatever still runs writes nothing more,
        and no image is left between two files when the cluster goes.
        """
        try:
            if wait:
                self.wait_running()
        except KeyboardInterrupt:
            pass  # a second Ctrl-C: the halt below, now
        finally:
            # Cancelled first: a worker started after the halt would not know of it.
            self.cancel(list(self.held))
            self.executor.halt()

    def wait_running(self) -> None:
        """Cancel the tasks not started; report the running ones as they end, for a while."""
        try:
            on_workers = {key for keys in self.client.processing().values() for key in keys}
        except Exception:
            on_workers = set()
        ending = []
        for future in self.held:
            whole = self.whole.get(future)
            keys = {future.key} if whole is None else {future.key, whole.key}
            if future.status == "finished" or keys & on_workers:
                ending.append(future)
        self.cancel([f for f in self.held if f not in ending])
        # Ended already (taken from the queue before the stop), or to come
        # through it; a stop request a finalizer dropped is raised at a tick.
        self.finish([future for future in ending if future.done()])
        left = {future for future in ending if future in self.held}
        deadline = time.monotonic() + STOP_WAIT
        while left and (remaining := deadline - time.monotonic()) > 0:
            raise_dropped()
            try:
                future = self.ended.get(timeout=min(WATCH_EVERY, remaining))
            except queue.Empty:
                continue
            if future in left:
                left.discard(future)
                self.finish([future])

    def cancel(self, futures: list[Future[Any]]) -> None:
        extra = [self.whole[f] for f in futures if f in self.whole]
        extra += [f for level in self.levels for f in level]
        with suppress(Exception):  # the cluster is gone: nothing runs there any more
            self.client.cancel(futures + extra)
