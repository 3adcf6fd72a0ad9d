"""Capture sets (dotaudit/capture/sets.py): which inputs are one timeline, and the
streaming merge of their frames."""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest

from dotaudit.capture.sets import (
    MAX_SET_GAP,
    CaptureSet,
    Grouping,
    InputGroup,
    capture_sets,
    group_inputs,
    rotation_shape,
)
from dotaudit.errors import InputError
from dotaudit.model.capture_set import frame_in_file, member_of
from tests.test_capture import capwrite

T0 = 1_764_590_400.0


def write(path: Path, stamps: list[float], *, linktype: int = 1, tag: bytes = b"") -> Path:
    """A pcap whose frames carry their timestamp (and ``tag``) as bytes, so that frames of
    different files differ unless written to repeat each other."""
    path.write_bytes(
        capwrite.pcap([(ts, tag + repr(ts).encode()) for ts in stamps], linktype=linktype)
    )
    return path


def merged(group: InputGroup) -> tuple[list[tuple[str, int, float]], list[tuple[int, str]]]:
    """Every frame the sets of ``group`` hand on, as (file, frame, ts), and the skipped
    duplicates as (code, detail)."""
    frames: list[tuple[str, int, float]] = []
    duplicates: list[tuple[int, str]] = []
    for capture_set in capture_sets(group):
        files = capture_set.files

        def take(code: int, ts: float, *_: object, files: list[str] = files) -> None:
            frames.append((Path(files[member_of(code)]).name, frame_in_file(code), ts))

        for _ in capture_set.scan(take, lambda code, ts, detail: duplicates.append((code, detail))):
            pass
    return frames, duplicates


@pytest.mark.parametrize(
    ("names", "same"),
    [
        # tcpdump -C 100 -w cap.pcap: cap.pcap, cap.pcap1, cap.pcap2 ...
        (["cap.pcap", "cap.pcap1", "cap.pcap12"], True),
        # tcpdump -C 100 -W 10 -w cap.pcap: cap.pcap0 ... cap.pcap9
        (["cap.pcap0", "cap.pcap7"], True),
        # tcpdump -G 60 -w cap-%s.pcap, and with strftime fields
        (["cap-1764590400.pcap", "cap-1764590460.pcap"], True),
        (["cap-2026-12-01_12:00:00.pcap", "cap-2026-12-01_12:01:00.pcap"], True),
        # dumpcap -b filesize:... -w ring.pcapng
        (["ring_00001_20261201120000.pcapng", "ring_00002_20261201120100.pcapng"], True),
        (["cap.pcap.gz", "cap.pcap1.gz"], True),
        (["office.pcap", "lab.pcap"], False),
        (["cap.pcap", "cap.pcapng"], False),
    ],
)
def test_rotation_shape_groups_the_names_a_rotation_writes(names: list[str], same: bool) -> None:
    assert (len({rotation_shape(name) for name in names}) == 1) is same


def test_rotated_files_of_one_directory_form_one_set(tmp_path: Path) -> None:
    first = write(tmp_path / "cap.pcap", [T0, T0 + 1])
    second = write(tmp_path / "cap.pcap1", [T0 + 2, T0 + 3])
    alone = write(tmp_path / "other.pcap", [T0 + 2.5])
    groups = group_inputs([str(alone), str(second), str(first)], Grouping.AUTO)
    assert [g.files for g in groups] == [(str(alone),), (str(second), str(first))]
    assert not groups[0].is_set
    assert groups[1].grouped_by == "rotation cap.pcap"
    # The timeline starts with the file whose first frame is earliest, not the first given.
    assert [start.path for start in groups[1].starts] == [str(first), str(second)]


