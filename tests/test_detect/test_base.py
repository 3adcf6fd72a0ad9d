"""The detector interface's defaults, and the bounded containers every detector keeps its
state in: CappedSample, CappedGroups."""

from __future__ import annotations

import pytest

from dotaudit.detect.base import (
    TRACK_BUDGET,
    CappedGroups,
    CappedSample,
    Context,
    Detector,
    FrameSample,
    LowestFrames,
    NamePool,
    TrackBudget,
    TrackShare,
    bitten,
)
from dotaudit.detect.doh_doq import DohDoqDetector
from dotaudit.detect.dot_cert import DotCertDetector
from dotaudit.detect.dot_session_outcomes import DotSessionOutcomesDetector
from dotaudit.detect.registry import DETECTORS
from dotaudit.detect.runner import DetectorRunner
from dotaudit.model.events import Event
from tests import factories as f
from tests.allocations import bytes_kept
from tests.factories import client_hello, quic_initial


def _name(cls: type[Detector]) -> str:
    return cls.name


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


def test_samples_drawing_on_one_budget_share_it_and_count_their_own_refusals() -> None:
    pool = TrackBudget(3)
    first, second = TrackShare(pool), TrackShare(pool)
    a, b = CappedSample(budget=first), CappedSample(budget=second)
    for value in ("x", "y", "x"):
        a.add(value)
    b.add("z")  # the third and last value the budget holds
    assert (pool.left, first.refused, second.refused) == (0, 0, 0)
    assert (a.count, b.count, a.overflow, b.overflow) == (2, 1, False, False)
    b.add("w")
    a.add("x")  # already remembered: no draw, no refusal
    assert (first.refused, second.refused, b.count, b.overflow) == (0, 1, 1, True)
    assert b.values == ["z", "w"] and "w" not in b
    b.add("w")  # refused again, and listed once
    assert (second.refused, b.values, b.count) == (2, ["z", "w"], 1)


def test_a_sample_by_default_remembers_ten_thousand_distinct_values() -> None:
    sample = CappedSample()
    for i in range(10_000):
        sample.add(f"name{i}")
    assert (sample.count, sample.overflow) == (10_000, False)
    sample.add("name10000")  # one past the default tracking cap
    assert (sample.count, sample.overflow) == (10_000, True)
    assert "name9999" in sample and "name10000" not in sample


def test_a_sample_at_its_own_cap_with_budget_left_counts_no_refusal() -> None:
    # The tracking cap, not the budget, turns the second value away: the run's budget
    # still holds a value, so nothing was refused by it.
    pool = TrackBudget(2)
    share = TrackShare(pool)
    sample = CappedSample(track=1, budget=share)
    sample.add("x")
    assert (pool.left, share.refused) == (1, 0)
    sample.add("y")
    assert (pool.left, share.refused, sample.count, sample.overflow) == (1, 0, 1, True)
    # Once the budget is spent, a value it cannot hold is a refusal.
    other = CappedSample(budget=share)
    other.add("z")  # takes the last value of the budget
    assert (pool.left, share.refused, other.overflow) == (0, 0, False)
    other.add("w")
    assert (share.refused, other.count, other.overflow) == (1, 1, True)


def test_a_context_gives_each_run_a_budget_of_its_own() -> None:
    context = Context()
    assert context.track.left == TRACK_BUDGET == 100_000
    context.track.left = 0
    fresh = context.for_one_run()
    assert fresh.track.left == TRACK_BUDGET and fresh.policy is context.policy
    assert context.track.left == 0


OWN_FACTS = {DotCertDetector, DotSessionOutcomesDetector}
"""The detectors that judge by what servers did across every client (``shared_facts``)."""


