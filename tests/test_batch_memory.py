"""A streaming batch holds a few bytes per image, and stays as exact as before."""

from __future__ import annotations

import os
import pathlib
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from quantize import keyset, safeio
from quantize.batch import BatchOptions, ImageResult, Job, run_batch
from quantize.executors import Executor
from quantize.pipeline import RunOptions
from tests.helpers import gradient_rgb


def opts(**kwargs: object) -> BatchOptions:
    return BatchOptions(run=RunOptions(colors=4), workers=1, **kwargs)  # type: ignore[arg-type]


class Planned(Executor):
    """Reports every job as written without running it: only the planning is measured."""

    #: Bytes traced once every job is planned.
    held = 0

    def run(
        self,
        tasks: Iterable[Job],
        fn: Callable[[Job], ImageResult],
        on_done: Callable[[int, ImageResult], None],
        settle: object,
    ) -> bool:
        for index, job in enumerate(tasks):
            on_done(index, ImageResult(job.source, "written", outputs=tuple(job.plan.paths)))
        self.held = traced_now()  # the batch, and its planner, still alive
        return False


# pathlib interns every part of a path.  The interpreter's table of interned
# strings doubles at a point set by every string the process interned before
# (importing distributed, as the Dask tests do, moves it): a new table there is
# not the planner's, and it made the measure depend on the tests run before.
_INTERNING = [
    tracemalloc.Filter(False, pathlib.__file__, lineno)
    for lineno, line in enumerate(Path(pathlib.__file__).read_text().splitlines(), 1)
    if "sys.intern(" in line
]


def traced_now() -> int:
    """Bytes traced now, less the table of interned strings."""
    snapshot = tracemalloc.take_snapshot().filter_traces(_INTERNING)
    return sum(stat.size for stat in snapshot.statistics("filename"))


def tree(root: Path, images: int, per_folder: int = 100) -> Path:
    data = _png_bytes(root)
    for i in range(images):
        folder = root / "tree" / f"d{i // per_folder:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"image-with-a-longish-name-{i:06d}.png").write_bytes(data)
    return root / "tree"


def _png_bytes(root: Path) -> bytes:
    root.mkdir(parents=True, exist_ok=True)
    seed = root / "seed.png"
    gradient_rgb(4, 4).save(seed)
    return seed.read_bytes()


def planning_held(folder: Path, out: Path) -> int:
    """Bytes traced once every image of ``folder`` is planned (nothing is run)."""
    options = opts(output=f"{out}{os.sep}", recursive=True, keep_results=False)
    executor = Planned()
    tracemalloc.start()
    try:
        result = run_batch([folder], options, executor=executor)
    finally:
        tracemalloc.stop()
    assert result.count("written") > 0 and result.count("failed") == 0
    return executor.held


def test_planning_holds_a_few_bytes_per_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Merged into arrays as they would be in a far larger run.
    monkeypatch.setattr(keyset, "MIN_RECENT", 64)
    small, large = tree(tmp_path / "s", 100), tree(tmp_path / "l", 1100)
    planning_held(small, tmp_path / "warm")  # imports and caches, not measured
    grown = planning_held(large, tmp_path / "o2") - planning_held(small, tmp_path / "o1")
    per_image = grown / 1000
    # Every claimed output and protected input as paths held some 800 bytes an image.
    assert per_image < 200, per_image


def test_outputs_sharing_a_digest_are_told_apart_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every retired claim shares one digest: only the exact check may refuse a claim.
    monkeypatch.setattr(safeio, "digest", lambda text: 0)
    a, b = tmp_path / "a", tmp_path / "b"
    for folder, names in ((a, ["im0", "x"]), (b, ["im0", "y"])):
        folder.mkdir()
        for seed, name in enumerate(names):
            gradient_rgb(12, 10, seed=seed).save(folder / f"{name}.png")
    out = tmp_path / "out"
    result = run_batch([a, b], opts(output=str(out)))
    assert {r.source: r.reason for r in result.failures} == {
        b / "im0.png": f"{out / 'im0-k4.png'}: same output as {a / 'im0.png'}"
    }
    assert result.count("written") == 3
    assert (out / "y-k4.png").exists() and (out / "x-k4.png").exists()


def test_an_input_of_a_folder_done_earlier_stays_protected_through_a_hard_link(
    tmp_path: Path,
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    gradient_rgb(12, 10, seed=1).save(a / "x.png")
    gradient_rgb(12, 10, seed=2).save(b / "y.png")
    os.link(a / "x.png", b / "y-k4.png")  # y's output is x.png under another name
    before = (a / "x.png").read_bytes()
    result = run_batch([a, b], opts())
    assert {r.source: r.reason for r in result.failures} == {
        b / "y.png": f"{b / 'y-k4.png'}: refusing to overwrite the input image"
    }
    assert (a / "x.png").read_bytes() == before
