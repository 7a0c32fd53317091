"""A set of 64-bit keys that costs about 8 bytes a key, for runs over millions of files.

A Python ``set`` of ints costs some 70 bytes a key (the int object and its
slot); a batch planner that remembers every output of a million images in
one would hold most of the client's memory.  :class:`KeySet` keeps the keys
in one sorted ``uint64`` array, with the keys added since the last merge in
a small ``set`` (at most an eighth of the array, so the merges cost little).

:func:`digest` turns a text key (a path) into a 64-bit key.  Different texts
can share a digest, so a hit in a set of digests says "maybe": the caller
confirms it with an exact check.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left

import numpy as np
from numpy.typing import NDArray

__all__ = ["KeySet", "digest"]

#: Keys added since the last merge never exceed this many, or an eighth of the array.
MIN_RECENT = 4096


def digest(text: str) -> int:
    """A 64-bit key of ``text`` (its UTF-8 bytes, any surrogates escaped)."""
    data = text.encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


class KeySet:
    """A set of ints in ``[0, 2**64)``: add and test, in about 8 bytes a key."""

    def __init__(self) -> None:
        self._sorted: NDArray[np.uint64] = np.empty(0, np.uint64)
        # bisect on a memoryview reads Python ints: a tenth of the cost of np.searchsorted.
        self._view = self._sorted.data
        self._recent: set[int] = set()

    def __contains__(self, key: int) -> bool:
        if key in self._recent:
            return True
        at = bisect_left(self._view, key)
        return at < len(self._view) and self._view[at] == key

    def add(self, key: int) -> None:
        """Add ``key`` (a key added twice is held once)."""
        self._recent.add(key)
        if len(self._recent) > max(MIN_RECENT, len(self._sorted) // 8):
            self._merge()

    def _merge(self) -> None:
        recent = np.fromiter(self._recent, np.uint64, len(self._recent))
        recent.sort()
        joined = np.concatenate([self._sorted, recent])
        # Two sorted runs: the stable sort (a merge sort) joins them in linear time.
        joined.sort(kind="stable")
        if len(joined) > 1:
            joined = joined[np.concatenate([[True], joined[1:] != joined[:-1]])]
        self._sorted, self._view, self._recent = joined, joined.data, set()
