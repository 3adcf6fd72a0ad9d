"""``--redact-key FILE``: created private, read only when private and well formed."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from dotaudit.errors import InputError
from dotaudit.redact.key import (
    KeyFileError,
    RedactionKey,
    create_key_file,
    load_or_create_key,
    read_key_file,
)


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_missing_file_is_created_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    path = tmp_path / "redact.key"
    old = os.umask(0)
    try:
        key, created = load_or_create_key(path)
    finally:
        os.umask(old)
    assert created
    assert mode_of(path) == 0o600
    data = path.read_bytes()
    assert data == key.material.hex().encode() + b"\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["redact.key"]  # no temp file left
    again, created_again = load_or_create_key(path)
    assert not created_again
    assert again == key


def test_never_world_readable_while_being_created(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every file the creation opens is opened with mode 0600 and O_EXCL."""
    seen: list[tuple[int, int]] = []
    real_open = os.open

    def spying_open(path, flags, mode=0o777, *args, **kwargs):  # type: ignore[no-untyped-def]
        if flags & os.O_CREAT:
            seen.append((flags, mode))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", spying_open)
    create_key_file(tmp_path / "k")
    assert seen
    for flags, mode in seen:
        assert flags & os.O_EXCL
        assert mode == 0o600


def test_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k"
    first = create_key_file(path)
    with pytest.raises(FileExistsError):
        create_key_file(path)
    assert read_key_file(path) == first


def test_concurrent_creation_yields_one_key(tmp_path: Path) -> None:
    path = tmp_path / "k"
    keys: list[RedactionKey] = []
    lock = threading.Lock()

    def worker() -> None:
        key, _ = load_or_create_key(path)
        with lock:
            keys.append(key)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8
    assert len({k.material for k in keys}) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["k"]


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o620, 0o602, 0o644])
def test_refuses_group_or_world_access(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "k"
    create_key_file(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError, match=r"accessible to group or others.*chmod 600"):
        read_key_file(path)


def test_accepts_owner_only_modes(tmp_path: Path) -> None:
    path = tmp_path / "k"
    key = create_key_file(path)
    path.chmod(0o400)
    assert read_key_file(path) == key


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"00" * 31 + b"\n",  # 31 bytes
        b"00" * 33 + b"\n",  # 33 bytes
        b"zz" * 32 + b"\n",
        b"00" * 32 + b"\n\n",
        b" " + b"00" * 32,
        bytes(32),  # 32 raw bytes are not the format
        b"00" * 32 + b"\nmore\n",
    ],
)
def test_refuses_malformed_files_with_one_line(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "k"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeyFileError) as caught:
        read_key_file(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: not a redaction key")


def test_accepts_both_newline_and_no_newline(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_bytes(b"ab" * 32)
    path.chmod(0o600)
    assert read_key_file(path).material == bytes([0xAB]) * 32


def test_refuses_symlinks_directories_and_huge_files(tmp_path: Path) -> None:
    real = tmp_path / "real"
    create_key_file(real)
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(KeyFileError, match="symbolic link"):
        load_or_create_key(link)
    directory = tmp_path / "dir"
    directory.mkdir(mode=0o700)
    with pytest.raises(KeyFileError, match="not a regular file"):
        read_key_file(directory)
    huge = tmp_path / "huge"
    huge.write_bytes(b"0" * 10_000)
    huge.chmod(0o600)
    with pytest.raises(KeyFileError, match="10000 bytes"):
        read_key_file(huge)


def test_refuses_a_file_of_another_user(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("not applicable: only root can give a file to another user")
    path = tmp_path / "k"
    create_key_file(path)
    os.chown(path, 65534, 65534)
    with pytest.raises(KeyFileError, match="belongs to another user"):
        read_key_file(path)


def test_missing_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot create key file"):
        load_or_create_key(tmp_path / "nowhere" / "k")


def test_fingerprint_is_stable_short_and_not_the_key() -> None:
    key = RedactionKey(bytes(range(32)))
    assert key.fingerprint == RedactionKey(bytes(range(32))).fingerprint
    assert len(key.fingerprint) == 16
    assert int(key.fingerprint, 16) >= 0
    assert key.fingerprint not in key.material.hex()
    assert RedactionKey(bytes(range(1, 33))).fingerprint != key.fingerprint
    assert key.material.hex() not in repr(key)
    assert repr(key.material) not in repr(key)


def test_subkeys_are_separate_per_purpose() -> None:
    key = RedactionKey(bytes(32))
    subkeys = {key.subkey(p) for p in ("addresses", "names", "macs")}
    assert len(subkeys) == 3
    assert key.material not in subkeys
    with pytest.raises(ValueError):
        key.subkey("x", 33)
