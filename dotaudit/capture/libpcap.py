"""libpcap through ctypes: the few calls dotaudit uses, for files and live interfaces.

Debian's ``libpcap0.8`` package (``libpcap.so.0.8``, which tcpdump depends on) or any
``libpcap.so.1``; no compiler is needed. :func:`load` returns None when the library is
missing, and :func:`unavailable_reason` says why: callers then read captures with the
pure-Python reader. ``DOTAUDIT_LIBPCAP`` names another library file to load (``none``:
behave as if libpcap were not installed).

Python callbacks are never run per packet: a pass hands libpcap C functions as packet
callbacks (``pcap_dump`` writing into an in-memory stream) and supplies file bytes through
``fopencookie`` streams, which libc calls once per buffer (a mebibyte), not per record.
"""

from __future__ import annotations

import atexit
import ctypes
import os
from collections.abc import Callable
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_int,
    c_int64,
    c_long,
    c_size_t,
    c_ssize_t,
    c_ubyte,
    c_uint,
    c_uint16,
    c_uint32,
    c_void_p,
)
from typing import Any

ERRBUF_SIZE = 256
TSTAMP_PRECISION_MICRO = 0
TSTAMP_PRECISION_NANO = 1
LIBRARY_NAMES = ("libpcap.so.0.8", "libpcap.so.1", "libpcap.so")
"""Tried in order (Debian ships the first)."""
_ENV = "DOTAUDIT_LIBPCAP"


class BpfInsn(Structure):
    _fields_ = [("code", c_uint16), ("jt", c_ubyte), ("jf", c_ubyte), ("k", c_uint32)]


class BpfProgram(Structure):
    _fields_ = [("bf_len", c_uint), ("bf_insns", POINTER(BpfInsn))]


class _Timeval(Structure):
    _fields_ = [("tv_sec", c_long), ("tv_usec", c_long)]


class PktHdr(Structure):
    _fields_ = [("ts", _Timeval), ("caplen", c_uint32), ("len", c_uint32)]


class PcapStat(Structure):
    """``struct pcap_stat``: packets the kernel passed to the capture (after its filter),
    dropped for want of buffer room, and dropped by the interface or its driver."""

    _fields_ = [("ps_recv", c_uint), ("ps_drop", c_uint), ("ps_ifdrop", c_uint)]


ERROR_NO_SUCH_DEVICE = -5
ERROR_PERM_DENIED = -8
ERROR_IFACE_NOT_UP = -9
ERROR_BREAK = -2
"""``pcap_dispatch`` after ``pcap_breakloop``."""


CookieRead = CFUNCTYPE(c_ssize_t, c_void_p, c_void_p, c_size_t)
"""``ssize_t read(void *cookie, char *buf, size_t size)`` of ``fopencookie``."""
CookieSeek = CFUNCTYPE(c_int, c_void_p, POINTER(c_int64), c_int)
"""``int seek(void *cookie, off64_t *offset, int whence)``."""


class CookieIo(Structure):
    _fields_ = [
        ("read", CookieRead),
        ("write", c_void_p),
        ("seek", CookieSeek),
        ("close", c_void_p),
    ]


