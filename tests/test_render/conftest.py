"""Fixtures shared by the browser-based report tests."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import IN_CI

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def chromium() -> str:
    """Path of Debian's Chromium; skips without it, fails under CI=true."""
    if not os.access(CHROMIUM, os.X_OK):
        reason = "chromium not installed (Debian package 'chromium'; `make test` installs it)"
        if IN_CI:
            pytest.fail(reason + " (CI=true: the browser test must not skip)")
        pytest.skip(reason)
    return CHROMIUM
