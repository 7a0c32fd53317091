"""Batches on a Dask cluster: the same bytes as ``-j 1``, dead workers, interrupts, real services.

One ``LocalCluster`` (2 worker processes) serves the whole module; the last
test starts the command-line services (``dask scheduler``, ``dask worker``)
as a user would.
"""

from __future__ import annotations

import importlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PIL import Image

from quantize import commit
from quantize.batch import BatchOptions, Job, Progress, run_batch
from quantize.executors import Executor, InProcess, Reduction, death_reason
from quantize.vocabulary import Status
from tests.helpers import SAMPLES, gradient_rgb, photo_crops, run_cli
from tests.test_signals import dropping, run_dropping_at_first_report

distributed = pytest.importorskip("distributed")  # the [dask] extra

from quantize.dask_executor import (  # noqa: E402
    CONNECT_TIMEOUT,
    WINDOW_PER_THREAD,
    ClusterError,
    DaskExecutor,
)

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


@pytest.fixture(scope="module")
def cluster() -> Iterator[DaskExecutor]:
    with DaskExecutor("local", workers=2) as executor:
        executor.client.run(importlib.import_module, "quantize.batch")  # warm, like later runs
        yield executor


@pytest.fixture
def executor(cluster: DaskExecutor) -> Iterator[DaskExecutor]:
    """A fresh executor on the shared cluster, which has its two workers."""
    # A nanny whose worker a test killed may give up restarting it on a busy
    # machine; the cluster then drops it, and scaling makes a new one.
    cluster.client.cluster.scale(2)
    cluster.client.wait_for_workers(2, timeout=60)
    with DaskExecutor(cluster.client) as executor:
        yield executor


def _address(executor: DaskExecutor) -> str:
    return str(executor.client.scheduler.address)


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _tree(root: Path, samples: bool = True, tiny: int = 0) -> Path:
    """A folder tree: sample images, gradients in subfolders, a transparent and a broken file."""
    src = root / "in"
    (src / "a" / "deep").mkdir(parents=True)
    (src / "b").mkdir()
    for name in ("china.jpg", "flower.jpg", "sprite.png") if samples else ("sprite.png",):
        (src / name).write_bytes((SAMPLES / name).read_bytes())
    for i in range(3):
        gradient_rgb(48, 32, seed=i).save(src / "a" / f"g{i}.png")
    gradient_rgb(40, 40, seed=9).save(src / "a" / "deep" / "d.webp", lossless=True)
    rgba = gradient_rgb(32, 24, seed=5).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((32, 24)))
    rgba.save(src / "b" / "alpha.png")
    (src / "b" / "broken.png").write_bytes(b"\x89PNG not really")
    for i in range(tiny):
        gradient_rgb(12, 10, seed=100 + i).save(src / "b" / f"t{i:02d}.png")
    return src


def _same_as_local(tmp_path: Path, executor: DaskExecutor, *args: str | Path) -> None:
    """Run the command with -j 1, then on the cluster into the same folder: the same files."""
    out = tmp_path / "out"
    local_code, local_text = run_cli(*args, "-o", out, "-j", "1", "-q")
    local = _files(out)
    out.rename(tmp_path / "local")
    code, text = run_cli(*args, "-o", out, "--dask", _address(executor), "-q")
    assert (code, text) == (local_code, local_text)
    assert _files(out) == local
    assert len(local) > 10


def test_outputs_are_byte_identical_to_one_local_worker(
    tmp_path: Path, executor: DaskExecutor
) -> None:
    src = _tree(tmp_path)
    _same_as_local(tmp_path, executor, src, "-r", "--palette-format", "json,gpl")


def test_a_shared_palette_summed_on_the_cluster_is_identical(
    tmp_path: Path, executor: DaskExecutor
) -> None:
    # More images than one merge task sums: the tables go through a tree of merges.
    src = _tree(tmp_path, samples=False, tiny=12)
    _same_as_local(tmp_path, executor, src, "-r", "--shared-palette", "-k", "12")


@dataclass(frozen=True)
class _Num:
    value: int
    part: int | None = None
    status: Status = "written"


def _number(task: int) -> _Num:
    return _Num(task, part=task * task)


def _settle(task: int, status: Status, reason: str | None) -> _Num:
    return _Num(-1, status=status)


def _split(outcome: _Num) -> tuple[_Num, int | None]:
    return replace(outcome, part=None), outcome.part


class _Sum:
    def __init__(self) -> None:
        self.total = 0

    def add(self, part: int) -> None:
        self.total += part

    def result(self) -> int:
        return self.total


