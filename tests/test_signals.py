"""Signals and dying workers: real processes, real process groups."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from quantize import executors
from quantize.batch import ImageResult, Status
from tests.helpers import ROOT, SAMPLES

linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")


def _children(pid: int) -> list[int]:
    """Pids of the living child processes of ``pid`` (from /proc)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            kids.append(int(stat.parent.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pids: list[int], timeout: float = 20.0) -> list[int]:
    """The pids still alive after waiting up to ``timeout`` for them to end."""
    import time

    end = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.05)
    return [p for p in pids if _alive(p)]


#: Images in the test folder.
COUNT = 10


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Photo crops (only read by the tests): each takes a worker a noticeable moment."""
    root = tmp_path_factory.mktemp("signals") / "in"
    root.mkdir()
    with Image.open(SAMPLES / "china.jpg") as photo:
        for i in range(COUNT):
            photo.crop((i, i, 320 + i, 240 + i)).save(root / f"p{i:02d}.png", compress_level=1)
    return root


def _start(folder: Path, out: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "quantize", str(folder), "-o", str(out), "-j", "2", "-k", "48"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def _busy_workers(proc: subprocess.Popen[str]) -> list[int]:
    """Wait until one image is done, so that both workers are busy; their pids."""
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert "PSNR" in first, first
    workers = _children(proc.pid)
    assert len(workers) == 2, workers
    return workers


def _finish(proc: subprocess.Popen[str]) -> str:
    """The rest of the run's stderr once it and every process holding the pipe ended."""
    try:
        return proc.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        pytest.fail("the run, or a worker holding its stderr, is still running")


def _check_whole_images(out: Path, killed: int | None = None) -> set[str]:
    """No temporary file is left and every image has its PNG and its report.

    With ``killed``, the pid of a worker killed with SIGKILL: the temporary
    files of the one image it was writing may be left (named with its pid:
    a later run removes them).
    """
    files = sorted(p.name for p in out.iterdir()) if out.exists() else []
    temps = [f for f in files if f.startswith(".") or f.endswith(".tmp")]
    if killed is not None:
        assert all(t.startswith(f".quantize-{killed}-") for t in temps), temps
    else:
        assert not temps, files
    files = [f for f in files if f not in temps]
    pngs = {f[:-4] for f in files if f.endswith(".png")}
    assert pngs == {f[:-5] for f in files if f.endswith(".json")}
    for stem in pngs:
        with Image.open(out / f"{stem}.png") as img:
            img.load()
    return pngs


@pytest.fixture
def reap() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; their groups are killed if the test fails midway."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        # The group outlives its leader when workers are left behind.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@linux_only
def test_sigterm_to_the_parent_stops_the_workers_and_exits_143(
    folder: Path, tmp_path: Path, reap: list[subprocess.Popen[str]]
) -> None:
    out = tmp_path / "out"
    proc = _start(folder, out)
    reap.append(proc)
    workers = _busy_workers(proc)
    proc.send_signal(signal.SIGTERM)  # the parent only, not its process group
    rest = _finish(proc)
    assert proc.returncode == 143, rest
    assert "quantize: terminated" in rest
    assert " not done in " in rest
    assert "Traceback" not in rest and "failed:" not in rest
    assert _wait_gone(workers) == []
    assert 1 <= len(_check_whole_images(out)) < COUNT


@linux_only
def test_sigterm_to_the_process_group_stops_everything_cleanly(
    folder: Path, tmp_path: Path, reap: list[subprocess.Popen[str]]
) -> None:
    out = tmp_path / "out"
    proc = _start(folder, out)
    reap.append(proc)
    workers = _busy_workers(proc)
    os.killpg(proc.pid, signal.SIGTERM)  # as systemd or `timeout` do
    rest = _finish(proc)
    assert proc.returncode == 143, rest
    assert "Traceback" not in rest
    assert "died" not in rest  # the images being worked on are not done, not failed
    assert _wait_gone(workers) == []
    _check_whole_images(out)


@linux_only
def test_workers_exit_when_the_parent_is_killed(
    folder: Path, tmp_path: Path, reap: list[subprocess.Popen[str]]
) -> None:
    out = tmp_path / "out"
    proc = _start(folder, out)
    reap.append(proc)
    workers = _busy_workers(proc)
    proc.kill()  # no chance to clean up: the workers must notice by themselves
    proc.wait(timeout=60)
    _finish(proc)  # the workers hold the pipe open until they end
    assert _wait_gone(workers) == []
    _check_whole_images(out)  # they removed their unfinished outputs on the way out


