"""Which files a run reads (dotaudit/files.py): one file, however it is named, and one
content, however many copies, are read once; the output is never one of them."""

from __future__ import annotations

import os
from pathlib import Path

from dotaudit.files import distinct_files, same_file


def test_a_file_named_twice_linked_or_copied_is_read_once(tmp_path: Path) -> None:
    original = tmp_path / "a.pcap"
    original.write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(60))
    hard = tmp_path / "hard.pcap"
    os.link(original, hard)
    soft = tmp_path / "soft.pcap"
    soft.symlink_to(original)
    copy = tmp_path / "copy.pcap"
    copy.write_bytes(original.read_bytes())
    other = tmp_path / "other.pcap"  # the same size, other bytes: a capture of its own
    other.write_bytes(b"\xd4\xc3\xb2\xa1" + bytes(59) + b"\x01")
    relative = Path(os.path.relpath(original))  # another spelling of the same path
    given = [original, original, hard, soft, copy, other, relative]
    kept, duplicates = distinct_files(given)
    assert kept == [original, other]
    assert [(d.path.name, d.same, d.reason) for d in duplicates] == [
        ("a.pcap", "file", "given twice"),
        ("hard.pcap", "file", f"the same file as {original}"),
        ("soft.pcap", "file", f"the same file as {original}"),
        ("a.pcap", "file", f"the same file as {original}"),  # the relative spelling
        ("copy.pcap", "content", f"the same content as {original}"),
    ]
    assert duplicates[-1].sha256 and len(duplicates[-1].sha256) == 64


def test_files_of_different_sizes_are_never_read_to_compare(tmp_path: Path) -> None:
    small = tmp_path / "s"
    small.write_bytes(b"x")
    unreadable = tmp_path / "u"
    unreadable.write_bytes(b"yy")
    unreadable.chmod(0)  # root reads it anyway; what matters is that no hash is needed
    kept, duplicates = distinct_files([small, unreadable, tmp_path / "absent"])
    assert kept == [small, unreadable, tmp_path / "absent"] and duplicates == []


def test_a_pipe_is_never_read_to_compare(tmp_path: Path) -> None:
    fifo = tmp_path / "f"
    os.mkfifo(fifo)  # opening it to hash would block, reading it would consume it
    kept, duplicates = distinct_files([fifo, fifo])
    assert kept == [fifo] and [d.reason for d in duplicates] == ["given twice"]


def test_same_file_by_resolved_path_or_inode(tmp_path: Path) -> None:
    a = tmp_path / "a"
    a.write_text("x")
    os.link(a, tmp_path / "b")
    (tmp_path / "c").symlink_to(a)
    (tmp_path / "d").write_text("x")
    assert same_file(a, tmp_path / "b") and same_file(tmp_path / "c", a)
    assert not same_file(a, tmp_path / "d") and not same_file(a, tmp_path / "absent")
