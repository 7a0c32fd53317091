"""Shared fixtures: small, deterministic images built in the tests themselves.

Helpers that tests import by name (paths, builders, runners) are in ``helpers.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from quantize.histogram import ColorTable, color_table, pack_rgb
from tests.helpers import SAMPLES, gradient_rgb, sample_rgb


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A small RGB PNG with a few thousand distinct colors."""
    path = tmp_path / "photo.png"
    gradient_rgb().save(path)
    return path


@pytest.fixture
def china(tmp_path: Path) -> Path:
    """A copy of the bundled sample photo in a scratch folder."""
    path = tmp_path / "china.jpg"
    path.write_bytes((SAMPLES / "china.jpg").read_bytes())
    return path


@pytest.fixture(scope="session")
def china_table() -> ColorTable:
    """The distinct colors of the bundled sample photo and their pixel counts."""
    return color_table(pack_rgb(sample_rgb("china.jpg")).ravel())
