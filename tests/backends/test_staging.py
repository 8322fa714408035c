"""StagingCache: one slot per shape, made once, the least recently used released beyond capacity."""

import pytest

from segdeploy.backends.staging import StagingCache


def _cache(capacity=2):
    released = []
    cache = StagingCache(lambda shape: {"shape": shape}, released.append, capacity)
    return cache, released


def test_a_shape_seen_again_reuses_its_slot():
    cache, released = _cache()
    first = cache.get((1, 3, 8, 8))
    for _ in range(5):
        assert cache.get([1, 3, 8, 8]) is first  # any sequence of ints names the same shape
    assert cache.made == 1 and not released


def test_beyond_capacity_the_least_recently_used_is_released():
    cache, released = _cache(capacity=2)
    a, b = cache.get((1,)), cache.get((2,))
    cache.get((1,))  # (1,) is now the most recently used
    cache.get((3,))
    assert released == [b] and len(cache) == 2 and cache.get((1,)) is a and cache.made == 3


def test_clear_releases_every_slot_even_when_one_release_fails():
    released = []

    def release(slot):
        released.append(slot)
        if slot == (1,):
            raise RuntimeError("first release failed")

    cache = StagingCache(lambda shape: shape, release, 4)
    for size in (1, 2, 3):
        cache.get((size,))
    with pytest.raises(RuntimeError, match="first release failed"):
        cache.clear()
    assert released == [(1,), (2,), (3,)] and len(cache) == 0


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        StagingCache(lambda shape: shape, lambda slot: None, 0)
