"""Which files a run reads, and which are the same: identity by inode, content by hash.

A file given twice, a file and the directory that holds it, a hard link, a symlink or a
byte-for-byte copy would each be read twice and their findings counted twice; the output
file must never be one of the inputs. Both questions are answered here, for captures
(``analyze``, ``events``) and saved reports (``report``) alike.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def is_regular_file(path: Path) -> bool:
    """A regular file (following symlinks): not a pipe, device or directory."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except OSError:
        return False


@dataclass(frozen=True)
class Duplicate:
    """An input left out because an earlier one holds the same bytes."""

    path: Path
    original: Path
    same: str
    """"file" (the same inode: the path twice, a hard link, a symlink) or "content"."""
    sha256: str = ""

    @property
    def reason(self) -> str:
        if str(self.path) == str(self.original):
            return "given twice"
        return f"the same {self.same} as {self.original}"


def distinct_files(paths: Sequence[Path]) -> tuple[list[Path], list[Duplicate]]:
    """The paths less those whose file (inode) or content (SHA-256) an earlier path
    already has, in order; and those left out. Only files of equal size are hashed, so
    distinct captures cost one ``stat`` each. Pipes and devices are never hashed (reading
    them would consume them)."""
    kept: list[Path] = []
    duplicates: list[Duplicate] = []
    by_inode: dict[tuple[int, int], Path] = {}
    sizes: dict[int, list[Path]] = {}
    for path in paths:
        try:
            info = path.stat()
        except OSError:
            kept.append(path)  # reading it will say what is wrong
            continue
        inode = (info.st_dev, info.st_ino)
        if inode in by_inode:
            duplicates.append(Duplicate(path, by_inode[inode], "file"))
            continue
        by_inode[inode] = path
        kept.append(path)
        if stat.S_ISREG(info.st_mode):
            sizes.setdefault(info.st_size, []).append(path)
    same_size = {path for group in sizes.values() if len(group) > 1 for path in group}
    if not same_size:
        return kept, duplicates
    by_digest: dict[str, Path] = {}
    distinct: list[Path] = []
    for path in kept:
        if path in same_size:
            try:
                digest = sha256_file(path)
            except OSError:
                distinct.append(path)
                continue
            if digest in by_digest:
                duplicates.append(Duplicate(path, by_digest[digest], "content", digest))
                continue
            by_digest[digest] = path
        distinct.append(path)
    return distinct, duplicates


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same resolved path, or the same inode (a hard
    link, a symlink, a bind mount)."""
    try:
        if a.resolve() == b.resolve():
            return True
    except (OSError, RuntimeError):  # a symlink loop
        pass
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
