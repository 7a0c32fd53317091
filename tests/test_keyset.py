"""The compact key set the batch planner keeps its retired claims and file ids in."""

from __future__ import annotations

import numpy as np

from quantize import keyset
from quantize.keyset import KeySet, digest


def test_every_key_added_is_found_and_no_other() -> None:
    keys = KeySet()
    rng = np.random.default_rng(0)
    added = [int(k) for k in rng.integers(0, 2**63, 20_000, dtype=np.uint64)] + [0, 2**64 - 1]
    for key in added:
        keys.add(key)
    keys.add(added[5])  # twice: held once
    keys._merge()
    assert len(keys._sorted) == len(set(added))
    assert all(key in keys for key in added)
    others = [int(k) for k in rng.integers(2**63, 2**64 - 1, 2_000, dtype=np.uint64)]
    assert not any(key in keys for key in others)


def test_most_keys_sit_in_the_sorted_array() -> None:
    keys = KeySet()
    for key in range(3 * keyset.MIN_RECENT):
        keys.add(key * 7919)
    # The recent keys (a Python set) stay a small part of the whole.
    assert len(keys._recent) <= max(keyset.MIN_RECENT, len(keys._sorted) // 8)


def test_digest_is_a_stable_64_bit_key() -> None:
    assert digest("a/b-k16.png") == digest("a/b-k16.png")
    assert digest("a/b-k16.png") != digest("a/b-k16.json")
    assert 0 <= digest("\udcff odd name") < 2**64
