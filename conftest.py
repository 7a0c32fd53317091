"""Collection settings for the whole repository.

``--doctest-modules`` (pyproject) imports every module of ``quantize`` to
find its examples.  A module that needs an optional extra (dask for the
cluster executor) is skipped when that extra is not installed, so the base
``[test]`` install still collects cleanly.  The benchmark scripts are not
part of the test run, even under ``pytest .``.
"""

from __future__ import annotations

import importlib.util

_OPTIONAL = {"quantize/dask_executor.py": "distributed"}

collect_ignore = ["benchmarks", "sample_images"] + [
    path for path, module in _OPTIONAL.items() if importlib.util.find_spec(module) is None
]