def test_map_reduce_sums_on_the_cluster_and_reports_each_task_once(
    executor: DaskExecutor,
) -> None:
    reduction: Reduction[_Num, int] = Reduction(_Sum, _split)
    results = {}
    for name, where in (("here", InProcess()), ("dask", executor)):
        seen: dict[int, list[_Num]] = {}

        def on_done(index: int, outcome: _Num, seen: dict[int, list[_Num]] = seen) -> None:
            seen.setdefault(index, []).append(outcome)

        interrupted, total = where.map_reduce(range(30), _number, on_done, _settle, reduction)
        assert not interrupted
        assert seen == {i: [_Num(i)] for i in range(30)}  # the parts stayed where they were
        results[name] = total
    assert results == {"here": sum(i * i for i in range(30)), "dask": sum(i * i for i in range(30))}


def test_a_worker_that_cannot_see_the_inputs_fails_each_image_with_a_clear_line(
    tmp_path: Path, executor: DaskExecutor
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    executor.share([gone])
    gone.rmdir()  # as if the workers had not mounted it
    seen: dict[int, _Num] = {}
    reasons: list[str | None] = []

    def settle(task: int, status: Status, reason: str | None) -> _Num:
        reasons.append(reason)
        return _Num(-1, status=status)

    executor.run(range(3), _number, seen.__setitem__, settle)
    assert {o.status for o in seen.values()} == {"failed"} and len(seen) == 3
    assert all(r is not None and f"cannot see {gone} (inputs and outputs" in r for r in reasons)


@dataclass(frozen=True)
class _Input:
    source: Path


def test_a_worker_that_sees_the_folder_but_not_the_file_names_itself(tmp_path: Path) -> None:
    # One machine cannot hide a file from one process: the worker side runs here.
    from quantize.dask_executor import NotShared, _remote, _unseen

    src = tmp_path / "in"
    src.mkdir()
    missing = src / "a.png"
    executor = DaskExecutor.__new__(DaskExecutor)  # share() only: no cluster needed
    executor.share([src])
    ran: list[_Input] = []
    with pytest.raises(NotShared) as caught:
        _remote(ran.append, executor.shared, _Input(missing))
    assert not ran
    missing.write_bytes(b"")  # the client sees it: the worker is named
    reason = _unseen(caught.value)
    assert reason.startswith("the Dask worker on ") and "cannot see this file (inputs and" in reason
    missing.unlink()  # gone here too: reported as a local run reports it
    assert _unseen(caught.value) == "no such file"


@contextmanager
def _own_cluster(
    monkeypatch: pytest.MonkeyPatch, workers: int, worker_wait: float
) -> Iterator[tuple[Any, DaskExecutor]]:
    """An in-process cluster of ``workers`` workers (0: none ever joins) for one
    test, and its executor, which gives up on workers after ``worker_wait``
    seconds and looks at the cluster every 0.1 s."""
    from quantize import dask_executor

    monkeypatch.setattr(dask_executor, "WORKER_WAIT", worker_wait)
    monkeypatch.setattr(dask_executor, "WATCH_EVERY", 0.1)
    with (
        distributed.LocalCluster(
            n_workers=workers, processes=False, dashboard_address=None, silence_logs=50
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
        DaskExecutor(client) as executor,
    ):
        yield cluster, executor


def _slow(task: int) -> _Num:
    time.sleep(0.05)
    return _Num(task)


def test_a_cluster_that_loses_every_worker_ends_the_run_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _own_cluster(monkeypatch, workers=1, worker_wait=0.5) as (cluster, executor):
        seen: list[int] = []

        def on_done(index: int, outcome: _Num) -> None:
            if not seen:
                cluster.scale(0)  # every worker leaves, and none comes back
            seen.append(index)

        failure: list[BaseException] = []

        def go() -> None:
            try:
                executor.run(range(50), _slow, on_done, _settle)
            except BaseException as exc:
                failure.append(exc)

        runner = threading.Thread(target=go, daemon=True)
        runner.start()
        runner.join(60)  # without the watch, the run waits for ever
        assert not runner.is_alive()
        assert len(failure) == 1 and isinstance(failure[0], ClusterError), failure
        assert str(failure[0]).endswith(
            "has had no worker for 0.5 s (every worker left or died); "
            "the images not reported were not processed"
        )
        assert 1 <= len(seen) < 50


@pytest.mark.parametrize("kind", ["sigterm", "ctrl-c"])
def test_a_stop_request_a_finalizer_dropped_ends_the_wait_for_a_first_worker(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    from quantize import errors

    drop = dropping(monkeypatch)
    with _own_cluster(monkeypatch, workers=0, worker_wait=20.0) as (_, executor):
        drop(kind)  # while no worker has joined: before, the wait went on for WORKER_WAIT
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt) as caught:
            executor.threads()
        assert time.monotonic() - start < 10
    assert isinstance(caught.value, errors.Terminated) == (kind == "sigterm")
    assert not errors.take_dropped()


def test_a_cluster_without_workers_is_one_line_after_the_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with (
        _own_cluster(monkeypatch, workers=0, worker_wait=0.5) as (_, executor),
        pytest.raises(ClusterError, match=r"has no workers \(none joined within 0\.5 s\)$"),
    ):
        executor.threads()


@pytest.mark.parametrize("kind", ["sigterm", "ctrl-c"])
def test_a_stop_request_a_finalizer_dropped_stops_the_run_at_its_next_wait(
    executor: DaskExecutor, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    # The command's SIGTERM landing in distributed's Future.__del__: the run
    # went on to its last image (the flaky "assert 8 < 8" of the test below).
    interrupted, reported = run_dropping_at_first_report(
        monkeypatch, executor, kind, range(60), _slow, _settle
    )
    assert interrupted
    # The first batch of ended tasks, and with Ctrl-C the ones running then.
    assert 1 <= len(reported) <= 2 * WINDOW_PER_THREAD * executor.threads()


def _all_but_the_first_run_long(task: int) -> _Num:
    if task:
        time.sleep(8)
    return _Num(task)


def test_a_second_ctrl_c_a_finalizer_dropped_ends_the_wait_for_running_tasks(
    executor: DaskExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C lets the running tasks end (up to STOP_WAIT) unless a second
    # one comes; that one, dropped in a finalizer, must end the wait too.
    drop = dropping(monkeypatch)
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: drop("ctrl-c"))
    reported: list[int] = []

    def on_done(index: int, outcome: _Num) -> None:
        reported.append(index)
        signal.setitimer(signal.ITIMER_REAL, 0.2)  # the second one, in the wait
        raise KeyboardInterrupt  # the first Ctrl-C, as the first task ends

    try:
        assert executor.run(range(10), _all_but_the_first_run_long, on_done, _settle)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # The two tasks running on the workers were not waited for.
    assert reported == [0]


#: Images in the folders of _crops.
COUNT = 8


def _crops(root: Path) -> Path:
    """Photo crops: each takes a worker a noticeable moment."""
    return photo_crops(root, COUNT, (160, 120))


def _whole_images(out: Path, killed: int | None = None) -> set[str]:
    """Every image has its PNG and its report; no temporary file but the killed worker's."""
    names = sorted(p.name for p in out.iterdir())
    temps = [n for n in names if n.startswith(".")]
    assert all(killed is not None and t.startswith(f".quantize-{killed}-") for t in temps), temps
    pngs = {n[:-4] for n in names if n.endswith(".png")}
    assert pngs == {n[:-5] for n in names if n.endswith(".json")}
    return pngs


def test_a_worker_killed_mid_batch_costs_nothing(tmp_path: Path, executor: DaskExecutor) -> None:
    src = _crops(tmp_path)
    killed: list[int] = []

    def kill_a_busy_worker(event: Progress) -> None:
        if event.result is None or killed:
            return
        busy = [a for a, keys in executor.client.processing().items() if keys]
        if not busy:
            return  # between two tasks: the next image will do
        pids = executor.client.run(os.getpid, workers=busy[:1])
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    options = BatchOptions(output=f"{tmp_path / 'out'}/")
    result = run_batch([src], options, kill_a_busy_worker, executor)
    assert killed
    assert sorted(r.source.name for r in result.results) == sorted(p.name for p in src.iterdir())
    # Even an image whose worker died after (or while) committing its
    # outputs is written: its retry adopts them (test_commit_retry.py).
    assert [f.reason for f in result.failures] == []
    assert result.count("written") == COUNT
    assert len(_whole_images(tmp_path / "out", killed[0])) == COUNT


class _DiesOnce(Executor):
    """Runs the tasks on ``inner``; the first attempt at ``victim`` dies after placing ``after``."""

    def __init__(self, inner: DaskExecutor, marker: Path, victim: str, after: str) -> None:
        self.inner, self.workers = inner, inner.workers
        self.wrap = partial(_dies_once, str(marker), victim, after)

    def share(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        self.inner.share(paths)

    def run(self, tasks: Iterable[T], fn: Any, on_done: Any, settle: Any) -> bool:
        return self.inner.run(tasks, partial(self.wrap, fn), on_done, settle)


def _dies_once(marker: str, victim: str, after: str, fn: Any, job: Job) -> Any:
    """On a worker: run the job; the first attempt at ``victim`` dies in its commit."""
    if job.source.name == victim:
        try:
            fh = open(marker, "x")  # noqa: SIM115 - written and closed before the kill
        except FileExistsError:
            pass  # the retry: runs as usual
        else:
            real_place = commit._place

            def place_then_die(temp: Path, target: Path, *args: Any) -> Any:
                placed = real_place(temp, target, *args)
                if target.name == after:
                    with fh:
                        fh.write(f"{os.getpid()} {os.stat(target).st_ino}")
                    os.kill(os.getpid(), signal.SIGKILL)
                return placed

            commit._place = place_then_die  # this worker process dies with it
    return fn(job)


def test_a_worker_killed_in_its_commit_is_written_once_by_the_retry(
    tmp_path: Path, executor: DaskExecutor
) -> None:
    # After the image, before the report: the retry completes the set.  (A
    # worker killed after the whole set: test_commit_retry.py, and above.)
    after = "p03-k16.png"
    src = _crops(tmp_path)
    out = tmp_path / "out"
    marker = tmp_path / "died"
    dies = _DiesOnce(executor, marker, "p03.png", after)
    result = run_batch([src], BatchOptions(output=f"{out}/"), executor=dies)
    pid, inode = map(int, marker.read_text().split())  # of the first attempt, which died
    assert [(r.status, r.reason) for r in result.results] == [("written", None)] * COUNT
    assert len(_whole_images(out, pid)) == COUNT
    assert os.stat(out / after).st_ino == inode  # placed once: the retry left it as it was


def _killer(task: int) -> _Num:
    """Task 0 kills its worker every time; the others are fine."""
    if task == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return _Num(task)


def test_an_image_that_kills_its_workers_fails_alone_after_two_deaths(
    executor: DaskExecutor,
) -> None:
    seen: dict[int, list[_Num]] = {}
    reasons: dict[int, str | None] = {}

    def settle(task: int, status: Status, reason: str | None) -> _Num:
        reasons[task] = reason
        return _Num(-1, status=status)

    def on_done(index: int, outcome: _Num) -> None:
        seen.setdefault(index, []).append(outcome)

    assert not executor.run(range(6), _killer, on_done, settle)
    assert seen == {0: [_Num(-1, status="failed")], **{i: [_Num(i)] for i in range(1, 6)}}
    assert reasons == {0: death_reason(2)}
    assert "the worker process died 2 times" in death_reason(2)


def test_skip_existing_resumes_an_interrupted_run(tmp_path: Path, executor: DaskExecutor) -> None:
    src = _crops(tmp_path)
    out = tmp_path / "out"
    options = BatchOptions(output=f"{out}/", workers=1)
    run_batch([src], options)
    local = _files(out)
    out.rename(tmp_path / "local")

    def interrupt_after_two(event: Progress) -> None:
        if event.done == 2 and event.result is not None:
            raise KeyboardInterrupt

    first = run_batch([src], options, interrupt_after_two, executor)
    assert first.interrupted and first.not_done > 0
    done = _whole_images(out)
    assert 2 <= len(done) < COUNT
    assert all(r.status in ("written", "interrupted") for r in first.results)
    resumed = run_batch([src], replace(options, skip_existing=True), None, executor)
    assert resumed.count("skipped") == len(done)
    assert resumed.count("written") == COUNT - len(done)
    assert _files(out) == local


def test_sigterm_cancels_the_cluster_tasks_and_leaves_whole_images(
    tmp_path: Path, executor: DaskExecutor
) -> None:
    src = _crops(tmp_path)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "quantize", str(src), "-o", str(out), "-k", "32"]
    proc = subprocess.Popen(
        [*command, "--dask", _address(executor)], stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        assert "PSNR" in first, first
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, rest
    assert "quantize: terminated" in rest and " not done in " in rest
    assert "Traceback" not in rest and "quantize: error:" not in rest
    assert " 0 failed, " in rest
    assert 1 <= len(_whole_images(out)) < COUNT
    # Nothing of the run is left on the cluster.
    assert not any(executor.client.processing().values())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_scheduler_is_one_line_and_exit_1(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    address = f"tcp://127.0.0.1:{_free_port()}"
    code, text = run_cli(src, "-o", tmp_path / "out", "--dask", address)
    assert code == 1
    assert text.splitlines() == [
        f"quantize: error: cannot reach the Dask scheduler at {address} within "
        f"{CONNECT_TIMEOUT:g} s: Timed out trying to connect to {address} after "
        f"{CONNECT_TIMEOUT:g} s"
    ]
    assert not (tmp_path / "out").exists()


@contextmanager
def _server(answer: bytes | None) -> Iterator[str]:
    """A TCP server on 127.0.0.1 that is not a scheduler: it sends ``answer``, or nothing."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()

        def serve() -> None:
            with suppress(OSError):
                conn, _ = sock.accept()
                with conn:
                    if answer is not None:
                        conn.sendall(answer)
                    conn.recv(1 << 16)  # until the client gives up

        threading.Thread(target=serve, daemon=True).start()
        yield f"tcp://127.0.0.1:{sock.getsockname()[1]}"


def test_an_address_that_is_not_a_scheduler_fails_in_time_with_one_line(
    executor: DaskExecutor,
) -> None:
    # The handshake after connecting had no deadline: a silent server (the
    # dashboard's port, say) kept the command waiting for ever.
    worker = next(iter(executor.client.scheduler_info()["workers"]))
    cases = [
        (_server(None), "it does not answer as a Dask scheduler"),
        (_server(b"HTTP/1.0 400 Bad Request\r\n\r\n" * 4), "it does not answer as a Dask"),
        (nullcontext(worker), "it is a Dask Worker, not the scheduler"),
        (nullcontext("foo"), "missing port number in address 'foo'"),
    ]
    for server, reason in cases:
        with server as address, pytest.raises(ClusterError) as caught:
            DaskExecutor(address, connect_timeout=0.5)
        text = str(caught.value)
        assert text.startswith(f"cannot reach the Dask scheduler at {address} within 0.5 s: ")
        assert reason in text and "\n" not in text


def test_without_dask_installed_the_error_says_how_to_get_it(photo: Path) -> None:
    script = (
        "import sys; sys.modules['distributed'] = None; from quantize.cli import main; "
        f"sys.argv = ['quantize', {str(photo)!r}, '--dask', 'local']; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        'quantize: error: --dask needs Dask: pip install "quantize[dask]"'
    ]
    assert not photo.with_name("photo-k16.png").exists()


# --------------------------------------------------------------------------- #
# The command-line services, started as a user would
# --------------------------------------------------------------------------- #


@pytest.fixture
def services(tmp_path: Path) -> Iterator[str]:
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, started elsewhere."""
    elsewhere = tmp_path / "elsewhere"  # relative paths must still name the client's files
    elsewhere.mkdir()
    address = f"tcp://127.0.0.1:{_free_port()}"
    dask = [sys.executable, "-m", "dask"]
    commands = [
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1]],
        *[[*dask, "worker", address, "--nthreads", "1", "--host", "127.0.0.1"] for _ in range(2)],
    ]
    # The settings the README gives: fail an image after two worker deaths,
    # glibc's own mmap threshold and no profiler in the workers.
    env = {
        **os.environ,
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",
        "DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON": '{"MALLOC_TRIM_THRESHOLD_": None}',
        "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
    }
    procs: list[subprocess.Popen[bytes]] = []
    log = open(tmp_path / "services.log", "wb")  # noqa: SIM115 - closed below
    try:
        for command in commands:
            procs.append(
                subprocess.Popen(
                    [*command, "--no-dashboard"],
                    cwd=elsewhere,
                    env=env,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            )
        deadline = time.monotonic() + 60
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
        yield address
    finally:
        for proc in procs:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=20)
        log.close()


def test_the_command_on_separately_started_services_gives_the_local_bytes(
    tmp_path: Path, services: str
) -> None:
    _tree(tmp_path, samples=False)
    command = [sys.executable, "-m", "quantize", "in", "-r", "-o", "out", "-q"]
    run = subprocess.run(
        [*command, "--dask", services], cwd=tmp_path, capture_output=True, text=True, timeout=180
    )
    assert run.returncode == 1, run.stderr  # the broken file
    broken = os.path.join("in", "b", "broken.png")
    assert run.stderr.splitlines() == [f"quantize: error: {broken}: not a recognized image file"]
    remote = _files(tmp_path / "out")
    (tmp_path / "out").rename(tmp_path / "remote")
    local = subprocess.run(
        [*command, "-j", "1"], cwd=tmp_path, capture_output=True, text=True, timeout=180
    )
    assert (local.returncode, local.stderr) == (run.returncode, run.stderr)
    assert _files(tmp_path / "out") == remote
