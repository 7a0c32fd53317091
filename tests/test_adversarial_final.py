"""Cases found by the final adversarial pass of issue 11 (new features and combinations)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from quantize.batch import BatchOptions, run_batch
from quantize.errors import OutputError
from quantize.pipeline import RunOptions
from tests.conftest import gradient_rgb, run_cli


def test_html_page_never_replaces_an_input_named_index_html_even_with_force(
    tmp_path: Path,
) -> None:
    # The page's existence was checked before the inputs were protected, so
    # with --force an image named index.html was replaced by the page.
    page = tmp_path / "index.html"
    gradient_rgb(16, 12, seed=1).save(page, format="PNG")
    gradient_rgb(16, 12, seed=2).save(tmp_path / "b.png")
    before = page.read_bytes()
    options = BatchOptions(RunOptions(colors=4, force=True), output=f"{tmp_path}/", html=True)
    with pytest.raises(OutputError, match="refusing to overwrite the input"):
        run_batch([str(page), str(tmp_path / "b.png")], options)
    assert page.read_bytes() == before


def _run_with_stderr(how: str, *args: str | Path) -> int:
    """Run quantize with a stderr that cannot be written: a pipe nobody reads
    (`quantize ... 2>&1 | head -c0`), a full device, or no stderr at all (`2>&-`)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    full = os.open("/dev/full", os.O_WRONLY)
    stderr = {"pipe": write_end, "full": full, "closed": None}[how]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "quantize", *map(str, args)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            preexec_fn=(lambda: os.close(2)) if how == "closed" else None,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
        os.close(full)
    return proc.returncode


@pytest.mark.parametrize("how", ["pipe", "full", "closed"])
def test_an_unwritable_stderr_neither_stops_the_batch_nor_changes_the_exit_code(
    tmp_path: Path, how: str
) -> None:
    # Click turned the first message into EPIPE -> exit 1 and the batch stopped
    # after one image; a usage error exited 1 instead of 2.  ENOSPC and a
    # closed stderr (sys.stderr is None) stopped it before any image.
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        gradient_rgb(16, 12, seed=i).save(src / f"i{i}.png")
    out = tmp_path / "out"
    assert _run_with_stderr(how, src, "-o", f"{out}/", "-k", "3", "-j", "1") == 0
    assert sorted(p.name for p in out.iterdir()) == [
        f"i{i}-k3.{ext}" for i in range(3) for ext in ("json", "png")
    ]
    assert _run_with_stderr(how, src, "-k", "1") == 2


def test_a_signal_during_the_fork_of_the_workers_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # submit() forks; a handler's exception raised in fork()'s at-fork hooks is
    # printed and dropped by Python ("Exception ignored in _releaseLock"): a
    # SIGTERM at that moment was lost and the run ended with exit 0.
    from quantize import executors

    pool = executors._Pool(1)

    def forking_submit(*args: object) -> None:
        with contextlib.suppress(KeyboardInterrupt):  # what the at-fork hooks do
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(pool.executor, "submit", forking_submit)
    try:
        with pytest.raises(KeyboardInterrupt):
            pool.submit(print, 0, None)
    finally:
        monkeypatch.undo()
        pool.close()


def test_a_keep_file_is_an_input_never_overwritten_even_with_force(tmp_path: Path) -> None:
    # `--keep @out/im-k4.txt --palette-format json,txt --force` replaced the
    # user's kept-colors file with the image's palette (a --palette file was
    # protected, a --keep @FILE was not).
    gradient_rgb(16, 12, seed=1).save(tmp_path / "im.png")
    keep = tmp_path / "im-k4.txt"
    keep.write_text("#123456\n#abcdef\n")
    code, out = run_cli(
        tmp_path / "im.png", "-k", "4", "--keep", f"@{keep}", "--force",
        "--palette-format", "json,txt",
    )  # fmt: skip
    assert code == 1
    assert "refusing to overwrite the input" in out
    assert keep.read_text() == "#123456\n#abcdef\n"


def test_an_unknown_mplbackend_does_not_crash_plot(tmp_path: Path) -> None:
    # matplotlib's import raised ValueError on MPLBACKEND=nonsense: a traceback
    # before any image.  quantize draws with the Agg canvas alone.
    gradient_rgb(16, 12, seed=1).save(tmp_path / "im.png")
    env = {**os.environ, "MPLBACKEND": "nonsense", "MPLCONFIGDIR": str(tmp_path / "mpl")}
    proc = subprocess.run(
        [sys.executable, "-m", "quantize", str(tmp_path / "im.png"), "-k", "3", "--plot"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "im-k3.pixels.png").exists()
    assert "MPLBACKEND" in proc.stderr  # said, as one warning line


def test_keep_that_overflows_a_given_palette_is_a_usage_error(tmp_path: Path) -> None:
    # --palette (200 colors) + --keep (100 others) failed every image, exit 1,
    # with "a palette needs 1 to 256 colors, got 300": a usage error found late.
    gradient_rgb(16, 12, seed=1).save(tmp_path / "im.png")
    palette = tmp_path / "p.txt"
    palette.write_text("".join(f"#{i:06x}\n" for i in range(200)))
    keep = tmp_path / "k.txt"
    keep.write_text("".join(f"#{i:06x}\n" for i in range(150, 250)))  # 50 new colors
    assert run_cli(tmp_path / "im.png", "--palette", palette, "--keep", f"@{keep}")[0] == 0
    for written in tmp_path.glob("im-k*"):
        written.unlink()
    keep.write_text("".join(f"#{i:06x}\n" for i in range(150, 350)))  # 150 new colors
    code, out = run_cli(tmp_path / "im.png", "--palette", palette, "--keep", f"@{keep}")
    assert code == 2
    assert "--keep" in out and "256" in out
    assert not list(tmp_path.glob("im-k*"))
