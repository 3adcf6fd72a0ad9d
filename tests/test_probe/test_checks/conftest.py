"""Running cert.* checks against a CertServer: a trusted root and intermediate per test."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from dotaudit.probe.base import CheckAttempt, ProbeConfig
from dotaudit.probe.registry import BY_ID
from dotaudit.probe.runner import run_target
from dotaudit.probe.target import parse_target
from tests.certgen import Issued, ca
from tests.test_probe.cert_server import CertServer

ServerProbe = Callable[..., dict[str, CheckAttempt]]


@pytest.fixture
def root() -> Issued:
    return ca("Test Root CA")


@pytest.fixture
def intermediate(root: Issued) -> Issued:
    return ca("Test Intermediate CA", issuer=root)


@pytest.fixture
def probe_server(tmp_path: Path, root: Issued) -> ServerProbe:
    """``probe_server(leaf, *chain, name=, pins=, trust=, weak=, system_store=, now=)``: the
    cert.* attempts of one probe of a server presenting ``leaf`` and ``chain``, trusting
    ``trust`` (default: the root) or the system store, judging dates at ``now``."""
    count = 0

    def run(
        leaf: Issued,
        *chain: Issued,
        name: str | None = "dns.test",
        pins: tuple[str, ...] = (),
        trust: tuple[Issued, ...] | None = None,
        weak: bool = False,
        system_store: bool = False,
        now: dt.datetime | None = None,
    ) -> dict[str, CheckAttempt]:
        nonlocal count
        count += 1
        directory = tmp_path / f"probe{count}"
        directory.mkdir()
        ca_file = directory / "trust.pem"
        ca_file.write_bytes(b"".join(c.pem() for c in (trust if trust is not None else (root,))))
        checks = [BY_ID[c] for c in ("reach.853", "cert.chain", "cert.name", "cert.expiry",
                                     "cert.pin", "cert.quality")]  # fmt: skip
        config = ProbeConfig(
            ca_file=None if system_store else str(ca_file),
            pins=pins,
            timeout=3.0,
            target_budget=30.0,
        )
        if now is not None:
            config = dataclasses.replace(config, now=lambda: now)
        with CertServer(directory, leaf, *chain, weak=weak) as server:
            where = f"127.0.0.1:{server.port}"
            target = parse_target(f"{name}@{where}" if name else where)
            result = run_target(target, config, checks=checks)
        return {a.id: a for a in result.attempts}

    return run