class Libpcap:
    """The loaded library and the libc calls used with it (file streams)."""

    def __init__(self, lib: ctypes.CDLL, libc: ctypes.CDLL, name: str) -> None:
        self.name = name
        self.lib = lib
        self.libc = libc
        f = lib.pcap_lib_version
        f.restype, f.argtypes = c_char_p, []
        self.version = (f() or b"").decode("ascii", "replace")
        _sig(lib.pcap_fopen_offline_with_tstamp_precision, c_void_p, [c_void_p, c_uint, c_char_p])
        _sig(lib.pcap_close, None, [c_void_p])
        _sig(lib.pcap_dispatch, c_int, [c_void_p, c_int, c_void_p, c_void_p])
        _sig(lib.pcap_geterr, c_char_p, [c_void_p])
        _sig(lib.pcap_setfilter, c_int, [c_void_p, POINTER(BpfProgram)])
        _sig(lib.pcap_datalink, c_int, [c_void_p])
        _sig(lib.pcap_compile, c_int, [c_void_p, POINTER(BpfProgram), c_char_p, c_int, c_uint32])
        _sig(lib.pcap_freecode, None, [POINTER(BpfProgram)])
        _sig(lib.pcap_open_dead, c_void_p, [c_int, c_int])
        _sig(lib.pcap_offline_filter, c_int, [POINTER(BpfProgram), POINTER(PktHdr), c_char_p])
        _sig(lib.pcap_create, c_void_p, [c_char_p, c_char_p])
        _sig(lib.pcap_set_snaplen, c_int, [c_void_p, c_int])
        _sig(lib.pcap_set_promisc, c_int, [c_void_p, c_int])
        _sig(lib.pcap_set_timeout, c_int, [c_void_p, c_int])
        _sig(lib.pcap_set_immediate_mode, c_int, [c_void_p, c_int])
        _sig(lib.pcap_activate, c_int, [c_void_p])
        _sig(lib.pcap_statustostr, c_char_p, [c_int])
        _sig(lib.pcap_set_buffer_size, c_int, [c_void_p, c_int])
        _sig(lib.pcap_stats, c_int, [c_void_p, POINTER(PcapStat)])
        _sig(lib.pcap_breakloop, None, [c_void_p])
        _sig(lib.pcap_setnonblock, c_int, [c_void_p, c_int, c_char_p])
        _sig(lib.pcap_get_selectable_fd, c_int, [c_void_p])
        _sig(libc.fopencookie, c_void_p, [c_void_p, c_char_p, CookieIo])
        _sig(libc.open_memstream, c_void_p, [POINTER(c_void_p), POINTER(c_size_t)])
        _sig(libc.setvbuf, c_int, [c_void_p, c_void_p, c_int, c_size_t])
        _sig(libc.fflush, c_int, [c_void_p])
        _sig(libc.fseek, c_int, [c_void_p, c_long, c_int])
        _sig(libc.ftell, c_long, [c_void_p])
        _sig(libc.clearerr, None, [c_void_p])
        _sig(libc.fclose, c_int, [c_void_p])
        self.dump = ctypes.cast(lib.pcap_dump, c_void_p).value
        """``pcap_dump``, a C packet callback writing each record to the FILE* it gets."""

    def error(self, handle: int) -> str:
        text: bytes | None = self.lib.pcap_geterr(handle)
        return (text or b"").decode("utf-8", "replace")


def _sig(fn: Any, restype: Any, argtypes: list[Any]) -> None:
    fn.restype = restype
    fn.argtypes = argtypes


_LOADED: list[Libpcap | None] = []
_REASON: list[str] = []


def load() -> Libpcap | None:
    """The library, loaded once per process; None when it cannot be loaded."""
    if _LOADED:
        return _LOADED[0]
    lib: Libpcap | None = None
    override = os.environ.get(_ENV, "")
    names = () if override == "none" else (override,) if override else LIBRARY_NAMES
    errors: list[str] = []
    for name in names:
        try:
            handle = ctypes.CDLL(name, use_errno=True)
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            lib = Libpcap(handle, libc, name)
            break
        except (OSError, AttributeError) as exc:
            errors.append(f"{name}: {exc}")
    if lib is None:
        _REASON.append(
            "disabled by DOTAUDIT_LIBPCAP=none"
            if override == "none"
            else "; ".join(errors) or "not found"
        )
    _LOADED.append(lib)
    return lib


def unavailable_reason() -> str:
    """Why :func:`load` returned None (empty when it did not)."""
    load()
    return _REASON[0] if _REASON else ""


def reset_for_tests() -> None:
    """Forget the loaded library (tests switch ``DOTAUDIT_LIBPCAP``)."""
    _LOADED.clear()
    _REASON.clear()


class MemoryStream:
    """A ``FILE*`` writing into memory (``open_memstream``): ``pcap_dump`` records land
    here, and :meth:`take` hands them over as bytes and rewinds."""

    def __init__(self, pcap: Libpcap) -> None:
        self._libc = pcap.libc
        self._buf = c_void_p()
        self._size = c_size_t()
        self.file: int = pcap.libc.open_memstream(ctypes.byref(self._buf), ctypes.byref(self._size))
        if not self.file:
            raise MemoryError("open_memstream failed")

    def take(self) -> bytes:
        libc = self._libc
        libc.fflush(self.file)
        size = self._size.value
        address = self._buf.value
        data = ctypes.string_at(address, size) if size and address else b""
        libc.fseek(self.file, 0, 0)
        return data

    def close(self) -> None:
        if self.file:
            self._libc.fclose(self.file)
            self.file = 0


