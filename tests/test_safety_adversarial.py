"""Adversarial cases of the data-safety guarantees: odd names, aliased folders, foreign locks."""

from __future__ import annotations

import os
import time
from pathlib import Path

from quantize.batch import BatchOptions, run_batch
from quantize.pipeline import RunOptions
from tests.conftest import gradient_rgb
from tests.test_safety import dead_pid


def test_an_input_named_like_a_stale_temp_file_is_never_removed(tmp_path: Path) -> None:
    # The shared palette's folder is claimed before the images are planned:
    # stale temporary files may only be removed once every input is known.
    named = tmp_path / f".quantize-{dead_pid()}-abcd1234.tmp"
    gradient_rgb(16, 12, seed=1).save(named, format="PNG")
    gradient_rgb(16, 12, seed=2).save(tmp_path / "b.png")
    old = time.time() - 3600
    os.utime(named, (old, old))
    before = named.read_bytes()
    options = BatchOptions(RunOptions(colors=4), shared_palette=True, workers=1)
    result = run_batch([str(named), str(tmp_path / "b.png")], options)
    assert [r.status for r in result.results] == ["written", "written"]
    assert named.read_bytes() == before