@pytest.mark.parametrize("cls", [d for d in DETECTORS if d not in OWN_FACTS], ids=_name)
def test_a_detector_without_server_facts_shares_none_and_refuses_to_merge_them(
    cls: type[Detector],
) -> None:
    detector = cls(Context())
    assert detector.shared_facts() is None  # the runner hands nothing over for it
    with pytest.raises(NotImplementedError, match=f"^{cls.__name__} keeps no shared facts$"):
        cls.merge_shared_facts([{}, {}])
    with pytest.raises(NotImplementedError, match=f"^{cls.__name__} keeps no shared facts$"):
        detector.adopt_shared_facts({})


@pytest.mark.parametrize("cls", [d for d in DETECTORS if d is not DohDoqDetector], ids=_name)
def test_only_the_doh_detector_wants_flows_whole(cls: type[Detector]) -> None:
    # The hellos DohDoqDetector keeps (tests/test_detect/test_doh_doq.py): no other
    # detector counts the packets of a flow, so none asks for one whole.
    doh = client_hello(dst="1.1.1.1", dport=443, sni="cloudflare-dns.com", alpn=("h2",))
    hellos: list[Event] = [doh, quic_initial(), client_hello()]
    assert DohDoqDetector(Context()).keeps_flow(doh)
    detector = cls(Context())
    assert [detector.keeps_flow(hello) for hello in hellos] == [False, False, False]


def test_lowest_frames_keeps_the_lowest_distinct_frames_in_order() -> None:
    frames = LowestFrames(3)
    for frame in (50, 30, 90, 30):
        frames.add(frame)
    assert list(frames.frames) == [30, 50, 90]  # at the limit, duplicates aside
    frames.add(90)  # equal to the highest kept: nothing changes
    frames.add(95)  # above it: not kept
    assert list(frames.frames) == [30, 50, 90]
    frames.add(10)
    frames.add(50)  # already kept, inside the list
    frames.add(40)
    assert list(frames.frames) == [10, 30, 40]


def test_bitten_keeps_the_caps_that_cut_something() -> None:
    assert bitten({"a_full": 0, "b_full": 2, "c_full": 1}) == {"b_full": 2, "c_full": 1}
    assert bitten({}) == {}


def test_samples_remember_one_string_for_a_name_they_share() -> None:
    """Names repeat across a run's groups (every client asks for the same popular names);
    each remembered name is kept once, not once per group that saw it."""
    first, second = CappedSample(), CappedSample()
    first.add("".join(("popular.", "example")))
    second.add("".join(("popular.", "example")))
    assert first.values == second.values == ["popular.example"]
    assert first.values[0] is second.values[0]


