"""Cases found by the final adversarial pass of issue 11 (new features and combinations)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantize.batch import BatchOptions, run_batch
from quantize.errors import OutputError
from quantize.pipeline import RunOptions
from tests.conftest import gradient_rgb


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
