"""Streaming batches: work starts while the folders are read, and stays as safe as before."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from quantize import batch
from quantize.batch import BatchOptions, Progress, run_batch
from quantize.discover import Source, scan_images
from quantize.pipeline import RunOptions
from tests.helpers import gradient_rgb, run_cli


def opts(**kwargs: object) -> BatchOptions:
    return BatchOptions(run=RunOptions(colors=4), workers=1, **kwargs)  # type: ignore[arg-type]


def folder_of(tmp_path: Path, name: str, count: int, seed: int = 0, stem: str = "im") -> Path:
    folder = tmp_path / name
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        gradient_rgb(12, 10, seed=seed + i).save(folder / f"{stem}{i}.png")
    return folder


def test_work_starts_before_the_scan_is_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = folder_of(tmp_path, "a", 2), folder_of(tmp_path, "b", 2, seed=5, stem="b")
    events: list[Progress] = []
    seen_when_reading_b: list[int] = []

    def slow_scan(inputs: Iterable[str], **kwargs: object) -> Iterator[list[Source]]:
        for group in scan_images(inputs, **kwargs):  # type: ignore[arg-type]
            if group[0].path.parent == second:
                seen_when_reading_b.append(sum(e.result is not None for e in events))
            yield group

    monkeypatch.setattr(batch, "scan_images", slow_scan)
    result = run_batch([first, second], opts(output=str(tmp_path / "out")), events.append)
    assert result.count("written") == 4
    # Both images of a/ were done before b/ was read.
    assert seen_when_reading_b == [2]
    totals = [e.total for e in events]
    assert totals == sorted(totals) and totals[0] == 2 and totals[-1] == 4
    assert not events[0].final and events[-1].final


def test_an_input_in_a_folder_argument_under_the_output_folder_is_protected(
    tmp_path: Path,
) -> None:
    # out/ is read as an input folder: its a-k4.png is an input, never a.png's output.
    src, out = folder_of(tmp_path, "src", 0), tmp_path / "out"
    gradient_rgb(12, 10, seed=1).save(src / "a.png")
    out.mkdir()
    gradient_rgb(12, 10, seed=2).save(out / "a-k4.png")
    before = (out / "a-k4.png").read_bytes()
    result = run_batch([src, out], opts(output=str(out)))
    assert [(r.source.name, r.status) for r in result.results] == [
        ("a.png", "failed"),
        ("a-k4.png", "written"),
    ]
    assert "refusing to overwrite the input image" in (result.results[0].reason or "")
    assert (out / "a-k4.png").read_bytes() == before


def test_two_folders_with_the_same_names_into_one_output_folder(tmp_path: Path) -> None:
    a, b = folder_of(tmp_path, "a", 1), folder_of(tmp_path, "b", 1, seed=7)
    (tmp_path / "a" / "x.png").write_bytes((a / "im0.png").read_bytes())
    gradient_rgb(12, 10, seed=8).save(a / "x.jpg")  # a/x.png and a/x.jpg: one output name
    result = run_batch([a, b], opts(output=str(tmp_path / "out")))
    failed = {r.source.relative_to(tmp_path).as_posix(): r.reason for r in result.failures}
    out = tmp_path / "out"
    assert failed == {
        "a/x.png": f"{out / 'x-k4.png'}: same output as {a / 'x.jpg'}",
        "b/im0.png": f"{out / 'im0-k4.png'}: same output as {a / 'im0.png'}",
    }
    assert result.count("written") == 2


def test_a_link_found_late_to_an_output_of_this_run_fails_alone(tmp_path: Path) -> None:
    a = folder_of(tmp_path, "a", 1)
    b = tmp_path / "b"
    b.mkdir()
    os.symlink(a / "im0-k4.png", b / "late.png")  # dangling now: a/im0.png writes it
    result = run_batch([a, b], opts())
    assert [(r.source, r.status) for r in result.results] == [
        (a / "im0.png", "written"),
        (b / "late.png", "failed"),
    ]
    assert (
        result.results[1].reason
        == f"{b / 'late.png'}: a link to an output of {a / 'im0.png'} in this run"
    )
    assert not (b / "late-k4.png").exists()


def test_compact_results_keep_what_the_summary_needs(tmp_path: Path) -> None:
    folder = folder_of(tmp_path, "in", 3)
    (folder / "zbad.png").write_bytes(b"not a png")
    compact = run_batch([folder], opts(output=str(tmp_path / "o1"), keep_results=False))
    full = run_batch([folder], opts(output=str(tmp_path / "o2")))
    assert compact.results == [] and len(full.results) == 4
    for result in (compact, full):
        assert (result.count("written"), result.count("failed"), result.reported) == (3, 1, 4)
        assert [f.source.name for f in result.failures] == ["zbad.png"]
        assert result.total == 4 and result.not_done == 0


def test_the_command_summary_with_compact_results(tmp_path: Path) -> None:
    folder = folder_of(tmp_path, "in", 2)
    (folder / "zbad.png").write_bytes(b"not a png")
    code, text = run_cli(folder, "-k", "4", "-o", tmp_path / "out")
    assert code == 1
    lines = text.splitlines()
    assert any(line.startswith("2 written, 0 skipped, 1 failed in ") for line in lines)
    assert lines[-2:] == ["failed:", f"  {folder / 'zbad.png'}: {lines[-1].split(': ', 1)[1]}"]


def test_no_images_found_after_the_scan_with_no_work(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    events: list[Progress] = []
    with pytest.raises(batch.InputError, match="no images found"):
        run_batch([tmp_path / "empty"], opts(recursive=True), events.append)
    assert events == []


def test_compact_results_of_an_html_run_keep_what_the_page_shows(tmp_path: Path) -> None:
    folder = folder_of(tmp_path, "in", 2)
    (folder / "zbad.png").write_bytes(b"not a png")
    out = {flag: tmp_path / f"o{flag}" for flag in (False, True)}
    results = {
        flag: run_batch([folder], opts(output=str(out[flag]), html=True, keep_results=flag))
        for flag in (False, True)
    }
    compact = results[False]
    assert [r.outputs for r in compact.results] == [(), (), ()]
    assert [r.page is None for r in compact.results] == [False, False, True]
    assert compact.failures[0].detail is not None  # the failures keep their traceback
    pages = [(out[flag] / "index.html").read_text().replace(str(out[flag]), "") for flag in out]
    assert re.sub(r"in [0-9.]+ s", "", pages[0]) == re.sub(r"in [0-9.]+ s", "", pages[1])