@linux_only
def test_a_killed_worker_fails_at_most_its_own_image(
    folder: Path, tmp_path: Path, reap: list[subprocess.Popen[str]]
) -> None:
    out = tmp_path / "out"
    proc = _start(folder, out)
    reap.append(proc)
    workers = _busy_workers(proc)
    os.kill(workers[0], signal.SIGKILL)
    rest = _finish(proc)
    code = proc.returncode
    failed = [line for line in rest.splitlines() if line.startswith("quantize: error:")]
    assert len(failed) <= 1, rest
    assert code == (1 if failed else 0), rest
    written = _check_whole_images(out, killed=workers[0])
    assert len(written) == COUNT - len(failed)
    assert f"{COUNT - len(failed)} written" in rest
    assert _wait_gone(workers[1:] + _children(proc.pid)) == []


# --------------------------------------------------------------------------- #
# The pool's bookkeeping, with tasks that kill their worker on purpose
# --------------------------------------------------------------------------- #


def _killer(task: tuple[int, str], marker_dir: str) -> ImageResult:
    """Task ``(n, how)``: "always" kills its worker; "once" only on its first try."""
    number, how = task
    marker = Path(marker_dir) / f"{number}.tried"
    if how == "always" or (how == "once" and not marker.exists()):
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return ImageResult(Path(f"{number}.png"), "written")


def _settle(task: tuple[int, str], status: Status, reason: str | None) -> ImageResult:
    return ImageResult(Path(f"{task[0]}.png"), status, reason=reason)


def _run(tasks: list[tuple[int, str]], tmp_path: Path) -> dict[int, list[ImageResult]]:
    outcomes: dict[int, list[ImageResult]] = {}

    def on_done(index: int, result: ImageResult) -> None:
        outcomes.setdefault(index, []).append(result)

    killer = partial(_killer, marker_dir=str(tmp_path))
    interrupted = executors.LocalProcesses(2).run(tasks, killer, on_done, _settle)
    assert not interrupted
    return outcomes


def test_a_task_that_kills_its_worker_twice_fails_alone(tmp_path: Path) -> None:
    tasks = [(n, "always" if n == 3 else "fine") for n in range(8)]
    outcomes = _run(tasks, tmp_path)
    assert sorted(outcomes) == list(range(8))
    assert all(len(results) == 1 for results in outcomes.values())  # each reported once
    statuses = {index: results[0].status for index, results in outcomes.items()}
    assert statuses == {n: "failed" if n == 3 else "written" for n in range(8)}
    assert outcomes[3][0].reason is not None and "died 2 times" in outcomes[3][0].reason


def test_a_task_whose_worker_was_killed_once_is_retried(tmp_path: Path) -> None:
    tasks = [(n, "once" if n in (1, 5) else "fine") for n in range(8)]
    outcomes = _run(tasks, tmp_path)
    assert sorted(outcomes) == list(range(8))
    assert all(len(r) == 1 and r[0].status == "written" for r in outcomes.values())


