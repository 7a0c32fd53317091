"""Checks shared by the public entry points of the clustering core.

The estimators in :mod:`quantize.kmeans` and :func:`quantize.cluster.cluster_table`
validate their parameters once, at the public boundary, with these; the
kernels below them (:mod:`quantize._kernels`, :mod:`quantize.lloyd`) then
assume valid input.  Checks used by one module only stay in that module.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["RandomStateLike", "check_int", "check_n_init", "check_random_state"]

#: Anything accepted as ``random_state``.
RandomStateLike = int | np.integer | np.random.Generator | None


def check_random_state(seed: RandomStateLike) -> np.random.Generator:
    """Turn ``seed`` into a :class:`numpy.random.Generator`.

    Parameters
    ----------
    seed : None, int or numpy.random.Generator
        ``None`` gives fresh OS entropy, an int a reproducible stream, and a
        Generator is used as is (so it advances as it is drawn from).

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    ValueError
        For anything else (floats, booleans, legacy ``RandomState`` ...).

    Examples
    --------
    >>> rng = check_random_state(0)
    >>> check_random_state(rng) is rng
    True
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool | np.bool_):
        if int(seed) < 0:
            raise ValueError(f"random_state must be non-negative, got {seed}")
        return np.random.default_rng(int(seed))
    raise ValueError(f"random_state must be None, an int or a numpy.random.Generator, got {seed!r}")


def check_int(value: object, name: str, minimum: int) -> int:
    """``value`` as an int, if it is an integer (not a bool) >= ``minimum``.

    Raises
    ------
    ValueError
    """
    if not isinstance(value, numbers.Integral) or isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def check_n_init(n_init: object) -> int | None:
    """Validate ``n_init``; ``None`` stands for "auto"."""
    if isinstance(n_init, str):
        if n_init != "auto":
            raise ValueError(f"n_init must be a positive integer or 'auto', got {n_init!r}")
        return None
    return check_int(n_init, "n_init", 1)
