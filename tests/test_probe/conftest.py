"""Fixtures of the probe tests: lab probe results made once per session, and hostile DoH
servers on 127.0.0.1 with a PKI of their own."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from dotaudit.probe.base import CheckOptions, ProbeConfig
from dotaudit.probe.runner import TargetResult, run_target
from dotaudit.probe.target import parse_target
from tests.lab.lab import Lab
from tests.lab.pki import Pki, make_pki
from tests.test_probe.hostile_doh import HostileDoh
from tests.test_probe.lab_probe import QNAME


@pytest.fixture(scope="session")
def probe_lab(lab: Lab) -> Callable[..., TargetResult]:
    """``probe_lab(variant, pins=())``: the full probe of a lab resolver, cached."""
    cache: dict[tuple[str, tuple[str, ...]], TargetResult] = {}

    def probe(variant: str, pins: tuple[str, ...] = ()) -> TargetResult:
        key = (variant, pins)
        if key not in cache:
            resolver = lab[variant]
            # A short idle wait: the keepalive check's own tests measure idle closes.
            config = ProbeConfig(
                ca_file=str(lab.ca), pins=pins, qname=QNAME, timeout=2.0,
                options=CheckOptions(max_idle_wait=3.0),
            )  # fmt: skip
            target = parse_target(f"{resolver.hostname}@{resolver.address}")
            cache[key] = run_target(target, config)
        return cache[key]

    return probe


@pytest.fixture
def padded_audit(probe_lab: Callable[..., TargetResult]) -> TargetResult:
    """The full probe of the padded Unbound (no pins): the good resolver every check knows."""
    return probe_lab("padded")


@pytest.fixture(scope="session")
def local_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A PKI for servers on 127.0.0.1 that are not the lab's."""
    return make_pki(tmp_path_factory.mktemp("pki"), ["127.0.0.1"])


@pytest.fixture
def hostile(local_pki: Pki) -> Iterator[Callable[..., HostileDoh]]:
    """``hostile(mode, make_body)`` starts a :class:`HostileDoh`; all stop after the test."""
    servers: list[HostileDoh] = []

    def start(mode: str, make_body: Callable[[bytes], bytes] = bytes) -> HostileDoh:
        servers.append(HostileDoh(local_pki, mode, make_body))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