def test_without_prctl_a_thread_notices_that_the_parent_died() -> None:
    """The fallback outside Linux: re-parenting is noticed and SIGTERM sent to the main thread."""
    script = """
import signal, sys, threading, time
from quantize import executors

def on_term(signum, frame):
    print("SIGTERM in the main thread:", threading.current_thread() is threading.main_thread())
    sys.exit(0)

signal.signal(signal.SIGTERM, on_term)
sys.platform = "darwin"  # no prctl: the watching thread is the only way
executors._parent_pid = -1  # a parent that is already gone
executors._die_with_parent()
time.sleep(60)
print("never noticed")
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, "SIGTERM in the main thread: True\n"), done.stderr


def test_an_interrupt_as_a_temporary_file_is_created_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C arrives the moment the file exists, before the call that made it returns."""
    from quantize.encode import bytes_writer, write_files

    real_open = os.open

    def open_then_signal(file: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        fd = real_open(file, flags, *args, **kwargs)
        if str(file).endswith(".tmp"):
            os.kill(os.getpid(), signal.SIGINT)  # raises KeyboardInterrupt right here
        return fd

    monkeypatch.setattr(os, "open", open_then_signal)
    with pytest.raises(KeyboardInterrupt):
        write_files([(tmp_path / "a.json", bytes_writer(b"{}"))])
    assert list(tmp_path.iterdir()) == []


def test_a_ctrl_c_while_the_handlers_go_back_leaves_sigterm_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from quantize import commit

    got: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
    real = signal.signal

    def ctrl_c_after_sigint(signum: int, handler: Any) -> Any:
        old = real(signum, handler)
        if signum == signal.SIGINT and handler is signal.default_int_handler:
            monkeypatch.setattr(signal, "signal", real)
            raise KeyboardInterrupt  # as if Ctrl-C came right then
        return old

    try:
        with pytest.raises(KeyboardInterrupt), commit.signals_deferred():
            monkeypatch.setattr(signal, "signal", ctrl_c_after_sigint)
            os.kill(os.getpid(), signal.SIGTERM)  # held until the block ends
        # The held SIGTERM reached its own handler, and so does a later one.
        os.kill(os.getpid(), signal.SIGTERM)
        assert got == [signal.SIGTERM, signal.SIGTERM]
    finally:
        real(signal.SIGTERM, previous)


def test_a_ctrl_c_while_the_holding_handlers_go_in_leaves_each_signal_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from quantize import commit

    real = signal.signal
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}

    def ctrl_c_after_the_first(signum: int, handler: Any) -> Any:
        real(signum, handler)
        monkeypatch.setattr(signal, "signal", real)
        raise KeyboardInterrupt  # as if Ctrl-C came right then

    monkeypatch.setattr(signal, "signal", ctrl_c_after_the_first)
    try:
        with pytest.raises(KeyboardInterrupt), commit.signals_deferred():
            pytest.fail("the block ran")  # pragma: no cover
        # The first handler set was put back: no later signal is held for ever.
        assert {signum: signal.getsignal(signum) for signum in before} == before
    finally:
        for signum, handler in before.items():
            real(signum, handler)


def _ended(calls: list[str]) -> None:
    calls.append("ended")


def test_a_stop_request_before_the_workers_wait_is_held_still_runs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A second Ctrl-C as the wait for the workers begins, before its signals
    # are held: the wait (the pool's stop or shutdown) was skipped.
    from contextlib import AbstractContextManager

    real = executors.signals_deferred
    calls: list[str] = []

    def interrupted_once(*args: Any) -> AbstractContextManager[None]:
        monkeypatch.setattr(executors, "signals_deferred", real)
        raise KeyboardInterrupt

    class NoPool:
        def end_workers(self, signum: int) -> None: ...

        def stop_killer(self) -> None: ...

    monkeypatch.setattr(executors, "signals_deferred", interrupted_once)
    assert executors._undisturbed(partial(_ended, calls), NoPool())  # type: ignore[arg-type]
    assert calls == ["ended"]


# --------------------------------------------------------------------------- #
# A stop request whose exception a finalizer dropped
# --------------------------------------------------------------------------- #


class _Finalized:
    """Calls a signal's handler in its finalizer, as when the signal comes during
    distributed's ``Future.__del__``: Python drops the handler's exception there."""

    def __init__(self, handler: Callable[[], None]) -> None:
        self.handler = handler

    def __del__(self) -> None:
        self.handler()


_HANDLER_CODE = {
    "sigterm": "cli._on_sigterm(signal.SIGTERM, None)",
    "ctrl-c": "signal.default_int_handler(signal.SIGINT, None)",
}