def test_the_same_names_in_two_directories_are_two_captures(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    left = write(tmp_path / "a" / "cap.pcap", [T0])
    right = write(tmp_path / "b" / "cap.pcap1", [T0 + 1])
    assert [g.is_set for g in group_inputs([str(left), str(right)], Grouping.AUTO)] == [
        False,
        False,
    ]


def test_another_link_type_is_another_capture(tmp_path: Path) -> None:
    ethernet = write(tmp_path / "cap.pcap", [T0])
    raw_ip = write(tmp_path / "cap.pcap1", [T0 + 1], linktype=101)
    groups = group_inputs([str(ethernet), str(raw_ip)], Grouping.AUTO)
    assert [g.is_set for g in groups] == [False, False]
    # Asked to, they are one timeline all the same.
    assert group_inputs([str(ethernet), str(raw_ip)], Grouping.AS_ONE)[0].is_set


def test_a_silence_longer_than_the_gap_starts_a_new_set(tmp_path: Path) -> None:
    a = write(tmp_path / "cap.pcap", [T0, T0 + 10])
    b = write(tmp_path / "cap.pcap1", [T0 + 10 + MAX_SET_GAP, T0 + 11 + MAX_SET_GAP])
    c = write(tmp_path / "cap.pcap2", [T0 + 12 + 3 * MAX_SET_GAP])
    (group,) = group_inputs([str(a), str(b), str(c)], Grouping.AUTO)
    sets = []
    for capture_set in capture_sets(group):
        for _ in capture_set.scan(lambda *_: None):
            pass
        sets.append([Path(f).name for f in capture_set.files])
    # At the boundary (exactly MAX_SET_GAP) the files still follow on; beyond it they do not.
    assert sets == [["cap.pcap", "cap.pcap1"], ["cap.pcap2"]]


def test_separate_and_as_one(tmp_path: Path) -> None:
    a = write(tmp_path / "cap.pcap", [T0])
    b = write(tmp_path / "cap.pcap1", [T0 + 1])
    c = write(tmp_path / "unrelated.pcap", [T0 + 5 * MAX_SET_GAP])
    paths = [str(a), str(b), str(c)]
    assert [g.files for g in group_inputs(paths, Grouping.SEPARATE)] == [(p,) for p in paths]
    (one,) = group_inputs(paths, Grouping.AS_ONE)
    assert one.files == tuple(paths) and not one.split_gaps
    frames, _ = merged(one)
    assert [name for name, _, _ in frames] == ["cap.pcap", "cap.pcap1", "unrelated.pcap"]


def test_standard_input_never_joins_a_set(tmp_path: Path) -> None:
    a = write(tmp_path / "cap.pcap", [T0])
    groups = group_inputs(["-", str(a)], Grouping.AUTO)
    assert [g.files for g in groups] == [("-",), (str(a),)]
    assert groups[0].is_stdin
    with pytest.raises(InputError, match="standard input"):
        group_inputs(["-", str(a)], Grouping.AS_ONE)


def test_a_file_given_twice_is_not_merged_with_itself(tmp_path: Path) -> None:
    a = write(tmp_path / "cap.pcap", [T0])
    groups = group_inputs([str(a), str(a)], Grouping.AUTO)
    assert [g.is_set for g in groups] == [False, False]


def test_merge_orders_by_timestamp_and_keeps_each_files_order(tmp_path: Path) -> None:
    # Overlapping files, one with a clock step back: its frames are merged as written.
    a = write(tmp_path / "cap.pcap", [T0, T0 + 2, T0 + 4, T0 + 3.5], tag=b"a")
    b = write(tmp_path / "cap.pcap1", [T0 + 1, T0 + 2, T0 + 3], tag=b"b")
    (group,) = group_inputs([str(a), str(b)], Grouping.AUTO)
    frames, duplicates = merged(group)
    assert duplicates == []
    assert [(name[-1], frame) for name, frame, _ in frames] == [
        ("p", 1),  # cap.pcap
        ("1", 1),
        ("p", 2),  # a tie: the file that joined first goes first
        ("1", 2),
        ("1", 3),
        ("p", 3),
        ("p", 4),  # steps back, still after its own frame 3
    ]


def test_a_repeated_frame_of_another_file_is_skipped_and_named(tmp_path: Path) -> None:
    # Overlap of two files of one sensor: cap.pcap1 repeats the last two frames of cap.pcap.
    a = write(tmp_path / "cap.pcap", [T0, T0 + 1, T0 + 2])
    b = write(tmp_path / "cap.pcap1", [T0 + 1, T0 + 2, T0 + 3])
    (group,) = group_inputs([str(a), str(b)], Grouping.AUTO)
    frames, duplicates = merged(group)
    assert [(name, frame) for name, frame, _ in frames] == [
        ("cap.pcap", 1),
        ("cap.pcap", 2),
        ("cap.pcap", 3),
        ("cap.pcap1", 3),
    ]
    assert [(member_of(code), frame_in_file(code)) for code, _ in duplicates] == [(1, 1), (1, 2)]
    assert "frame 2 of " + str(a) in duplicates[0][1]


def test_same_bytes_at_another_time_or_in_the_same_file_are_not_duplicates(
    tmp_path: Path,
) -> None:
    same = b"same bytes"
    a = tmp_path / "cap.pcap"
    a.write_bytes(capwrite.pcap([(T0, same), (T0, same), (T0 + 1, same)]))
    b = tmp_path / "cap.pcap1"
    b.write_bytes(capwrite.pcap([(T0 + 0.5, same), (T0 + 1.000001, same)]))
    (group,) = group_inputs([str(a), str(b)], Grouping.AUTO)
    frames, duplicates = merged(group)
    assert len(frames) == 5 and duplicates == []


def test_a_set_must_be_read_to_its_end_before_the_next(tmp_path: Path) -> None:
    a = write(tmp_path / "cap.pcap", [T0])
    b = write(tmp_path / "cap.pcap1", [T0 + 3 * MAX_SET_GAP])
    (group,) = group_inputs([str(a), str(b)], Grouping.AUTO)
    sets = capture_sets(group)
    next(sets)
    with pytest.raises(RuntimeError):
        next(sets)


def test_files_without_frames_stay_out_of_a_set(tmp_path: Path) -> None:
    a = write(tmp_path / "cap.pcap", [T0])
    empty = write(tmp_path / "cap.pcap1", [])
    b = write(tmp_path / "cap.pcap2", [T0 + 1])
    groups = group_inputs([str(a), str(empty), str(b)], Grouping.AUTO)
    assert [g.files for g in groups] == [(str(a), str(b)), (str(empty),)]


def test_bytes_read_count_every_file(tmp_path: Path) -> None:
    a = write(tmp_path / "cap.pcap", [T0, T0 + 1])
    b = write(tmp_path / "cap.pcap1", [T0 + 2])
    (group,) = group_inputs([str(a), str(b)], Grouping.AUTO)
    capture_set = CaptureSet(deque(group.starts), "test", split_gaps=True)
    for _ in capture_set.scan(lambda *_: None):
        pass
    assert capture_set.bytes_read == a.stat().st_size + b.stat().st_size


def test_captures_side_by_side_are_no_rotation(tmp_path: Path) -> None:
    # The same minutes recorded three ways (erspan1.pcap ... erspan3.pcap): they start
    # together, which files of one rotation never do.
    side = [write(tmp_path / f"erspan{i}.pcap", [T0, T0 + 5], tag=bytes([i])) for i in (1, 2, 3)]
    assert [g.is_set for g in group_inputs(list(map(str, side)), Grouping.AUTO)] == [False] * 3
    # Out of turn: the names' numbers do not follow the start times.
    (tmp_path / "b").mkdir()
    turns = [
        write(tmp_path / "b" / f"part{i}.pcap", [T0 + start])
        for i, start in ((1, 2), (2, 1), (3, 3))
    ]
    assert [g.is_set for g in group_inputs(list(map(str, turns)), Grouping.AUTO)] == [False] * 3


def test_a_ring_of_names_that_wrapped_is_one_rotation(tmp_path: Path) -> None:
    # tcpdump -C 1 -W 3 -w cap.pcap, four files written: cap.pcap0 was reused last.
    files = [
        write(tmp_path / "cap.pcap0", [T0 + 3]),
        write(tmp_path / "cap.pcap1", [T0 + 1]),
        write(tmp_path / "cap.pcap2", [T0 + 2]),
    ]
    (group,) = group_inputs(list(map(str, files)), Grouping.AUTO)
    frames, _ = merged(group)
    assert [name for name, _, _ in frames] == ["cap.pcap1", "cap.pcap2", "cap.pcap0"]
    # Without a counter at the end of the name a wrap is no rotation.
    (tmp_path / "b").mkdir()
    named = [
        write(tmp_path / "b" / f"cap-{i}.pcap", [T0 + start])
        for i, start in ((0, 3), (1, 1), (2, 2))
    ]
    assert [g.is_set for g in group_inputs(list(map(str, named)), Grouping.AUTO)] == [False] * 3


def pcapng_on(path: Path, interface: bytes, start: float) -> Path:
    """A pcapng of one Ethernet interface named ``interface`` (if_name), two frames."""
    import struct

    body = struct.pack("<HHI", 1, 0, 0) + capwrite.option(2, interface) + capwrite.end_of_options()
    frames = [
        capwrite.epb(0, round(ts * 1e6), interface + repr(ts).encode()) for ts in (start, start + 1)
    ]
    path.write_bytes(capwrite.shb() + capwrite.block(1, body) + b"".join(frames))
    return path


def test_a_capture_of_another_interface_is_another_capture(tmp_path: Path) -> None:
    # dumpcap -i eth0 -i eth1 writing two rings into one directory.
    eth0 = [pcapng_on(tmp_path / f"ring_0000{i}_2026120112000{i}.pcapng", b"eth0", T0 + 2 * i)
            for i in (1, 2)]  # fmt: skip
    eth1 = pcapng_on(tmp_path / "ring_00003_20261201120003.pcapng", b"eth1", T0 + 3)
    groups = group_inputs([*map(str, eth0), str(eth1)], Grouping.AUTO)
    assert [g.files for g in groups] == [tuple(map(str, eth0)), (str(eth1),)]
    assert groups[0].starts[0].interfaces == ((1, "eth0"),)
