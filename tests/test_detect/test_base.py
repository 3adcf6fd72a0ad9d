"""CappedSample: the bounded, order-keeping sample every detector's evidence uses."""

from __future__ import annotations

from dotaudit.detect.base import CappedSample


def test_capped_sample_keeps_first_values_and_counts_distinct_ones() -> None:
    sample = CappedSample(limit=2, track=3)
    assert (sample.values, sample.count, sample.overflow) == ([], 0, False)
    for value in ("a", "b", "a", "c"):
        sample.add(value)
    assert sample.values == ["a", "b"] and sample.count == 3
    assert "c" in sample and "z" not in sample
    assert sample.overflow is False  # exactly at the tracking cap: still exact


def test_capped_sample_overflow_marks_an_inexact_count() -> None:
    sample = CappedSample(limit=2, track=2)
    for value in ("a", "b", "c"):
        sample.add(value)
    assert sample.count == 2 and sample.overflow is True
    assert "c" not in sample
