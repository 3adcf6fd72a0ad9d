"""The redaction key: one secret per organisation, kept in a file only its owner can read.

The file holds 64 hexadecimal digits (32 random bytes) and an optional newline, nothing
else. ``load_or_create_key`` creates it when it is missing: written to a temporary file
opened ``O_EXCL`` with mode 0600 (never readable by others, not even for a moment),
synced, then hard-linked into place, which fails instead of overwriting a key that
appeared meanwhile. An existing file is refused when it is not a regular file owned by
the caller, when group or others have any permission on it, or when it holds anything
but a key. Every refusal is a one-line :class:`KeyFileError` naming the file.

Reports carry only :attr:`RedactionKey.fingerprint`: 16 hex digits of SHA-256 over a
domain-separated input, enough to tell keys apart, useless to recover the key.
Each use (address pseudonyms, name tokens, MAC pseudonyms) gets its own subkey, derived
with HMAC-SHA-256 under a distinct label, so no two primitives share key material.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from dotaudit.errors import InputError

KEY_BYTES = 32
KEY_FILE_MODE = 0o600
MAX_KEY_FILE_BYTES = 4096
"""Larger files are refused unread: a key file is 64 or 65 bytes."""

_FINGERPRINT_LABEL = b"dotaudit redaction key fingerprint/1\x00"
_SUBKEY_LABEL = b"dotaudit redaction subkey/1\x00"
_HEX_KEY = re.compile(rb"[0-9a-fA-F]{64}")


class KeyFileError(InputError):
    """A ``--redact-key`` file that cannot be used; the message names the file."""


@dataclass(frozen=True, slots=True)
class RedactionKey:
    material: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.material) != KEY_BYTES:
            raise ValueError(f"a redaction key is {KEY_BYTES} bytes, got {len(self.material)}")

    @classmethod
    def generate(cls) -> RedactionKey:
        return cls(secrets.token_bytes(KEY_BYTES))

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(_FINGERPRINT_LABEL + self.material).hexdigest()[:16]

    def subkey(self, purpose: str, size: int = 32) -> bytes:
        """Key material for one purpose only ("addresses", "names", "macs")."""
        if not 1 <= size <= 32:
            raise ValueError("a subkey is 1 to 32 bytes")
        label = _SUBKEY_LABEL + purpose.encode("ascii")
        return hmac.new(self.material, label, hashlib.sha256).digest()[:size]

    def file_text(self) -> bytes:
        return self.material.hex().encode("ascii") + b"\n"


def parse_key_bytes(data: bytes, where: str) -> RedactionKey:
    body = data[:-1] if data.endswith(b"\n") else data
    if not _HEX_KEY.fullmatch(body):
        raise KeyFileError(
            f"{where}: not a redaction key (expected 64 hexadecimal digits on one line, "
            f"found {len(data)} bytes)"
        )
    return RedactionKey(bytes.fromhex(body.decode("ascii")))


def read_key_file(path: str | os.PathLike[str]) -> RedactionKey:
    where = os.fspath(path)
    try:
        fd = os.open(where, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise KeyFileError(f"{where}: no such key file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise KeyFileError(f"{where}: is a symbolic link; name the key file itself") from None
        raise KeyFileError(f"{where}: cannot open key file ({exc.strerror})") from None
    try:
        # Judged on the open descriptor, so the file checked is the file read.
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"{where}: not a regular file")
        if info.st_uid not in (os.geteuid(), 0):
            raise KeyFileError(f"{where}: key file belongs to another user (uid {info.st_uid})")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise KeyFileError(
                f"{where}: key file is accessible to group or others (mode {mode:04o}); "
                f"run chmod 600 {where}"
            )
        if info.st_size > MAX_KEY_FILE_BYTES:
            raise KeyFileError(f"{where}: not a redaction key ({info.st_size} bytes)")
        data = os.read(fd, MAX_KEY_FILE_BYTES + 1)
    except OSError as exc:
        raise KeyFileError(f"{where}: cannot read key file ({exc.strerror})") from None
    finally:
        os.close(fd)
    return parse_key_bytes(data, where)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def create_key_file(path: str | os.PathLike[str]) -> RedactionKey:
    """A new key in a new file; never replaces an existing file (FileExistsError)."""
    target = Path(path)
    key = RedactionKey.generate()
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, KEY_FILE_MODE)
    try:
        try:
            os.fchmod(fd, KEY_FILE_MODE)  # the umask may only narrow it; be explicit anyway
            _write_all(fd, key.file_text())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, target)
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            # A file system without hard links: O_EXCL on the target still never clobbers.
            fd = os.open(target, flags, KEY_FILE_MODE)
            try:
                os.fchmod(fd, KEY_FILE_MODE)
                _write_all(fd, key.file_text())
                os.fsync(fd)
            finally:
                os.close(fd)
    finally:
        temporary.unlink(missing_ok=True)
    _sync_directory(target.parent)
    return key


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_or_create_key(path: str | os.PathLike[str]) -> tuple[RedactionKey, bool]:
    """``--redact-key FILE``: the key in FILE, creating FILE first when it is missing.

    Returns the key and whether it was created now.
    """
    where = os.fspath(path)
    if not os.path.lexists(where):
        try:
            return create_key_file(where), True
        except FileExistsError:
            pass  # another process created it meanwhile: use that one
        except OSError as exc:
            raise KeyFileError(f"{where}: cannot create key file ({exc.strerror})") from None
    return read_key_file(where), False
