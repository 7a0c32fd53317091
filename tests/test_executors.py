"""The executor seam: every task reported once, tasks taken lazily, same outcomes anywhere."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from quantize.batch import BatchOptions, run_batch
from quantize.executors import Executor, InProcess, LocalProcesses, local_executor
from quantize.vocabulary import Status
from tests.conftest import gradient_rgb


@dataclass(frozen=True)
class _Done:
    value: int
    pid: int
    status: Status = "written"


def _square(task: int) -> _Done:
    return _Done(task * task, os.getpid())


def _settle(task: int, status: Status, reason: str | None) -> _Done:
    return _Done(-1, 0, status)


def _run(executor: Executor, tasks: list[int]) -> dict[int, list[int]]:
    seen: dict[int, list[int]] = {}
    with executor:
        interrupted = executor.run(
            tasks, _square, lambda i, o: seen.setdefault(i, []).append(o.value), _settle
        )
    assert not interrupted
    return seen


@pytest.mark.parametrize("executor", [InProcess(), LocalProcesses(2)], ids=["in-process", "pool"])
def test_every_task_is_reported_once_with_its_index(executor: Executor) -> None:
    assert _run(executor, list(range(9))) == {i: [i * i] for i in range(9)}


def test_the_pool_takes_tasks_lazily_from_a_generator() -> None:
    taken = []
    reported = []

    def tasks() -> Iterator[int]:
        for i in range(40):
            taken.append(i)
            # Never more than 2 per worker submitted ahead of the reports.
            assert len(taken) - len(reported) <= 2 * 2 + 1
            yield i

    LocalProcesses(2).run(tasks(), _square, lambda i, o: reported.append(i), _settle)
    assert sorted(reported) == list(range(40))


def test_one_task_runs_in_this_process_and_one_worker_means_no_pool() -> None:
    pids: list[int] = []
    LocalProcesses(4).run([3], _square, lambda i, o: pids.append(o.pid), _settle)
    assert pids == [os.getpid()]
    assert isinstance(local_executor(1), InProcess)
    assert isinstance(local_executor(2), LocalProcesses)


def test_run_batch_gives_the_same_bytes_with_any_executor(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        gradient_rgb(20, 14, seed=i).save(src / f"g{i}.png")
    outputs = {}
    out = tmp_path / "out"  # the reports name the output paths: the same for both runs
    for name, executor in (("here", InProcess()), ("pool", LocalProcesses(2))):
        options = BatchOptions(output=f"{out}/", shared_palette=True)
        with executor:
            result = run_batch([src], options, executor=executor)
        assert result.count("written") == 4
        outputs[name] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
        out.rename(tmp_path / name)
    assert outputs["here"] == outputs["pool"]
    assert len(outputs["here"]) == 9  # 4 images, 4 reports, palette.json