def dropping(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """``drop(kind)``: a stop request ("sigterm", "ctrl-c") whose exception a finalizer
    drops, with the command's hook and a fresh stop-request state (restored afterwards)."""
    from quantize import cli, errors

    monkeypatch.setattr(sys, "unraisablehook", cli._signals_in_finalizers)
    monkeypatch.setattr(errors, "_terminated", False, raising=False)
    monkeypatch.setattr(errors, "_dropped", None, raising=False)

    def drop(kind: str) -> None:
        handler = {
            "sigterm": partial(cli._on_sigterm, signal.SIGTERM, None),
            "ctrl-c": partial(signal.default_int_handler, signal.SIGINT, None),
        }[kind]
        _Finalized(handler)  # collected at once, here in the main thread

    return drop


def run_dropping_at_first_report(
    monkeypatch: pytest.MonkeyPatch,
    executor: Any,
    kind: str,
    tasks: Iterable[int],
    fn: Callable[[int], Any],
    settle: Callable[[int, Status, str | None], Any],
) -> tuple[bool, list[int]]:
    """Run ``tasks`` on ``executor`` while a stop request ``kind`` that a
    finalizer dropped comes with the first report; whether the run says it
    was interrupted, and the tasks it reported.  Checks what any such run
    must hold: no task reported twice, the request acted on once."""
    from quantize import errors

    drop = dropping(monkeypatch)
    reported: list[int] = []

    def on_done(index: int, outcome: Any) -> None:
        if not reported:
            drop(kind)  # Python drops its exception, and the run goes on here
        reported.append(index)

    interrupted = executor.run(tasks, fn, on_done, settle)
    assert len(set(reported)) == len(reported)
    assert errors.terminated() == (kind == "sigterm")
    assert not errors.take_dropped()  # acted on once: no second stop is left
    return interrupted, reported


def _nap(task: int) -> ImageResult:
    time.sleep(0.05)
    return ImageResult(Path(f"{task}.png"), "written")


def _settle_number(task: int, status: Status, reason: str | None) -> ImageResult:
    return ImageResult(Path(f"{task}.png"), status, reason=reason)


@pytest.mark.parametrize("kind", ["sigterm", "ctrl-c"])
@pytest.mark.parametrize("workers", [1, 2], ids=["serial", "pool"])
def test_a_stop_request_a_finalizer_dropped_stops_the_run_at_its_next_wait(
    monkeypatch: pytest.MonkeyPatch, kind: str, workers: int
) -> None:
    with executors.local_executor(workers) as executor:
        interrupted, reported = run_dropping_at_first_report(
            monkeypatch, executor, kind, range(40), _nap, _settle_number
        )
    assert interrupted
    # Serial: before the next image.  The pool: the tasks that ended with the
    # first one, then those under way at the stop (at most 2 * workers each).
    assert 1 <= len(reported) <= (1 if workers == 1 else 4 * workers)


@pytest.mark.parametrize(
    ("kind", "code", "line"),
    [("sigterm", 143, "quantize: terminated"), ("ctrl-c", 130, "quantize: interrupted")],
)
def test_a_stop_request_a_finalizer_dropped_before_the_run_stops_it_quietly(
    tmp_path: Path, kind: str, code: int, line: str
) -> None:
    # The request's exception raised inside a __del__ (distributed's Future
    # does work there) is dropped by Python: the run stops at its first wait
    # all the same, with no "Exception ignored" text.
    argv = ["quantize", str(ROOT / "sample_images" / "china.jpg"), "-k", "4", "-o", f"{tmp_path}/"]
    script = f"""
import signal, sys
from quantize import cli

class Finalized:
    def __del__(self):
        {_HANDLER_CODE[kind]}  # as if the signal came during the finalizer

from quantize import batch
real = batch.run_batch

def run_batch(*args, **kwargs):
    Finalized()  # dropped at once: its __del__ runs here, before the image
    return real(*args, **kwargs)

batch.run_batch = run_batch
sys.argv = {argv!r}
cli.main()
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == code, proc.stderr
    assert "Exception ignored" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    stop, summary = proc.stderr.rstrip("\n").split("\n")
    assert stop == line
    assert summary.startswith("0 written, 0 skipped, 0 failed, 1 not done in "), summary
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- #
# The -j pool's killer of stuck workers
# --------------------------------------------------------------------------- #


class _Worker:
    """A worker process as the killer sees it: alive until killed."""

    def __init__(self) -> None:
        self.exitcode: int | None = None

    def kill(self) -> None:
        self.exitcode = -signal.SIGKILL


def test_a_worker_moving_files_when_the_killer_looks_is_looked_at_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # It held its guard (moving an image's files) when the killer looked:
    # skipped then, killed once its move is done if it is still stuck.
    import multiprocessing

    monkeypatch.setattr(executors, "KILL_AFTER", 0.05)
    pool = executors._Pool.__new__(executors._Pool)
    pool.guards = [multiprocessing.get_context().Lock()]
    pool.pids = [1234]
    pool.killer = None
    worker = _Worker()
    pool.guards[0].acquire()
    pool._arm_killer({1234: worker})
    time.sleep(0.3)
    assert worker.exitcode is None  # not killed in the middle of its move
    pool.guards[0].release()
    deadline = time.monotonic() + 10
    while worker.exitcode is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert worker.exitcode == -signal.SIGKILL
    pool.stop_killer()
    assert pool.killer is None
