"""quantize: reduce the colors of images with k-means clustering.

The public API is re-exported here.  Attributes are resolved lazily (PEP 562)
so that ``quantize --help`` does not pay for importing numpy and Pillow.

Examples
--------
>>> from quantize import KMeans
>>> import numpy as np
>>> KMeans(2, random_state=0).fit(np.array([[0.0], [0.1], [5.0], [5.1]])).inertia_ < 0.02
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from quantize._version import __version__

_EXPORTS: dict[str, str] = {
    "KMeans": "quantize.kmeans",
    "MiniBatchKMeans": "quantize.kmeans",
    "kmeans_plusplus": "quantize.kmeans",
    "quantize_image": "quantize.pipeline",
    "QuantizeResult": "quantize.pipeline",
    "QuantizeError": "quantize.errors",
    "Palette": "quantize.palette",
    "read_palette": "quantize.palette_formats",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:
    from quantize.errors import QuantizeError as QuantizeError
    from quantize.kmeans import KMeans as KMeans
    from quantize.kmeans import MiniBatchKMeans as MiniBatchKMeans
    from quantize.kmeans import kmeans_plusplus as kmeans_plusplus
    from quantize.palette import Palette as Palette
    from quantize.palette_formats import read_palette as read_palette
    from quantize.pipeline import QuantizeResult as QuantizeResult
    from quantize.pipeline import quantize_image as quantize_image


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'quantize' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
