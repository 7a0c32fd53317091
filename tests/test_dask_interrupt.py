"""Interrupting ``quantize --dask local`` (and ``-j``) while a worker is in the middle of a commit.

The command runs as a user runs it: a real process, with a real
``LocalCluster`` of 2 worker processes, sent Ctrl-C twice (to its whole
process group, as a terminal does) or SIGTERM.  A hook planted in every
process of the run (a ``sitecustomize`` module on ``PYTHONPATH``) holds one
worker inside its commit, after the first of an image's two files is in
place and before the second, until that worker is told to stop writing:
the interrupt lands in that window every time, and the commit ends only
after the run was stopped.  Whatever the run did, every image ends with
all of its outputs or none, and no temporary file is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from quantize import commit
from quantize.encode import bytes_writer, write_files
from tests.helpers import ROOT, photo_crops

COUNT = 6
#: The file after which the held worker waits, mid-commit (its report comes next).
HELD = "p00-k16.png"
#: Generous: a loaded machine starts a cluster slowly; none of these is waited out on success.
DEADLINE = 120.0

HOOK = """
import os
from pathlib import Path

_control = os.environ.get("QUANTIZE_TEST_HOLD")
if _control:
    import time
    from quantize import commit

    _place = commit._place

    def _wait_for(name, seconds):
        deadline = time.monotonic() + seconds
        while not Path(_control, name).exists() and time.monotonic() < deadline:
            time.sleep(0.01)

    def _held_place(temp, target, *args):
        placed = _place(temp, target, *args)
        if Path(target).name == os.environ["QUANTIZE_TEST_HOLD_AFTER"]:
            Path(_control, "held").write_text(str(os.getpid()))
            # Until this worker is told to stop writing (code without that
            # notion: until long after the run gave up on it).
            halted = getattr(commit, "halted", lambda: False)
            deadline = time.monotonic() + float(os.environ.get("QUANTIZE_TEST_HOLD_SECONDS", 90))
            while not halted() and time.monotonic() < deadline:
                time.sleep(0.01)
            if os.environ.get("QUANTIZE_TEST_HOLD_HALTING"):
                # The client now waits for this commit (its halt, under HALT_WAIT).
                Path(_control, "halting").touch()
                _wait_for("go", 8)
            Path(_control, "released").touch()
        return placed

    commit._place = _held_place

    if os.environ.get("QUANTIZE_TEST_SLOW_WRITE"):
        # One worker writes one temporary file for that long (a long encode).
        _make_temp = commit.make_temp

        def _slow_make_temp(folder, temps):
            fd = _make_temp(folder, temps)
            try:
                os.close(os.open(Path(_control, "claimed"), os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return fd
            Path(_control, "writing").write_text(str(temps[-1]))
            time.sleep(float(os.environ["QUANTIZE_TEST_SLOW_WRITE"]))
            return fd

        commit.make_temp = _slow_make_temp

    if os.environ.get("QUANTIZE_TEST_STUCK"):
        # One worker gets stuck before its first temporary file, deaf to signals
        # as in a long C call (they stay pending: no handler runs).
        import signal

        _make_temp_before = commit.make_temp

        def _stuck_make_temp(folder, temps):
            try:
                os.close(os.open(Path(_control, "claimed-stuck"), os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return _make_temp_before(folder, temps)
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
            Path(_control, "stuck").write_text(str(os.getpid()))
            time.sleep(float(os.environ["QUANTIZE_TEST_STUCK"]))
            return _make_temp_before(folder, temps)

        commit.make_temp = _stuck_make_temp

    if os.environ.get("QUANTIZE_TEST_HALT_WAIT"):
        from quantize import dask_executor

        dask_executor.HALT_WAIT = float(os.environ["QUANTIZE_TEST_HALT_WAIT"])

    if os.environ.get("QUANTIZE_TEST_LATE_HALT") == str(os.getppid()):
        # The command: the workers' replies to its halt come after it gave up on them.
        from quantize import dask_executor

        _ask_halt = dask_executor._ask_halt

        def _late_ask_halt(client, runs, unfinished):
            time.sleep(dask_executor.HALT_WAIT + dask_executor.CONNECT_TIMEOUT + 1)
            _ask_halt(client, runs, unfinished)

        dask_executor._ask_halt = _late_ask_halt

    if os.environ.get("QUANTIZE_TEST_HOLD_CLOSE") == str(os.getppid()):
        # The command itself (its workers are its children): a slow release of the cluster.
        from quantize import dask_executor

        _close = dask_executor.DaskExecutor._close

        def _held_close(self):
            Path(_control, "closing").touch()
            _wait_for("go", 90)
            _close(self)

        dask_executor.DaskExecutor._close = _held_close
"""


def test_a_halted_run_writes_nothing_more_and_its_commit_under_way_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a worker does when the client halts a run (no cluster needed).
    run, other = uuid.uuid4().hex, uuid.uuid4().hex
    placing, go_on = threading.Event(), threading.Event()
    place = commit._place

    def paused_place(temp: Path, target: Path, *args: Any) -> Any:
        placed = place(temp, target, *args)
        if target.name == "a1":
            placing.set()
            go_on.wait(DEADLINE)
        return placed

    monkeypatch.setattr(commit, "_place", paused_place)
    errors: dict[str, BaseException] = {}

    def task(name: str, of: str, files: list[str]) -> None:
        try:
            with commit.task_of(of):
                write_files([(tmp_path / f, bytes_writer(f.encode())) for f in files])
        except BaseException as exc:
            errors[name] = exc

    committing = threading.Thread(target=task, args=("a", run, ["a1", "a2"]))
    committing.start()
    assert placing.wait(DEADLINE)
    drained: list[bool] = []
    halting = threading.Thread(target=lambda: drained.append(commit.halt([run], DEADLINE)))
    halting.start()
    for name, of in (("b", run), ("c", other)):
        task(name, of, [f"{name}1", f"{name}2"])
    halting.join(0.2)
    assert halting.is_alive()  # it cannot end while "a" is between its two files
    go_on.set()
    halting.join(DEADLINE)
    committing.join(DEADLINE)
    assert drained == [True]
    assert list(errors) == ["b"] and isinstance(errors["b"], commit.Halted)
    # "a" ended its commit, "b" (same run, not yet committing) wrote nothing, "c" is another run.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a1", "a2", "c1", "c2"]


def test_the_temporary_files_a_halt_leaves_are_removed_only_while_they_are_the_tasks(
    tmp_path: Path,
) -> None:
    # What a worker reports of a task still writing when its halt gives up,
    # and what the command removes once that worker is gone.
    run = uuid.uuid4().hex
    writing, go_on = threading.Event(), threading.Event()

    def task() -> None:
        with suppress(commit.Halted), commit.task_of(run):
            for _ in range(2):
                os.close(commit.make_temp(tmp_path, []))
            writing.set()
            go_on.wait(DEADLINE)  # a long encode

    thread = threading.Thread(target=task)
    thread.start()
    try:
        assert writing.wait(DEADLINE)
        assert not commit.halt([run], 0.05)
        temps = commit.unfinished_temps([run])
        assert commit.unfinished_temps([uuid.uuid4().hex]) == []
    finally:
        go_on.set()
        thread.join(DEADLINE)
    assert sorted(Path(path).parent for path, _ in temps) == [tmp_path, tmp_path]
    # Another file now has the first name (made since by someone else): it stays.
    (first, _), (second, _) = temps
    (tmp_path / "theirs").write_bytes(b"not the task's")
    os.replace(tmp_path / "theirs", first)
    assert commit.remove_temps(temps) == 1
    assert [p.name for p in tmp_path.iterdir()] == [Path(first).name]
    assert not Path(second).exists()


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    pytest.importorskip("distributed")  # the [dask] extra
    return photo_crops(tmp_path, COUNT, (96, 72))


def test_ctrl_c_again_while_local_workers_end_is_held_until_they_have(tmp_path: Path) -> None:
    # The local -j pool: a worker's commit ends before it acts on Ctrl-C
    # (held here for 5 s); further Ctrl-C while the command waits
    # for it made the command leave half-way, without its summary, and
    # multiprocessing's exit print the interrupt of its wait for the worker.
    photos = photo_crops(tmp_path, COUNT, (96, 72))
    proc, control = _start(tmp_path, photos, dask=False, QUANTIZE_TEST_HOLD_SECONDS="5")
    try:
        _wait_held(proc, control)
        for _ in range(3):
            proc.send_signal(signal.SIGINT)  # `kill -INT`: the command forwards it
            time.sleep(0.3)
    finally:
        text = _end(proc)
    assert proc.returncode == 130, text
    stop, summary = _lines(text, photos)
    assert stop == "quantize: interrupted" and " not done in " in summary, text
    assert (control / "released").exists()
    # Its commit was interrupted as it ended: the worker removed the whole set.
    assert HELD[:-4] not in _whole_or_none(tmp_path / "out")


def test_a_second_ctrl_c_ends_a_local_worker_stuck_in_a_long_call(tmp_path: Path) -> None:
    # The local -j pool: the workers were told to stop, and quantize waits for
    # them with further signals held; a worker deaf to them (a long C call)
    # kept it waiting for as long as that call lasted.  A second Ctrl-C now
    # ends the workers: SIGTERM, then, for one still there, SIGKILL.
    photos = photo_crops(tmp_path, COUNT, (96, 72))
    proc, control = _start(tmp_path, photos, "", dask=False, QUANTIZE_TEST_STUCK="600")
    try:
        _wait_held(proc, control, "stuck")
        proc.send_signal(signal.SIGINT)  # `kill -INT`: the command forwards it
        time.sleep(1.0)  # a user's pause
        proc.send_signal(signal.SIGINT)
    finally:
        text = _end(proc)
    assert proc.returncode == 130, text
    stop, summary = _lines(text, photos)
    assert stop == "quantize: interrupted" and " not done in " in summary, text
    # The stuck worker ended too: it held the command's stderr, which _end read to its end.
    _whole_or_none(tmp_path / "out")


def _start(
    tmp_path: Path, src: Path, held: str = HELD, dask: bool = True, **hooks: str
) -> tuple[subprocess.Popen[str], Path]:
    hook, control = tmp_path / "hook", tmp_path / "control"
    hook.mkdir()
    control.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(hook), os.environ.get("PYTHONPATH", str(ROOT))]),
        QUANTIZE_TEST_HOLD=str(control),
        QUANTIZE_TEST_HOLD_AFTER=held,
        **hooks,
    )
    out = tmp_path / "out"
    command = [sys.executable, "-m", "quantize", str(src), "-o", str(out), "-k", "16"]
    proc = subprocess.Popen(
        [*command, *(["--dask", "local"] if dask else []), "-j", "2"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's job
    )
    return proc, control


def _wait_held(proc: subprocess.Popen[str], control: Path, what: str = "held") -> None:
    deadline = time.monotonic() + DEADLINE
    while not (control / what).exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            _end(proc)
            pytest.fail(f"the run was never {what}: {proc.communicate()[1]}")
        time.sleep(0.02)


def _end(proc: subprocess.Popen[str]) -> str:
    """What the command printed once it exited (a failure if it hangs)."""
    try:
        return proc.communicate(timeout=DEADLINE)[1]
    finally:
        # Its group: the command, and any worker process it left behind.
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.communicate()


def _whole_or_none(out: Path) -> set[str]:
    """Each image has both of its files or neither; no temporary file is left."""
    names = sorted(p.name for p in out.iterdir())
    assert [n for n in names if n.startswith(".")] == []
    pngs = {n[:-4] for n in names if n.endswith(".png")}
    assert pngs == {n[:-5] for n in names if n.endswith(".json")}, names
    return pngs


@pytest.mark.parametrize(
    ("signum", "times", "group", "code", "line"),
    [
        (signal.SIGINT, 2, True, 130, "quantize: interrupted"),  # Ctrl-C twice at a terminal
        (signal.SIGTERM, 1, False, 143, "quantize: terminated"),  # kill PID
        (signal.SIGTERM, 1, True, 143, "quantize: terminated"),  # a service manager's stop
    ],
    ids=["ctrl-c-twice", "sigterm", "sigterm-to-the-group"],
)
def test_an_interrupt_mid_commit_leaves_every_image_whole_or_absent(
    tmp_path: Path, photos: Path, signum: int, times: int, group: bool, code: int, line: str
) -> None:
    proc, control = _start(tmp_path, photos)
    try:
        _wait_held(proc, control)
        for time_ in range(times):
            if time_:
                # Two signals at once count as one (the second Ctrl-C would then
                # find the first one's wait, up to STOP_WAIT): a user's pause.
                time.sleep(1.0)
            if group:
                os.killpg(proc.pid, signum)
            else:
                proc.send_signal(signum)
    finally:
        text = _end(proc)
    assert proc.returncode == code, text
    # The images' lines, the stop's one line and the summary: no traceback, no warning.
    *images, stop, summary = text.rstrip("\n").split("\n")
    assert all(image.startswith(f"{photos}{os.sep}p") for image in images), text
    assert stop == line and " not done in " in summary, text
    # The held commit ended (it was not killed halfway), and its image is whole.
    assert (control / "released").exists()
    whole = _whole_or_none(tmp_path / "out")
    assert HELD[:-4] in whole
    assert len(whole) < COUNT


def _lines(text: str, photos: Path) -> tuple[str, str]:
    """The stop line and the summary, after one line per image and nothing else."""
    *images, stop, summary = text.rstrip("\n").split("\n")
    assert all(image.startswith(f"{photos}{os.sep}p") for image in images), text
    return stop, summary


def test_a_sigterm_while_the_run_halts_after_ctrl_c_is_acted_on_once_it_is_halted(
    tmp_path: Path, photos: Path
) -> None:
    # The client waits for the held commit (its halt) when SIGTERM comes:
    # it must end the command as SIGTERM does (143), not be dropped (130).
    proc, control = _start(tmp_path, photos, QUANTIZE_TEST_HOLD_HALTING="1")
    try:
        _wait_held(proc, control)
        os.killpg(proc.pid, signal.SIGINT)
        time.sleep(1.0)  # a user's pause (see above)
        os.killpg(proc.pid, signal.SIGINT)
        _wait_held(proc, control, "halting")
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # taken (and held) before the commit ends
        (control / "go").touch()
    finally:
        text = _end(proc)
    assert proc.returncode == 143, text
    stop, summary = _lines(text, photos)
    assert stop == "quantize: terminated" and " not done in " in summary, text
    assert HELD[:-4] in _whole_or_none(tmp_path / "out")


def test_a_sigterm_while_a_finished_run_lets_go_of_its_cluster_is_acted_on_once_it_has(
    tmp_path: Path, photos: Path
) -> None:
    proc, control = _start(tmp_path, photos, "", QUANTIZE_TEST_HOLD_CLOSE=str(os.getpid()))
    try:
        _wait_held(proc, control, "closing")
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        (control / "go").touch()
    finally:
        text = _end(proc)
    assert proc.returncode == 143, text
    stop, summary = _lines(text, photos)
    assert stop == "quantize: terminated", text
    assert summary.startswith(f"{COUNT} written, 0 skipped, 0 failed, 0 not done in "), text
    assert len(_whole_or_none(tmp_path / "out")) == COUNT


@pytest.mark.parametrize(
    ("group", "late"),
    [(False, False), (True, False), (False, True)],
    ids=["sigterm", "sigterm-to-the-group", "halt-reply-too-late"],
)
def test_a_write_that_outlasts_the_halt_leaves_no_temporary_file(
    tmp_path: Path, photos: Path, group: bool, late: bool
) -> None:
    # An image still written when the halt gives up waiting (HALT_WAIT, 1 s
    # here) ends with its worker: the command (or, SIGTERM reaching the
    # worker too, the worker itself) removes the temporary file it had made.
    # With ``late``, the workers' replies (the temporary files still
    # written) reach the command after it stopped waiting for them and let
    # go of the cluster: the worker itself removes that file as the cluster
    # closes.
    hooks = {"QUANTIZE_TEST_SLOW_WRITE": "60", "QUANTIZE_TEST_HALT_WAIT": "1"}
    if late:
        hooks["QUANTIZE_TEST_LATE_HALT"] = str(os.getpid())
    proc, control = _start(tmp_path, photos, "", **hooks)
    try:
        _wait_held(proc, control, "writing")
        temp = Path((control / "writing").read_text())
        assert temp.exists()
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
    finally:
        text = _end(proc)
    assert proc.returncode == 143, text
    stop, _ = _lines(text, photos)
    assert stop == "quantize: terminated", text
    assert not temp.exists()
    _whole_or_none(tmp_path / "out")


def test_an_abandoned_gather_prints_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    # A signal that ends a wait for a result leaves distributed's gather task
    # to end on its internal AllExit; asyncio then logs that nobody read it.
    import asyncio

    pytest.importorskip("distributed")
    from distributed.client import AllExit

    import quantize.dask_executor  # noqa: F401  (installs the filter)

    loop = asyncio.new_event_loop()
    try:
        for exc in (AllExit(), ValueError("kept")):
            context = {"message": "Task exception was never retrieved", "exception": exc}
            loop.call_exception_handler(context)
    finally:
        loop.close()
    logged = [r.exc_info[1] for r in caplog.records if r.name == "asyncio" and r.exc_info]
    assert [type(exc).__name__ for exc in logged] == ["ValueError"]