def test_a_remembered_value_costs_a_few_bytes() -> None:
    """A run remembers up to TRACK_BUDGET values over all its samples; as sets of strings
    they cost about 90 bytes each (9 MB for the budget), as sorted hashes under 20."""
    names = [f"name{i}.example" for i in range(TRACK_BUDGET // 500)]
    budget = TrackShare(TrackBudget(TRACK_BUDGET))
    samples = [CappedSample(budget=budget) for _ in range(500)]

    def fill() -> None:
        for i in range(TRACK_BUDGET):
            samples[i % len(samples)].add(names[i // len(samples)])

    held = bytes_kept(fill)
    remembered = sum(sample.count for sample in samples)
    assert remembered == TRACK_BUDGET and budget.pool.left == 0
    assert held / remembered < 20


def test_a_frame_sample_keeps_the_first_frames_up_to_its_limit() -> None:
    sample = FrameSample(3)
    for frame in (7, 5, 7, 9, 11):
        sample.add(frame)
    assert list(sample) == [7, 5, 7]  # arrival order, repeats kept, the fourth refused
    assert len(sample) == 3 and 5 in sample and 9 not in sample
    below = FrameSample(4)
    for frame in (7, 5, 7):
        below.add(frame)
    assert list(below) == [7, 5, 7]


def test_a_frame_sample_takes_frame_numbers_past_64_bits() -> None:
    # A capture set's frames carry the file's place in the set above bit 64.
    big = (1 << 64) | 12
    for frames in ((big, 3), (3, big), ((1 << 64) - 1, big)):
        sample = FrameSample(50)
        for frame in frames:
            sample.add(frame)
        assert list(sample) == list(frames)
    lowest = LowestFrames(2)
    for frame in (big, 3, (1 << 64) - 1, big + 1):
        lowest.add(frame)
    assert list(lowest.frames) == [3, (1 << 64) - 1]


def test_a_frame_sample_read_twice_shares_its_ints() -> None:
    """A row and a finding are made of one sample: the same ints, not two copies."""
    sample = FrameSample(50)
    for frame in range(10_000, 10_050):
        sample.add(frame)
    first, second = list(sample), tuple(sample)
    assert first == list(range(10_000, 10_050))
    assert all(a is b for a, b in zip(first, second, strict=True))
    sample.add(1)  # full: refused, after reading as before
    assert len(sample) == 50


def test_a_full_frame_sample_costs_about_8_bytes_a_frame() -> None:
    """Thousands of groups keep a full sample each: in a list a frame cost about 40 bytes
    (a slot and an int object), in the column 8."""
    samples = [FrameSample(50) for _ in range(1000)]

    def fill() -> None:
        for n, sample in enumerate(samples):
            for frame in range(n * 1000, n * 1000 + 50):
                sample.add(frame)

    held = bytes_kept(fill)
    assert held / (50 * len(samples)) < 12


def test_a_name_pool_shares_its_first_names_and_passes_the_rest_through() -> None:
    pool = NamePool(2)

    def fresh(text: str) -> str:
        return "".join(("x", text))  # a string of its own, as each message's name

    a, b, c = fresh("a"), fresh("b"), fresh("c")
    assert pool.share(a) is a and pool.share(b) is b and len(pool) == 2
    assert pool.share(fresh("a")) is a  # shared: the pool's copy
    assert pool.share(fresh("b")) is b
    assert pool.share(c) is c and len(pool) == 2  # past the limit: kept as it came
    assert pool.share(fresh("c")) is not c


def test_a_sample_keeps_its_names_in_its_runs_pool() -> None:
    budget = TrackBudget(10)
    sample = CappedSample(budget=TrackShare(budget))
    name = "".join(("pooled", ".example"))
    sample.add(name)
    assert len(budget.names) == 1 and budget.names.share("".join(("pooled", ".example"))) is name


def test_a_run_shares_one_name_pool_between_samples_and_the_window() -> None:
    """One pool, so that a run pins at most ``NAME_POOL`` names, not that many per part."""
    runner = DetectorRunner(Context(), DETECTORS)
    name = "".join(("shared", ".example"))
    runner.feed(f.dns_query(qname=name))
    pool = runner.context.track.names
    assert len(pool) == 1 and pool.share("".join(("shared", ".example"))) is name
    stage = runner._stage
    assert stage is not None and stage._recent._names is pool


def test_a_value_seen_again_after_others_is_still_counted_once() -> None:
    sample = CappedSample()
    for value in ("a", "b", "a", "c", "b", "a"):
        sample.add(value)
    assert sample.count == 3 and sample.values == ["a", "b", "c"]
    assert "b" in sample and "d" not in sample


def test_values_hashed_above_and_below_everything_remembered_are_told_apart() -> None:
    """A lookup lands past either end of the remembered hashes: it must answer, not fail."""
    sample = CappedSample()
    sample.add("middle.example")
    middle = hash("middle.example")
    candidates = [f"other{i}.example" for i in range(200)]
    above = next(c for c in candidates if hash(c) > middle)
    below = next(c for c in candidates if hash(c) < middle)
    assert above not in sample and below not in sample
    sample.add(above)
    sample.add(below)
    assert above in sample and below in sample and "middle.example" in sample
    assert sample.count == 3
    assert f"{above}." not in sample