_memory_view = ctypes.pythonapi.PyMemoryView_FromMemory
_memory_view.restype = ctypes.py_object
_memory_view.argtypes = (ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int)
_PYBUF_WRITE = 0x200


def _writable_view(address: int, size: int) -> memoryview:
    """A writable byte view of C memory. Not ``(c_char * size).from_address``: ctypes
    keeps every array type it makes, one per size, for good, and the sizes libc asks
    for vary with each stop of the prefilter (tens of thousands over a long capture)."""
    view: memoryview = _memory_view(address, size, _PYBUF_WRITE)
    return view


class CookieFile:
    """A read-only ``FILE*`` whose bytes come from a Python callable, with a big buffer
    (so libc asks once per mebibyte, not per record) and an optional limit: reads stop at
    ``limit`` as at the end of a file, until the limit moves on and ``clearerr`` runs.
    ``patch`` overwrites bytes at given offsets as they are read (a file header field)."""

    BUFFER = 1 << 18

    def __init__(
        self, pcap: Libpcap, fd: int, patch: dict[int, bytes] | None = None, limit: int = 1 << 62
    ) -> None:
        self._fd = fd
        self._libc = pcap.libc
        self.position = 0
        """File offset of the next byte libc will be given."""
        self.limit = limit
        self.owned = False
        """A libpcap handle reads it and closes it."""
        self.failure: BaseException | None = None
        self._patch = patch or {}
        self._read_cb = CookieRead(self._read)
        self._seek_cb = CookieSeek(self._seek)
        io = CookieIo(self._read_cb, None, self._seek_cb, None)
        self._buffer = ctypes.create_string_buffer(self.BUFFER)
        self.file: int = pcap.libc.fopencookie(None, b"r", io)
        if not self.file:
            raise MemoryError("fopencookie failed")
        self._libc.setvbuf(self.file, self._buffer, 0, self.BUFFER)  # _IOFBF
        _OPEN.add(self)

    def _read(self, _cookie: int, buf: int, size: int) -> int:
        try:
            want = min(size, self.limit - self.position)
            if want <= 0:
                return 0
            view = _writable_view(buf, want)
            got = os.preadv(self._fd, [view], self.position)
            for offset, value in self._patch.items():
                lo = max(offset, self.position)
                hi = min(offset + len(value), self.position + got)
                if lo < hi:
                    view[lo - self.position : hi - self.position] = value[lo - offset : hi - offset]
            self.position += got
            return got
        except BaseException as exc:
            self.failure = exc
            return -1

    def _seek(self, _cookie: int, offset: Any, whence: int) -> int:
        # Only ftell's question ("where are you?") is answered: libc subtracts what it
        # still holds in its buffer.
        if whence == 1 and offset[0] == 0:
            offset[0] = self.position
            return 0
        return -1

    def tell(self) -> int:
        """The offset libpcap has read up to (libc's buffered bytes not counted)."""
        return int(self._libc.ftell(self.file))

    def resume(self) -> None:
        """After a stop at ``limit``: let reads go on (the limit must have moved)."""
        self._libc.clearerr(self.file)

    def close(self) -> None:
        """Close the stream, unless libpcap owns it (``owned``: ``pcap_close`` closed it);
        the callbacks may go afterwards."""
        if self.file and not self.owned:
            self._libc.fclose(self.file)
        _OPEN.discard(self)
        self.file = 0


_OPEN: set[CookieFile] = set()
"""Cookie streams still open. libc visits every open stream when the process exits,
calling back into Python, which is gone by then: whatever is still open is closed first
(see ``_close_at_exit``)."""
_CLOSERS: list[Callable[[], None]] = []


def close_at_exit(close: Callable[[], None]) -> None:
    """Run ``close`` (which must close the streams it owns) before the interpreter
    exits, unless it ran already."""
    _CLOSERS.append(close)


def forget_closer(close: Callable[[], None]) -> None:
    if close in _CLOSERS:
        _CLOSERS.remove(close)


def _close_at_exit() -> None:
    for close in list(_CLOSERS):
        close()
    for source in list(_OPEN):  # no owner closed it: close it quietly
        source.owned = False
        source.close()


atexit.register(_close_at_exit)
