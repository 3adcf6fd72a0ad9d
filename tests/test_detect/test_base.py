"""The bounded containers every detector keeps its state in: CappedSample, CappedGroups."""

from __future__ import annotations

from dotaudit.detect.base import CappedGroups, CappedSample


def test_capped_groups_keeps_up_to_the_limit_and_counts_the_rest() -> None:
    groups: CappedGroups[str, list[int]] = CappedGroups(2)
    first = groups.add("a", [1])
    assert first == [1] and groups.add("b", [2]) == [2]  # at the limit: still room
    assert groups.dropped == 0
    assert groups.add("c", [3]) is None  # over it: turned away, counted
    assert groups.add("d", [4]) is None
    assert groups.dropped == 2
    assert dict(groups) == {"a": [1], "b": [2]}
    assert groups.get("a") is first  # existing groups stay reachable and mutable
    assert "c" not in groups


def test_capped_groups_of_limit_zero_keep_nothing() -> None:
    groups: CappedGroups[int, int] = CappedGroups(0)
    assert groups.add(1, 1) is None
    assert len(groups) == 0 and groups.dropped == 1


def test_capped_sample_keeps_first_values_and_counts_distinct_ones() -> None:
    sample = CappedSample(limit=2, track=3)
    assert (sample.values, sample.count, sample.overflow) == ([], 0, False)
    for value in ("x", "y", "x", "z"):
        sample.add(value)
    assert sample.values == ["x", "y"]
    assert sample.count == 3 and not sample.overflow
    sample.add("w")  # a fourth distinct value is over the tracking cap
    assert sample.overflow and sample.count == 3
    assert "x" in sample and "w" not in sample
