"""The FILE* libpcap reads through (dotaudit/capture/libpcap.py ``CookieFile``): it hands
libc the file's bytes, patched where asked, and its memory does not grow with the number of
reads of different sizes a long capture makes."""

from __future__ import annotations

import ctypes
import gc
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from dotaudit.capture import libpcap


@pytest.fixture
def cookie_file(tmp_path: Path) -> Iterator[tuple[libpcap.CookieFile, bytes]]:
    lib = libpcap.load()
    assert lib is not None, libpcap.unavailable_reason()
    content = bytes(range(256)) * 64
    path = tmp_path / "bytes.bin"
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    cookie = libpcap.CookieFile(lib, fd, patch={4: b"\xaa\xbb"})
    try:
        yield cookie, content
    finally:
        cookie.close()
        os.close(fd)


def test_reads_give_the_files_bytes_with_the_patch_in_place(
    cookie_file: tuple[libpcap.CookieFile, bytes],
) -> None:
    cookie, content = cookie_file
    target = ctypes.create_string_buffer(64)
    got = [cookie._read(0, ctypes.addressof(target), n) for n in (3, 5, 56)]
    assert got == [3, 5, 56] and cookie.position == 64
    # The three reads landed at the buffer's start, each over the last; the patch
    # (offsets 4 and 5) was in the second read's bytes 1 and 2.
    assert target.raw[:56] == content[8:64]
    cookie.position = 0
    assert cookie._read(0, ctypes.addressof(target), 8) == 8
    assert target.raw[:8] == content[:4] + b"\xaa\xbb" + content[6:8]


def test_reads_stop_at_the_limit(cookie_file: tuple[libpcap.CookieFile, bytes]) -> None:
    cookie, _ = cookie_file
    cookie.limit = 10
    target = ctypes.create_string_buffer(64)
    assert cookie._read(0, ctypes.addressof(target), 64) == 10
    assert cookie._read(0, ctypes.addressof(target), 64) == 0


def test_reads_of_many_sizes_leave_nothing_behind(
    cookie_file: tuple[libpcap.CookieFile, bytes],
) -> None:
    """Where the prefilter stops varies, so libc's reads come in thousands of sizes over a
    long capture; a ctypes array type per size left some memory behind for each."""
    cookie, content = cookie_file
    target = ctypes.create_string_buffer(len(content))
    tracemalloc.start()
    try:
        for size in range(1, 2001):
            cookie.position = 0
            assert cookie._read(0, ctypes.addressof(target), size) == size
        gc.collect()
        left, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert left < 1024
